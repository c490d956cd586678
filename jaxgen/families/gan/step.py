"""The GAN train steps: alternating updates (the papers' algorithm box) and
consensus optimization.

  for i in 0..n_critic-1:                   (a Python loop: n_critic is static)
    x_i = the batch (or its i-th strided slice); z_i, ε_i from fold_in(critic_key, i)
    descend the discriminator's loss; clip its weights (WGAN); model_state updates
  draw z from the generator key; descend the generator's loss against the
  updated discriminator; model_state updates (historical average, EMA)

The loop is a Python loop, not a `lax.scan`: inside a loop body XLA:CPU
leaves the strided-convolution weight gradients off its fast path (a DCGAN
step ran ~7x slower, its convolutions ~45x).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxgen.core import collectives, optim
from jaxgen.core.state import TrainState
from jaxgen.families.gan import tricks, updates
from jaxgen.families.gan.players import Players

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]


def _stop(x: Any) -> Any:
  return jax.tree.map(jax.lax.stop_gradient, x)


def _with_stats(players: Players, model_state, stats_g, stats_d):
  out = dict(model_state)
  if players.s.generator_norm == "batch":
    out["generator_batch_stats"] = stats_g
  if players.s.discriminator_norm == "batch":
    out["discriminator_batch_stats"] = stats_d
  return out


def critic_update(players: Players, tx: optax.GradientTransformation, carry, x: Array,
                  labels: Array | None, params_g, key: Array) -> tuple[Any, Metrics]:
  """One discriminator update on real x against fresh fakes; carry = (params, opt, ms)."""
  params_d, opt_d, ms = carry
  k_fake, k_terms = jax.random.split(key)
  fake, info, stats_g = players.fakes(params_g, ms, k_fake, x.shape[0], train=True)
  fake = jax.lax.stop_gradient(fake)
  (_, (metrics, stats_d)), grads = jax.value_and_grad(
      players.discriminator_loss, has_aux=True)(params_d, x, labels, fake, info, k_terms, ms)
  grads = collectives.mean_over_devices(grads)
  params_d, opt_d = optim.apply_gradients(tx, grads, opt_d, params_d)
  clip = players.s.hyperparameters.get("clip")
  if clip is not None:
    params_d = tricks.clip_weights(params_d, clip)
  ms = _with_stats(players, ms, stats_g, stats_d)
  ms, extra = updates.after(players.updates, "discriminator", ms,
                            {"generator": params_g, "discriminator": params_d}, metrics)
  metrics = {**metrics, **extra, "discriminator_grad_norm": optax.tree.norm(grads)}
  return (params_d, opt_d, ms), metrics


def alternating_step(players: Players, tx_g: optax.GradientTransformation,
                     tx_d: optax.GradientTransformation, state: TrainState, batch: Batch
                     ) -> tuple[TrainState, Metrics]:
  """n_critic discriminator updates, then one generator update."""
  keys = state.keys("critic", "generator")
  x, labels = batch["x"], batch.get("label")
  model_state = players.condition.observe(state.model_state, x, labels)
  params_g, n = state.params["generator"], players.s.n_critic
  split = players.s.critic_data == "split"  # strided, so device slices split alike
  carry = (state.params["discriminator"], state.opt_state["discriminator"], model_state)
  per_update = []
  for i in range(n):
    x_i = x[i::n] if split else x
    labels_i = labels[i::n] if split and labels is not None else labels
    carry, metrics_i = critic_update(players, tx_d, carry, x_i, labels_i, params_g,
                                     jax.random.fold_in(keys["critic"], i))
    per_update.append(metrics_i)
  params_d, opt_d, model_state = carry
  metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *per_update)

  (_, (g_metrics, stats_g)), grads = jax.value_and_grad(
      players.generator_loss, has_aux=True)(params_g, params_d, x, labels,
                                            keys["generator"], model_state)
  grads = collectives.mean_over_devices(grads)
  params_g, opt_g = optim.apply_gradients(tx_g, grads, state.opt_state["generator"],
                                          params_g)
  model_state = _with_stats(players, model_state, stats_g,
                            model_state.get("discriminator_batch_stats"))
  params = {"generator": params_g, "discriminator": params_d}
  model_state, _ = updates.after(players.updates, "generator", model_state, params, {})
  metrics = {**metrics, **g_metrics, "generator_grad_norm": optax.tree.norm(grads),
             "loss": metrics["discriminator_loss"]}
  return state.replace(step=state.step + 1, params=params,
                       opt_state={"generator": opt_g, "discriminator": opt_d},
                       model_state=model_state), metrics


def consensus_step(players: Players, tx_g: optax.GradientTransformation,
                   tx_d: optax.GradientTransformation, state: TrainState, batch: Batch
                   ) -> tuple[TrainState, Metrics]:
  """Both players step together along v + γ∇(½‖v‖²) (Mescheder et al. 2017)."""
  keys = state.keys("fake", "discriminator", "generator")
  x, labels = batch["x"], batch.get("label")
  ms = players.condition.observe(state.model_state, x, labels)

  def both_losses(params):
    fake, info, stats_g = players.fakes(params["generator"], ms, keys["fake"], x.shape[0],
                                        train=True)
    loss_d, (d_metrics, stats_d) = players.discriminator_loss(
        params["discriminator"], x, labels, fake, info, keys["discriminator"], ms)
    loss_g, g_metrics = players.generator_terms(params["discriminator"], ms, x, labels,
                                                fake, info, keys["generator"])
    g_metrics["generator_loss"] = loss_g
    loss_g = loss_g + updates.penalty(players.updates, "generator", ms, params["generator"])
    return loss_g, loss_d, (_stop({**d_metrics, **g_metrics}), _stop((stats_g, stats_d)))

  directions, c_metrics, (metrics, (stats_g, stats_d)) = tricks.consensus_gradients(
      both_losses, state.params, players.s.consensus)
  directions = collectives.mean_over_devices(directions)
  params, opt_state = {}, {}
  for player, tx in (("generator", tx_g), ("discriminator", tx_d)):
    params[player], opt_state[player] = optim.apply_gradients(
        tx, directions[player], state.opt_state[player], state.params[player])
  clip = players.s.hyperparameters.get("clip")
  if clip is not None:
    params["discriminator"] = tricks.clip_weights(params["discriminator"], clip)
  model_state = _with_stats(players, ms, stats_g, stats_d)
  model_state, extra = updates.after(players.updates, "discriminator", model_state, params,
                                     metrics)
  model_state, _ = updates.after(players.updates, "generator", model_state, params, {})
  metrics = {**metrics, **extra, "consensus": c_metrics["consensus"],
             "loss": metrics["discriminator_loss"],
             "generator_grad_norm": optax.tree.norm(directions["generator"]),
             "discriminator_grad_norm": optax.tree.norm(directions["discriminator"])}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       model_state=model_state), metrics
