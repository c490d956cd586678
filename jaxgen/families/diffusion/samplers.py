"""Reverse-process samplers: ancestral DDPM and DDIM, as one compiled loop.

Both visit a subsequence τ of the training timesteps (all T by default) and use
the respaced forward process that keeps ᾱ at those steps (Nichol & Dhariwal
2021), so DDPM with fewer steps is well defined and DDIM with S steps is Song
et al.'s generalised process with η:

  DDPM:  x_{t−1} = μ̃(x̂_0, x_t) + σ_t z                (Ho et al. 2020, Alg. 2)
  DDIM:  x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1 − ᾱ_{t−1} − σ²) ε̂ + σ z,
         σ = η √((1 − ᾱ_{t−1})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t−1})   (Song et al. 2021, eq. 12, 16)

The network enters through `denoise(params, x_t, t, cond) -> (output,
variance_output)`; `cond` is any pytree (labels, guidance weights) that the
caller's `denoise` understands. The noise of step i comes from
fold_in(key, i), so running the loop in chunks (with a progress bar between
them) gives exactly the numbers of the single loop.

  plan = samplers.make_plan(schedule, steps=50)
  x = samplers.sample(denoise, params, cond, plan, x_T, key, settings)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jaxgen.errors import ConfigError, choices
from jaxgen.families.diffusion import schedules

SAMPLERS = ("ddpm", "ddim")

Denoise = Callable[[Any, jax.Array, jax.Array, Any], tuple[jax.Array, jax.Array | None]]
ClassifierGrad = Callable[[Any, jax.Array, jax.Array, Any], jax.Array]


class Plan(NamedTuple):
  """The steps a sampler takes, in the order it takes them (t descending).

  index: position i in the respaced chain (S−1 ... 0), whose noise key is
  fold_in(key, i); t: the training timestep τ_i given to the network. The
  rest are the respaced tables at i (float32 [S]).
  """

  index: np.ndarray
  t: np.ndarray
  alpha_bar: np.ndarray
  alpha_bar_prev: np.ndarray
  coef_x0: np.ndarray
  coef_xt: np.ndarray
  log_beta: np.ndarray
  posterior_log_variance: np.ndarray
  log_variance_large: np.ndarray

  @property
  def num_steps(self) -> int:
    return int(self.index.shape[0])


def timestep_subsequence(num_timesteps: int, steps: int) -> np.ndarray:
  """`steps` evenly spaced training timesteps from 0 to T−1 (both included)."""
  if not 1 <= steps <= num_timesteps:
    raise ConfigError(f"sampling steps must be between 1 and model.timesteps="
                      f"{num_timesteps}, got {steps}")
  if steps == 1:
    return np.array([num_timesteps - 1])
  return np.round(np.linspace(0, num_timesteps - 1, steps)).astype(np.int64)


def make_plan(schedule: schedules.Schedule, steps: int | None = None) -> Plan:
  """The plan for `steps` evenly spaced steps (None: all T)."""
  timesteps = timestep_subsequence(schedule.num_timesteps,
                                   steps or schedule.num_timesteps)
  if len(timesteps) == schedule.num_timesteps:
    spaced = schedule
  else:
    spaced = schedules.respace(schedule, timesteps)
  order = np.arange(len(timesteps))[::-1]
  f32 = lambda a: np.asarray(a, np.float32)[order]  # noqa: E731
  return Plan(
      index=order.astype(np.int32), t=timesteps[order].astype(np.int32),
      alpha_bar=f32(spaced.alpha_bars), alpha_bar_prev=f32(spaced.alpha_bars_prev),
      coef_x0=f32(spaced.posterior_coef_x0), coef_xt=f32(spaced.posterior_coef_xt),
      log_beta=f32(np.log(spaced.betas)),
      posterior_log_variance=f32(spaced.posterior_log_variance),
      log_variance_large=f32(spaced.log_variance_large))


class Settings(NamedTuple):
  """How to sample: static choices (they select code paths, not numbers)."""

  sampler: str = "ddim"        # "ddpm" (ancestral) or "ddim"
  prediction: str = "epsilon"  # what the network outputs
  variance: str = "fixed_small"  # DDPM σ²: fixed_small, fixed_large, learned
  clip: bool = False           # clip x̂_0 to [-1, 1]


def _split_x0_eps(step: Plan, output: jax.Array, x_t: jax.Array, prediction: str
                  ) -> tuple[jax.Array, jax.Array]:
  """(x̂_0, ε̂) from the network output at one plan step (scalars in `step`)."""
  a, b = jnp.sqrt(step.alpha_bar), jnp.sqrt(1.0 - step.alpha_bar)
  if prediction == "epsilon":
    return (x_t - b * output) / a, output
  if prediction == "x0":
    return output, (x_t - a * output) / b
  return a * x_t - b * output, b * x_t + a * output


def _log_variance(step: Plan, variance: str, frac: jax.Array | None) -> jax.Array:
  if variance == "fixed_small":
    return step.posterior_log_variance
  if variance == "fixed_large":
    return step.log_variance_large
  v = (frac + 1.0) / 2.0  # Nichol & Dhariwal eq. 15
  return v * step.log_beta + (1.0 - v) * step.posterior_log_variance


def reverse_step(denoise: Denoise, params: Any, cond: Any, settings: Settings,
                 x: jax.Array, step: Plan, key: jax.Array, eta: jax.Array,
                 classifier_grad: ClassifierGrad | None = None,
                 classifier_scale: jax.Array | float = 0.0) -> jax.Array:
  """One step x_t -> x_{t−1} of the chosen sampler; `step` holds scalars."""
  t = jnp.full((x.shape[0],), step.t, jnp.int32)
  output, frac = denoise(params, x, t, cond)
  x0, eps = _split_x0_eps(step, output, x, settings.prediction)
  a, b = jnp.sqrt(step.alpha_bar), jnp.sqrt(1.0 - step.alpha_bar)
  if settings.clip:
    x0 = jnp.clip(x0, -1.0, 1.0)
    eps = (x - a * x0) / b
  noise = jax.random.normal(jax.random.fold_in(key, step.index), x.shape, x.dtype)
  last = step.index == 0
  if settings.sampler == "ddpm":
    mean = step.coef_x0 * x0 + step.coef_xt * x
    log_variance = _log_variance(step, settings.variance, frac)
    if classifier_grad is not None:
      # Dhariwal & Nichol 2021, Alg. 1: shift the mean by s Σ ∇ log p(y | x_t).
      mean = mean + classifier_scale * jnp.exp(log_variance) * classifier_grad(
          params, x, t, cond)
    return jnp.where(last, mean, mean + jnp.exp(0.5 * log_variance) * noise)
  if classifier_grad is not None:
    # Dhariwal & Nichol 2021, Alg. 2: ε̂ − s √(1 − ᾱ_t) ∇ log p(y | x_t).
    eps = eps - classifier_scale * b * classifier_grad(params, x, t, cond)
    x0 = (x - b * eps) / a
  prev = step.alpha_bar_prev
  sigma = eta * jnp.sqrt((1.0 - prev) / (1.0 - step.alpha_bar)
                         * (1.0 - step.alpha_bar / prev))
  direction = jnp.sqrt(jnp.maximum(1.0 - prev - sigma ** 2, 0.0)) * eps
  x_prev = jnp.sqrt(prev) * x0 + direction
  return jnp.where(last, x_prev, x_prev + sigma * noise)


def run_steps(denoise: Denoise, params: Any, cond: Any, settings: Settings,
              plan: Plan, x: jax.Array, key: jax.Array, eta: jax.Array | float = 0.0,
              classifier_grad: ClassifierGrad | None = None,
              classifier_scale: jax.Array | float = 0.0) -> jax.Array:
  """All steps of `plan` (or a chunk of one) as one `lax.scan`: x_T -> x_0."""
  if settings.sampler not in SAMPLERS:
    raise ConfigError(f"sampler {settings.sampler!r} is not one of {choices(SAMPLERS)}")
  eta = jnp.asarray(eta, jnp.float32)
  steps = jax.tree.map(jnp.asarray, plan)

  def body(x, step):
    return reverse_step(denoise, params, cond, settings, x, step, key, eta,
                        classifier_grad, classifier_scale), None

  x, _ = jax.lax.scan(body, x, steps)
  return x


def _is_traced(tree: Any) -> bool:
  return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def sample(denoise: Denoise, params: Any, cond: Any, settings: Settings, plan: Plan,
           x: jax.Array, key: jax.Array, eta: jax.Array | float = 0.0,
           classifier_grad: ClassifierGrad | None = None,
           classifier_scale: jax.Array | float = 0.0, *, chunk_size: int = 0,
           progress: bool = False, description: str = "sampling") -> jax.Array:
  """Runs the reverse chain from x = x_T; returns x_0.

  Inside a trace (or with chunk_size = 0) it is one `lax.scan`. Called
  eagerly with `chunk_size` > 0, it runs compiled chunks of that many steps
  and advances a tqdm bar (when `progress`) between them; the result is the
  same, since each step's noise depends only on the key and its index.
  """
  traced = _is_traced((params, cond, x, key, eta, classifier_scale))
  if traced or chunk_size <= 0 or chunk_size >= plan.num_steps:
    if not traced:
      return _run_chunk(denoise, settings, classifier_grad, params, cond, plan, x,
                        key, eta, classifier_scale)
    return run_steps(denoise, params, cond, settings, plan, x, key, eta,
                     classifier_grad, classifier_scale)
  bar = tqdm.tqdm(total=plan.num_steps, desc=description, unit="step",
                  disable=not progress, dynamic_ncols=True)
  try:
    for start in range(0, plan.num_steps, chunk_size):
      chunk = jax.tree.map(lambda a, s=start: a[s:s + chunk_size], plan)
      x = _run_chunk(denoise, settings, classifier_grad, params, cond, chunk, x,
                     key, eta, classifier_scale)
      x.block_until_ready()
      bar.update(chunk.num_steps)
  finally:
    bar.close()
  return x


def _run_chunk_impl(denoise, settings, classifier_grad, params, cond, plan, x, key,
                    eta, classifier_scale):
  return run_steps(denoise, params, cond, settings, plan, x, key, eta,
                   classifier_grad, classifier_scale)


# The plan travels as arrays, so every chunk of the same length reuses one
# compiled program; `denoise` and `classifier_grad` must be stable functions
# (made once per method) for the cache to hit across calls.
_run_chunk = jax.jit(_run_chunk_impl, static_argnums=(0, 1, 2))
