"""Noise schedules and the closed forms of the forward process.

Timesteps are 0-based: index t in [0, T) is the paper's step t + 1, so
alpha_bar[0] = 1 - beta_1 and the "previous" of t = 0 is x_0 (alpha_bar = 1).
Every table is computed once in float64 numpy and kept so (respacing and the
tests need the precision); jitted code gathers from its float32 copy.

  schedule = schedules.get("cosine", 1000)
  x_t = schedules.q_sample(schedule, x0=x0, t=t, noise=eps)
  mean, var, log_var = schedules.q_posterior(schedule, x0=x0, x_t=x_t, t=t)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError, choices

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "x0", "v")
VARIANCES = ("fixed_small", "fixed_large", "learned")


def linear_betas(num_timesteps: int, beta_start: float | None = None,
                 beta_end: float | None = None, max_beta: float = 0.999) -> np.ndarray:
  """β_t linear from beta_start to beta_end (Ho et al. 2020): float64 [T].

  The defaults are Ho et al.'s 1e-4 and 0.02 for T = 1000, scaled by 1000/T
  for other T as in Nichol & Dhariwal's code, so that ᾱ_T stays near zero;
  β is capped at `max_beta` (which only matters for T < 50).
  """
  _check_timesteps(num_timesteps)
  scale = 1000.0 / num_timesteps
  start = scale * 1e-4 if beta_start is None else beta_start
  end = scale * 0.02 if beta_end is None else beta_end
  betas = np.linspace(start, end, num_timesteps, dtype=np.float64)
  return np.minimum(betas, max_beta)


def cosine_alpha_bar(u: np.ndarray, s: float = 0.008) -> np.ndarray:
  """f(u)/f(0) with f(u) = cos²((u + s)/(1 + s) · π/2), u = t/T (Nichol & Dhariwal eq. 17)."""
  f = lambda v: np.cos((v + s) / (1.0 + s) * math.pi / 2) ** 2  # noqa: E731
  return f(np.asarray(u, np.float64)) / f(0.0)


def cosine_betas(num_timesteps: int, s: float = 0.008,
                 max_beta: float = 0.999) -> np.ndarray:
  """β_t = min(1 − ᾱ(t/T)/ᾱ((t−1)/T), 0.999) (Nichol & Dhariwal 2021): float64 [T]."""
  _check_timesteps(num_timesteps)
  steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
  alpha_bar = cosine_alpha_bar(steps, s)
  return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


def _check_timesteps(num_timesteps: int) -> None:
  if num_timesteps < 1:
    raise ConfigError(f"model.timesteps must be at least 1, got {num_timesteps}")


class Schedule(NamedTuple):
  """Tables over t = 0..T−1 (float64 numpy [T]); see the module docstring for indexing.

  posterior_*: q(x_{t−1} | x_t, x_0) = N(coef_x0·x_0 + coef_xt·x_t, β̃_t) (Ho et
  al. eqs. 6–7). posterior_log_variance is clipped at t = 0, where β̃ = 0, to
  log β̃ at t = 1 (as Nichol & Dhariwal's code does). log_variance_large is
  log β_t with the same value at t = 0: the "σ² = β_t" choice of Ho et al.
  """

  betas: np.ndarray
  alphas: np.ndarray
  alpha_bars: np.ndarray
  alpha_bars_prev: np.ndarray
  sqrt_alpha_bars: np.ndarray
  sqrt_one_minus_alpha_bars: np.ndarray
  posterior_variance: np.ndarray
  posterior_log_variance: np.ndarray
  posterior_coef_x0: np.ndarray
  posterior_coef_xt: np.ndarray
  log_variance_large: np.ndarray

  @property
  def num_timesteps(self) -> int:
    return int(self.betas.shape[0])


def from_betas(betas: np.ndarray) -> Schedule:
  """All tables of the forward process with these β (computed in float64)."""
  betas = np.asarray(betas, np.float64)
  if betas.ndim != 1 or not np.all((betas > 0) & (betas < 1)):
    raise ConfigError("noise schedule betas must be a vector with 0 < β < 1")
  alphas = 1.0 - betas
  alpha_bars = np.cumprod(alphas)
  alpha_bars_prev = np.concatenate([[1.0], alpha_bars[:-1]])
  posterior_variance = betas * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars)
  clipped = np.concatenate([posterior_variance[1:2], posterior_variance[1:]]
                           ) if len(betas) > 1 else betas.copy()
  large = np.concatenate([clipped[:1], betas[1:]])
  tables = dict(
      betas=betas,
      alphas=alphas,
      alpha_bars=alpha_bars,
      alpha_bars_prev=alpha_bars_prev,
      sqrt_alpha_bars=np.sqrt(alpha_bars),
      sqrt_one_minus_alpha_bars=np.sqrt(1.0 - alpha_bars),
      posterior_variance=posterior_variance,
      posterior_log_variance=np.log(clipped),
      posterior_coef_x0=betas * np.sqrt(alpha_bars_prev) / (1.0 - alpha_bars),
      posterior_coef_xt=(1.0 - alpha_bars_prev) * np.sqrt(alphas) / (1.0 - alpha_bars),
      log_variance_large=np.log(large),
  )
  return Schedule(**tables)


def get(name: str, num_timesteps: int) -> Schedule:
  """The named schedule ("linear" or "cosine") with T = num_timesteps."""
  if name not in SCHEDULES:
    raise ConfigError(f"model.schedule={name!r} is not one of {choices(SCHEDULES)}")
  betas = linear_betas(num_timesteps) if name == "linear" else cosine_betas(num_timesteps)
  return from_betas(betas)


def respace(schedule: Schedule, timesteps: np.ndarray) -> Schedule:
  """The forward process that visits only `timesteps` (increasing, 0-based).

  β'_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}} keeps ᾱ at every kept step (Nichol & Dhariwal
  2021, section 4), so a model trained on the full chain is exact for it.
  """
  timesteps = np.asarray(timesteps)
  if timesteps.ndim != 1 or np.any(np.diff(timesteps) <= 0) or timesteps[0] < 0 or (
      timesteps[-1] >= schedule.num_timesteps):
    raise ValueError(f"respace needs increasing timesteps in [0, "
                     f"{schedule.num_timesteps}), got {timesteps}")
  kept = schedule.alpha_bars[timesteps]
  prev = np.concatenate([[1.0], kept[:-1]])
  return from_betas(1.0 - kept / prev)


def _gather(table: np.ndarray, t: jax.Array, ndim: int) -> jax.Array:
  """table[t] broadcast against an [B, ...] array of rank ndim."""
  values = jnp.asarray(np.asarray(table, np.float32))[t]
  return values.reshape(values.shape + (1,) * (ndim - values.ndim))


def q_mean_variance(schedule: Schedule, *, x0: jax.Array, t: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """Mean and variance of q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) (Ho et al. eq. 4)."""
  mean = _gather(schedule.sqrt_alpha_bars, t, x0.ndim) * x0
  variance = _gather(1.0 - schedule.alpha_bars, t, x0.ndim)
  return mean, jnp.broadcast_to(variance, x0.shape)


def q_sample(schedule: Schedule, *, x0: jax.Array, t: jax.Array,
             noise: jax.Array) -> jax.Array:
  """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε. x0, noise: [B, ...]; t: int [B]."""
  return (_gather(schedule.sqrt_alpha_bars, t, x0.ndim) * x0
          + _gather(schedule.sqrt_one_minus_alpha_bars, t, x0.ndim) * noise)


def q_posterior(schedule: Schedule, *, x0: jax.Array, x_t: jax.Array, t: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Mean, variance and clipped log-variance of q(x_{t−1} | x_t, x_0) (Ho et al. eq. 7)."""
  mean = (_gather(schedule.posterior_coef_x0, t, x0.ndim) * x0
          + _gather(schedule.posterior_coef_xt, t, x0.ndim) * x_t)
  variance = jnp.broadcast_to(_gather(schedule.posterior_variance, t, x0.ndim), x0.shape)
  log_variance = jnp.broadcast_to(
      _gather(schedule.posterior_log_variance, t, x0.ndim), x0.shape)
  return mean, variance, log_variance


