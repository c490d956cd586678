"""Composable updates of `model_state`: the generator's EMA, historical
averaging, BEGAN's k_t.

Each `Update` owns one `model_state` entry: its initial value from the
parameters, what happens to it after a player's optimizer update, and (for
historical averaging) a penalty it adds to a player's loss. `active(settings,
objective)` lists the ones a configuration uses; the train step runs them in
order after each update, whatever they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgen.core import collectives, optim
from jaxgen.families.gan import losses, tricks

Array = jax.Array
PyTree = Any
Params = dict[str, PyTree]  # {"generator": ..., "discriminator": ...}


def _unchanged(player: str, entry: PyTree, params: Params, metrics: dict[str, Array]
               ) -> tuple[PyTree, dict[str, Array]]:
  return entry, {}


@dataclasses.dataclass(frozen=True)
class Update:
  """One `model_state` entry that evolves with the players' updates.

  init(params) -> entry; after(player, entry, params, metrics) -> (entry,
  extra metrics), called after `player`'s update with both players' current
  parameters and that update's metrics; penalty(player, entry, params) -> a
  scalar added to `player`'s loss (params: that player's, differentiated).
  """

  name: str
  init: Callable[[Params], PyTree]
  after: Callable[[str, PyTree, Params, dict[str, Array]],
                  tuple[PyTree, dict[str, Array]]] = _unchanged
  penalty: Callable[[str, PyTree, PyTree], Array] | None = None


def ema(decay: float) -> Update:
  """The generator's weights averaged by `core.optim.ema` (warm-up, no debiasing)."""
  transform = optim.ema(decay)

  def after(player, entry, params, metrics):
    if player != "generator":
      return entry, {}
    _, entry = transform.update(params["generator"], entry)
    return entry, {}

  return Update("ema_generator", init=lambda params: transform.init(params["generator"]),
                after=after)


def ema_weights(entry: optim.EmaState, decay: float, params: PyTree) -> PyTree:
  """The generator's EMA weights (`core.optim.ema`: the initial ones before step 1)."""
  del decay, params
  return entry.ema


def historical_averaging(weight: float) -> Update:
  """Salimans et al. 2016, 3.3: weight ‖θ - mean of past θ‖² for both players."""

  def init(params):
    return {"generator": jax.tree.map(jnp.copy, params["generator"]),
            "discriminator": jax.tree.map(jnp.copy, params["discriminator"]),
            "count_generator": jnp.ones((), jnp.int32),
            "count_discriminator": jnp.ones((), jnp.int32)}

  def after(player, entry, params, metrics):
    entry = dict(entry)
    entry[player], entry[f"count_{player}"] = tricks.historical_average_update(
        entry[player], params[player], entry[f"count_{player}"])
    return entry, {}

  def penalty(player, entry, player_params):
    return weight * tricks.historical_averaging(params=player_params, average=entry[player])

  return Update("historical", init=init, after=after, penalty=penalty)


def began_controller(gamma: float, lambda_k: float) -> Update:
  """BEGAN's k_t (k_0 = 0), updated after every discriminator step from its
  global-batch means of L(x) and L(G(z)) (Berthelot et al. 2017, eq. 4)."""

  def after(player, k, params, metrics):
    if player != "discriminator":
      return k, {}
    real = collectives.mean_over_devices(metrics["real_energy"])
    fake = collectives.mean_over_devices(metrics["fake_energy"])
    k, convergence = losses.began_controller(k=k, real_loss=real, fake_loss=fake,
                                             gamma=gamma, lambda_k=lambda_k)
    return k, {"k": k, "convergence": convergence}

  return Update("k", init=lambda params: jnp.zeros((), jnp.float32), after=after)


def active(settings: Any, objective: Any) -> tuple[Update, ...]:
  """The updates a configuration uses, in the order the step applies them."""
  updates = []
  if settings.historical_averaging:
    updates.append(historical_averaging(settings.historical_averaging))
  if objective.controller:
    h = settings.hyperparameters
    updates.append(began_controller(h["began_gamma"], h["began_lambda_k"]))
  if settings.ema_decay:
    updates.append(ema(settings.ema_decay))
  return tuple(updates)


def after(updates: tuple[Update, ...], player: str, model_state: dict[str, PyTree],
          params: Params, metrics: dict[str, Array]
          ) -> tuple[dict[str, PyTree], dict[str, Array]]:
  """Runs every update after `player`'s step: (model_state, their metrics)."""
  model_state, extra = dict(model_state), {}
  for update in updates:
    model_state[update.name], more = update.after(player, model_state[update.name],
                                                  params, metrics)
    extra.update(more)
  return model_state, extra


def penalty(updates: tuple[Update, ...], player: str, model_state: dict[str, PyTree],
            player_params: PyTree) -> Array | float:
  """The sum of the updates' penalties on `player`'s loss."""
  return sum((u.penalty(player, model_state[u.name], player_params)
              for u in updates if u.penalty is not None), 0.0)
