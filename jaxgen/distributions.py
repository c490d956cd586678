"""Log-densities and KL divergences as pure functions of arrays.

Every function returns one value per example: it sums over all axes but the
first (the batch). Shapes are checked with chex at the boundary.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def sum_per_example(x: jax.Array) -> jax.Array:
  """Sums over every axis but the first: [B, ...] -> [B]."""
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def bernoulli_log_prob(*, x: jax.Array, logits: jax.Array) -> jax.Array:
  """log p(x) of Bernoulli(sigmoid(logits)), x in [0, 1]: [B, ...] -> [B]."""
  chex.assert_equal_shape([x, logits])
  # x*log(sigmoid(l)) + (1-x)*log(1-sigmoid(l)) = x*l - softplus(l), stable form.
  return sum_per_example(x * logits - jax.nn.softplus(logits))


def gaussian_log_prob(*, x: jax.Array, mean: jax.Array,
                      log_scale: jax.Array | float | None = None,
                      logvar: jax.Array | float | None = None) -> jax.Array:
  """log N(x; mean, σ²), diagonal, σ = exp(log_scale) = exp(logvar / 2): [B, ...] -> [B].

  Give exactly one of `log_scale` and `logvar`; it broadcasts to x's shape
  (a scalar, or e.g. a per-example [B, 1, 1, 1]).
  """
  chex.assert_equal_shape([x, mean])
  if (log_scale is None) == (logvar is None):
    raise ValueError("gaussian_log_prob takes exactly one of log_scale and logvar")
  if log_scale is None:
    log_scale = 0.5 * jnp.asarray(logvar, x.dtype)
  log_scale = jnp.broadcast_to(jnp.asarray(log_scale, x.dtype), x.shape)
  z = (x - mean) * jnp.exp(-log_scale)
  return sum_per_example(-0.5 * (LOG_2PI + z * z) - log_scale)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I): [B, ...] -> [B]."""
  return sum_per_example(-0.5 * (LOG_2PI + z * z))


def gaussian_kl(*, mean: jax.Array, logvar: jax.Array | float,
                prior_mean: jax.Array | float = 0.0,
                prior_logvar: jax.Array | float = 0.0) -> jax.Array:
  """KL(N(mean, e^logvar) || N(prior_mean, e^prior_logvar)), diagonal: [B, ...] -> [B].

  Closed form per dimension: ½ [log σ_p²/σ_q² + (σ_q² + (μ_q − μ_p)²)/σ_p² − 1],
  summed over every axis but the first. The four arguments broadcast against
  each other (e.g. a per-example log-variance [B, 1, 1, 1] or a scalar prior).
  """
  shape = jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(logvar),
                               jnp.shape(prior_mean), jnp.shape(prior_logvar))
  dtype = jnp.result_type(mean, logvar)
  mean, logvar, prior_mean, prior_logvar = (
      jnp.broadcast_to(jnp.asarray(a, dtype), shape)
      for a in (mean, logvar, prior_mean, prior_logvar))
  per_dim = 0.5 * (prior_logvar - logvar
                   + (jnp.exp(logvar) + (mean - prior_mean) ** 2)
                   * jnp.exp(-prior_logvar) - 1.0)
  return sum_per_example(per_dim)


def _log_sigmoid_difference(a: jax.Array, b: jax.Array) -> jax.Array:
  """log(sigmoid(a) − sigmoid(b)) for a > b, stable in both tails.

  sigmoid(a) − sigmoid(b) = (e^a − e^b) / ((1 + e^a)(1 + e^b)), so the log is
  a + log(1 − e^(b−a)) − softplus(a) − softplus(b): no cancellation between
  two numbers near 0 or near 1.
  """
  return a + jnp.log(-jnp.expm1(b - a)) - jax.nn.softplus(a) - jax.nn.softplus(b)


def discretized_logistic_log_prob(*, x: jax.Array, mean: jax.Array,
                                  log_scale: jax.Array | float, levels: int,
                                  low: float = 0.0, high: float = 1.0) -> jax.Array:
  """log P(x) of a logistic discretized to `levels` evenly spaced values: [B, ...] -> [B].

  Salimans et al. 2017 (PixelCNN++), eq. 2, with one logistic per value: x
  lies on the grid low + k (high − low) / (levels − 1), k = 0..levels−1. Each
  value gets the logistic mass of its bin [x − h, x + h], h = half the grid
  step; the end bins extend to ±∞, so the masses of all levels sum to 1.
  """
  chex.assert_equal_shape([x, mean])
  if levels < 2:
    raise ValueError(f"discretized logistic needs at least 2 levels, got {levels}")
  log_scale = jnp.broadcast_to(jnp.asarray(log_scale, mean.dtype), mean.shape)
  half_bin = 0.5 * (high - low) / (levels - 1)
  inv_scale = jnp.exp(-log_scale)
  upper = (x - mean + half_bin) * inv_scale
  lower = (x - mean - half_bin) * inv_scale
  log_prob = jnp.where(
      x < low + half_bin, -jax.nn.softplus(-upper),        # log sigmoid(upper)
      jnp.where(x > high - half_bin, -jax.nn.softplus(lower),  # log(1 − sigmoid(lower))
                _log_sigmoid_difference(upper, lower)))
  return sum_per_example(log_prob)


def discretized_logistic_sample(key: jax.Array, *, mean: jax.Array,
                                log_scale: jax.Array | float, levels: int,
                                low: float = 0.0, high: float = 1.0) -> jax.Array:
  """Draws from `discretized_logistic_log_prob`'s distribution (same shape as mean).

  A logistic draw mean + s·log(u / (1 − u)) rounded to the nearest grid value
  and clipped to [low, high]: exactly the bin masses above.
  """
  u = jax.random.uniform(key, mean.shape, minval=1e-7, maxval=1.0 - 1e-7)
  draw = mean + jnp.exp(log_scale) * (jnp.log(u) - jnp.log1p(-u))
  step = (high - low) / (levels - 1)
  index = jnp.clip(jnp.round((draw - low) / step), 0, levels - 1)
  return low + index * step


def log_mean_exp(log_values: jax.Array, axis: int = 0) -> jax.Array:
  """log(mean(exp(v))) along `axis`, computed without overflow."""
  count = log_values.shape[axis]
  return jax.nn.logsumexp(log_values, axis=axis) - math.log(count)
