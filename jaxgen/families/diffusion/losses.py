"""Diffusion losses: L_simple and the terms of the variational bound.

Keyword-only functions of arrays. The per-example ones return [B] values; the
elementwise ones return arrays of their inputs' shape. Data live in the model
space, where discrete images span [-1, 1]. Units are nats unless a name says
bits.

  L_vlb = L_T + Σ_{t>1} L_{t−1} + L_0        (Ho et al. 2020, eq. 5)
  L_T     = KL(q(x_T | x_0) || N(0, I))                      prior_kl
  L_{t−1} = KL(q(x_{t−1} | x_t, x_0) || p_θ(x_{t−1} | x_t))  vlb_term, t > 0
  L_0     = −log p_θ(x_0 | x_1)                               vlb_term, t = 0
"""

from __future__ import annotations

import math

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from jaxgen.core import rng
from jaxgen.families.diffusion import schedules

# A floor on bin probabilities, as in Ho et al.'s code (1e-12).
_MIN_PROB = 1e-12


def _sum_per_example(values: jax.Array) -> jax.Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def _mean_per_example(values: jax.Array) -> jax.Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def simple_loss(*, prediction: jax.Array, target: jax.Array) -> jax.Array:
  """L_simple: ‖target − prediction‖² averaged over dimensions (Ho et al. eq. 14): [B]."""
  chex.assert_equal_shape([prediction, target])
  return _mean_per_example(jnp.square(target - prediction))


def normal_kl(*, mean1: jax.Array, logvar1: jax.Array, mean2: jax.Array,
              logvar2: jax.Array) -> jax.Array:
  """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element (broadcasting)."""
  return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2)
                + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def gaussian_log_likelihood(*, x: jax.Array, mean: jax.Array,
                            log_scale: jax.Array) -> jax.Array:
  """log N(x; mean, e^{2 log_scale}) per element."""
  z = (x - mean) * jnp.exp(-log_scale)
  return -0.5 * jnp.square(z) - log_scale - 0.5 * math.log(2.0 * math.pi)


def discretized_gaussian_log_likelihood(*, x: jax.Array, mean: jax.Array,
                                        log_scale: jax.Array,
                                        levels: int) -> jax.Array:
  """log P(x) for x on `levels` evenly spaced values in [-1, 1] (Ho et al. eq. 13).

  Each value owns the bin [x − δ, x + δ], δ = 1/(levels − 1); the bins of −1
  and +1 extend to −∞ and +∞, so the probabilities sum to one. Per element.
  """
  if levels < 2:
    raise ValueError(f"a discretized decoder needs at least 2 levels, got {levels}")
  half_width = 1.0 / (levels - 1)
  centered = x - mean
  inv_scale = jnp.exp(-log_scale)
  upper = inv_scale * (centered + half_width)
  lower = inv_scale * (centered - half_width)
  log_cdf_upper = log_ndtr(upper)            # log Φ(upper): the bin of −1
  log_survival_lower = log_ndtr(-lower)      # log(1 − Φ(lower)): the bin of +1
  # Φ(u) − Φ(l), taken in the tail where it does not cancel.
  mass = jnp.where(centered > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
  log_mass = jnp.log(jnp.maximum(mass, _MIN_PROB))
  return jnp.where(x < -1.0 + half_width, log_cdf_upper,
                   jnp.where(x > 1.0 - half_width, log_survival_lower, log_mass))


def prior_kl(schedule: schedules.Schedule, *, x0: jax.Array) -> jax.Array:
  """L_T = KL(q(x_T | x_0) || N(0, I)) summed over dimensions: [B] nats."""
  t = jnp.full((x0.shape[0],), schedule.num_timesteps - 1, jnp.int32)
  mean, variance = schedules.q_mean_variance(schedule, x0=x0, t=t)
  kl = normal_kl(mean1=mean, logvar1=jnp.log(variance), mean2=0.0, logvar2=0.0)
  return _sum_per_example(kl)


def vlb_term(schedule: schedules.Schedule, *, x0: jax.Array, x_t: jax.Array,
             t: jax.Array, model_mean: jax.Array, model_log_variance: jax.Array,
             levels: int | None) -> jax.Array:
  """L_{t−1} for t > 0 and the decoder term L_0 = −log p(x_0 | x_1) for t = 0: [B] nats.

  x0, x_t, model_mean, model_log_variance: [B, ...] in model space; t: int [B].
  The decoder is the discretized Gaussian when `levels` is set (data on a
  grid in [-1, 1]), else a Gaussian density. KL terms are never negative.
  """
  chex.assert_equal_shape([x0, x_t, model_mean, model_log_variance])
  true_mean, _, true_log_variance = schedules.q_posterior(schedule, x0=x0, x_t=x_t, t=t)
  kl = _sum_per_example(normal_kl(mean1=true_mean, logvar1=true_log_variance,
                                  mean2=model_mean, logvar2=model_log_variance))
  log_scale = 0.5 * model_log_variance
  if levels is None:
    log_likelihood = gaussian_log_likelihood(x=x0, mean=model_mean, log_scale=log_scale)
  else:
    log_likelihood = discretized_gaussian_log_likelihood(
        x=x0, mean=model_mean, log_scale=log_scale, levels=levels)
  decoder_nll = -_sum_per_example(log_likelihood)
  return jnp.where(t == 0, decoder_nll, kl)


def model_mean(schedule: schedules.Schedule, *, x0_hat: jax.Array, x_t: jax.Array,
               t: jax.Array) -> jax.Array:
  """μ_θ(x_t, t): the posterior mean with x̂_0 in place of x_0 (Ho et al. eq. 7)."""
  mean, _, _ = schedules.q_posterior(schedule, x0=x0_hat, x_t=x_t, t=t)
  return mean


def classifier_loss(*, logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Cross-entropy −log p(y | x_t, t) of a noise-conditional classifier: [B]."""
  chex.assert_rank(logits, 2)
  log_probs = jax.nn.log_softmax(logits)
  return -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]


def bound_terms(schedule: schedules.Schedule, *,
                model: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]],
                x0: jax.Array, key: jax.Array, levels: int | None) -> dict[str, jax.Array]:
  """The whole bound per example: {"prior": L_T, "decoder": L_0, "diffusion": Σ_{t>0} L_{t−1}}.

  All T terms are summed in one `lax.scan`, each with its own draw of x_t from
  q(x_t | x_0) (noise from fold_in(key, t), per example through
  `jaxgen.core.rng`). `model(x_t, t) -> (μ_θ, log σ²_θ)` of p(x_{t−1} | x_t).
  Values in nats, [B] each.
  """
  size = x0.shape[0]

  def body(diffusion, t):
    noise = rng.normal(jax.random.fold_in(key, t), x0.shape)
    tt = jnp.full((size,), t, jnp.int32)
    x_t = schedules.q_sample(schedule, x0=x0, t=tt, noise=noise)
    mean, log_variance = model(x_t, tt)
    term = vlb_term(schedule, x0=x0, x_t=x_t, t=tt, model_mean=mean,
                    model_log_variance=log_variance, levels=levels)
    return diffusion + jnp.where(t > 0, term, 0.0), jnp.where(t == 0, term, 0.0)

  diffusion, decoder = jax.lax.scan(body, jnp.zeros((size,)),
                                    jnp.arange(schedule.num_timesteps))
  return {"prior": prior_kl(schedule, x0=x0), "decoder": decoder.sum(0),
          "diffusion": diffusion}
