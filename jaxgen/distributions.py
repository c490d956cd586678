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
                      log_scale: jax.Array | float) -> jax.Array:
  """log N(x; mean, exp(log_scale)^2), diagonal: [B, ...] -> [B]."""
  chex.assert_equal_shape([x, mean])
  log_scale = jnp.broadcast_to(jnp.asarray(log_scale, x.dtype), x.shape)
  z = (x - mean) * jnp.exp(-log_scale)
  return sum_per_example(-0.5 * (LOG_2PI + z * z) - log_scale)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I): [B, ...] -> [B]."""
  return sum_per_example(-0.5 * (LOG_2PI + z * z))


def gaussian_kl(*, mean: jax.Array, logvar: jax.Array,
                prior_mean: jax.Array | float = 0.0,
                prior_logvar: jax.Array | float = 0.0) -> jax.Array:
  """KL(N(mean, e^logvar) || N(prior_mean, e^prior_logvar)), diagonal: [B, d] -> [B].

  Closed form per dimension: ½ [log σ_p²/σ_q² + (σ_q² + (μ_q − μ_p)²)/σ_p² − 1].
  """
  chex.assert_equal_shape([mean, logvar])
  prior_mean = jnp.broadcast_to(jnp.asarray(prior_mean, mean.dtype), mean.shape)
  prior_logvar = jnp.broadcast_to(jnp.asarray(prior_logvar, mean.dtype), mean.shape)
  per_dim = 0.5 * (prior_logvar - logvar
                   + (jnp.exp(logvar) + (mean - prior_mean) ** 2)
                   * jnp.exp(-prior_logvar) - 1.0)
  return sum_per_example(per_dim)


def diagonal_gaussian_log_prob(*, z: jax.Array, mean: jax.Array,
                               logvar: jax.Array) -> jax.Array:
  """log N(z; mean, diag(e^logvar)): [B, d] -> [B]."""
  return gaussian_log_prob(x=z, mean=mean, log_scale=0.5 * logvar)
