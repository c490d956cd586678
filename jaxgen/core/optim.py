"""Optimizers from config: a thin layer over optax, shared by every family."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.core import collectives
from jaxgen.core import settings
from jaxgen.errors import ConfigError, choices

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "lamb")
# Optimizers whose `weight_decay` is an L2 term added to the gradient (the
# others decay the weights in their own update, decoupled).
COUPLED_WEIGHT_DECAY = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear")


def default_config(name: str = "adam", learning_rate: float = 1e-3,
                   **overrides) -> ml_collections.ConfigDict:
  """The optimizer section of a config; families pass their published defaults."""
  cfg = ml_collections.ConfigDict(dict(
      name=name,
      learning_rate=learning_rate,
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      momentum=0.0,      # sgd; rmsprop
      decay=0.9,         # rmsprop
      # adamw, lamb: decoupled (optax's); adam, sgd, rmsprop: an L2 term
      # weight_decay * w added to the gradient before the optimizer.
      weight_decay=0.0,
      schedule="constant",
      warmup_steps=0,
      # 0: the run's train.steps, written into the saved config when a run
      # starts (jaxgen.config.resolve_derived), so that resuming with another
      # --steps never changes the schedule.
      decay_steps=0,
      grad_clip_norm=0.0,  # 0: off
  ))
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


def learning_rate_schedule(cfg: ml_collections.ConfigDict,
                           total_steps: int) -> optax.Schedule:
  """The learning-rate schedule named by `cfg.schedule`."""
  lr = cfg.learning_rate
  decay_steps = cfg.decay_steps or total_steps
  if cfg.schedule not in SCHEDULES:
    raise ConfigError(f"unknown optimizer schedule {cfg.schedule!r}; "
                      f"valid: {choices(SCHEDULES)}")
  if cfg.schedule == "constant":
    if cfg.warmup_steps:
      return optax.linear_schedule(0.0, lr, cfg.warmup_steps)
    return optax.constant_schedule(lr)
  if cfg.schedule == "cosine":
    return optax.cosine_decay_schedule(lr, max(decay_steps, 1))
  if cfg.schedule == "linear":
    return optax.linear_schedule(lr, 0.0, max(decay_steps, 1))
  return optax.warmup_cosine_decay_schedule(
      0.0, lr, max(cfg.warmup_steps, 1), max(decay_steps, cfg.warmup_steps + 1))


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
  """The typed, range-checked form of an optimizer section (see `default_config`)."""

  name: str = settings.field(choices=OPTIMIZERS)
  learning_rate: float = settings.field(minimum=0.0, exclusive_minimum=True)
  b1: float = settings.field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  b2: float = settings.field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  # eps = 0 divides 0 by 0 for a parameter whose gradient has been zero.
  eps: float = settings.field(minimum=0.0, exclusive_minimum=True)
  momentum: float = settings.field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  decay: float = settings.field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  weight_decay: float = settings.field(minimum=0.0)
  schedule: str = settings.field(choices=SCHEDULES)
  warmup_steps: int = settings.field(minimum=0)
  decay_steps: int = settings.field(minimum=0)
  grad_clip_norm: float = settings.field(minimum=0.0)   # 0: off


def check(cfg: ml_collections.ConfigDict | dict, prefix: str = "optim") -> OptimizerSettings:
  """Validates an optimizer section: one-line ConfigError naming `prefix.key`.

  A negative clip norm (which would flip the gradient), a zero Adam eps, a
  non-positive or non-finite learning rate, β outside [0, 1) are refused.
  """
  return settings.resolve(OptimizerSettings, cfg, prefix)


def make(cfg: ml_collections.ConfigDict, total_steps: int,
         prefix: str = "optim") -> optax.GradientTransformation:
  """An optax transformation from an optimizer config section (checked first)."""
  check(cfg, prefix)
  lr = learning_rate_schedule(cfg, total_steps)
  if cfg.name == "adam":
    tx = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    tx = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                     weight_decay=cfg.weight_decay)
  elif cfg.name == "sgd":
    tx = optax.sgd(lr, momentum=cfg.momentum or None)
  elif cfg.name == "rmsprop":
    tx = optax.rmsprop(lr, decay=cfg.decay, eps=cfg.eps, momentum=cfg.momentum or None)
  else:
    tx = optax.lamb(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                    weight_decay=cfg.weight_decay)
  if cfg.weight_decay and cfg.name in COUPLED_WEIGHT_DECAY:
    # These optimizers have no decay of their own: the L2 penalty's gradient.
    tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
  if cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  return tx


def apply_gradients(tx: optax.GradientTransformation, grads, opt_state, params):
  """One optimizer update: returns `(new_params, new_opt_state)`.

  The one place where a family's gradients become a parameter update, so that
  every family applies optax the same way (updates computed with the
  parameters, for weight decay and lookahead-style transforms).
  """
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


class EmaState(NamedTuple):
  """The state of `ema`: updates taken, and the average itself (usable as is)."""

  count: jax.Array
  ema: Any


def ema(decay: float) -> optax.GradientTransformation:
  """The exponential moving average of parameters every family uses.

  One convention everywhere: the average starts as a copy of the initial
  parameters and update n (n = 0, 1, ...) uses the decay
  min(decay, (1 + n) / (10 + n)) — the warm-up of TensorFlow's
  `ExponentialMovingAverage(num_updates=n)`, used by score_sde and the
  diffusion literature. Early in a run the average spans about n/9 steps, so a
  short run is not dominated by its first weights, and no debiasing is needed
  when it is read: `state.ema` is the averaged parameters at every step (the
  initial ones before the first update). optax's `ema` starts from zero and
  has no warm-up, hence this small transformation. Use it as

    state = ema(d).init(params)
    averaged, state = ema(d).update(params, state)   # averaged is state.ema

  and keep `state` in `model_state`. `init` copies the parameters, so a donated
  train state never holds the same buffer twice.
  """
  if not 0.0 <= decay < 1.0:
    raise ConfigError(f"EMA decay must be in [0, 1), got {decay}")

  def init(params) -> EmaState:
    return EmaState(count=jnp.zeros((), jnp.int32), ema=jax.tree.map(jnp.copy, params))

  def update(params, state: EmaState, _=None):
    n = state.count.astype(jnp.float32)
    rate = jnp.minimum(decay, (1.0 + n) / (10.0 + n))
    averaged = jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, state.ema, params)
    return averaged, EmaState(count=state.count + 1, ema=averaged)

  return optax.GradientTransformation(init, update)


def schedule_horizon(train: ml_collections.ConfigDict | Any) -> int:
  """The number of steps learning-rate schedules span: `train.schedule_steps`.

  The runner resolves it (to the first session's `train.steps`) before a run
  starts and keeps it on resume; a method built outside `fit` (schedule_steps
  0) uses `train.steps`.
  """
  return int(train.get("schedule_steps", 0) or train.steps)


def maximum_likelihood_step(tx: optax.GradientTransformation, state: Any,
                            example_nll: Callable[[Any], jax.Array]):
  """One step on the mean of `example_nll(params)` -> [B] over the "network"
  parameters, gradients averaged over the devices (exact-likelihood families).

  Returns (new_state, mean loss, the per-example values, the gradients).
  """

  def loss_fn(params):
    values = example_nll(params)
    return jnp.mean(values), values

  (loss, values), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["network"])
  grads = collectives.mean_over_devices(grads)
  params, opt_state = apply_gradients(tx, grads, state.opt_state["network"],
                                      state.params["network"])
  new_state = state.replace(step=state.step + 1, params={"network": params},
                            opt_state={"network": opt_state})
  return new_state, loss, values, grads