def predict_x0_and_eps(schedule: Schedule, *, prediction: str, output: jax.Array,
                       x_t: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(x̂_0, ε̂) implied by the network output under `prediction`.

  epsilon: x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ. x0: ε̂ = (x_t − √ᾱ x̂_0)/√(1−ᾱ).
  v (Salimans & Ho 2022): v = √ᾱ ε − √(1−ᾱ) x_0, so x̂_0 = √ᾱ x_t − √(1−ᾱ) v̂
  and ε̂ = √(1−ᾱ) x_t + √ᾱ v̂.
  """
  a = _gather(schedule.sqrt_alpha_bars, t, x_t.ndim)
  b = _gather(schedule.sqrt_one_minus_alpha_bars, t, x_t.ndim)
  if prediction == "epsilon":
    return (x_t - b * output) / a, output
  if prediction == "x0":
    return output, (x_t - a * output) / b
  if prediction == "v":
    return a * x_t - b * output, b * x_t + a * output
  raise ConfigError(f"model.prediction={prediction!r} is not one of {choices(PREDICTIONS)}")


def eps_from_x0(schedule: Schedule, *, x0: jax.Array, x_t: jax.Array,
                t: jax.Array) -> jax.Array:
  """ε̂ = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t)."""
  return ((x_t - _gather(schedule.sqrt_alpha_bars, t, x_t.ndim) * x0)
          / _gather(schedule.sqrt_one_minus_alpha_bars, t, x_t.ndim))


def training_target(schedule: Schedule, *, prediction: str, x0: jax.Array,
                    noise: jax.Array, t: jax.Array) -> jax.Array:
  """What the network regresses on: ε, x_0 or v = √ᾱ ε − √(1−ᾱ) x_0."""
  if prediction == "epsilon":
    return noise
  if prediction == "x0":
    return x0
  if prediction == "v":
    return (_gather(schedule.sqrt_alpha_bars, t, x0.ndim) * noise
            - _gather(schedule.sqrt_one_minus_alpha_bars, t, x0.ndim) * x0)
  raise ConfigError(f"model.prediction={prediction!r} is not one of {choices(PREDICTIONS)}")


def model_log_variance(schedule: Schedule, *, variance: str, t: jax.Array,
                       shape: tuple[int, ...], frac: jax.Array | None = None) -> jax.Array:
  """log σ²_t of p(x_{t−1} | x_t).

  fixed_small: log β̃_t (clipped at t = 0); fixed_large: log β_t; learned:
  v log β_t + (1 − v) log β̃_t with v = (frac + 1)/2 from the network's extra
  output (Nichol & Dhariwal eq. 15).
  """
  ndim = len(shape)
  if variance == "fixed_small":
    return jnp.broadcast_to(_gather(schedule.posterior_log_variance, t, ndim), shape)
  if variance == "fixed_large":
    return jnp.broadcast_to(_gather(schedule.log_variance_large, t, ndim), shape)
  if variance == "learned":
    v = (frac + 1.0) / 2.0
    log_beta = _gather(np.log(schedule.betas), t, ndim)
    return v * log_beta + (1.0 - v) * _gather(schedule.posterior_log_variance, t, ndim)
  raise ConfigError(f"model.variance={variance!r} is not one of {choices(VARIANCES)}")
