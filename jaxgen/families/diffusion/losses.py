"""Diffusion objectives: L_simple, the terms of the variational bound, the hybrid loss.

Keyword-only pure functions of arrays returning per-example [B] values. Data
live in the model space, where discrete images span [-1, 1]. Units are nats
unless a name says bits. The network enters as a function
`network(x_t, t) -> (output, variance_output or None)`, so each objective can
be tested with any stand-in for it.

  L_vlb = L_T + Σ_{t>1} L_{t−1} + L_0        (Ho et al. 2020, eq. 5)
  L_T     = KL(q(x_T | x_0) || N(0, I))                      prior_kl
  L_{t−1} = KL(q(x_{t−1} | x_t, x_0) || p_θ(x_{t−1} | x_t))  vlb_term, t > 0
  L_0     = −log p_θ(x_0 | x_1)                               vlb_term, t = 0

Training objectives (`OBJECTIVES`, chosen by `model.loss`):
  simple  L_simple = ‖target − f_θ(x_t, t)‖², mean over dimensions (Ho et al. eq. 14)
  vlb     T · L_{t−1} at the drawn t, in bits/dim (E_t of it is the whole sum)
  hybrid  L_simple + λ T · L_{t−1}, the bound term with μ_θ's gradient stopped
          (Nichol & Dhariwal 2021, section 3.1): it trains a learned variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from jaxgen import distributions
from jaxgen.core import rng
from jaxgen.data import codec as codec_lib
from jaxgen.families.diffusion import schedules

Network = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array | None]]
ReverseModel = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
OBJECTIVES = ("simple", "vlb", "hybrid")


def _mean_per_example(values: jax.Array) -> jax.Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def simple_loss(*, prediction: jax.Array, target: jax.Array) -> jax.Array:
  """‖target − prediction‖² averaged over dimensions: [B]."""
  chex.assert_equal_shape([prediction, target])
  return _mean_per_example(jnp.square(target - prediction))


def simple_objective(schedule: schedules.Schedule, *, prediction: str, output: jax.Array,
                     x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
  """L_simple for an ε, x_0 or v network (Ho et al. eq. 14; Salimans & Ho 2022): [B]."""
  target = schedules.training_target(schedule, prediction=prediction, x0=x0,
                                     noise=noise, t=t)
  return simple_loss(prediction=output, target=target)


def model_mean(schedule: schedules.Schedule, *, x0_hat: jax.Array, x_t: jax.Array,
               t: jax.Array) -> jax.Array:
  """μ_θ(x_t, t): the posterior mean with x̂_0 in place of x_0 (Ho et al. eq. 7)."""
  mean, _, _ = schedules.q_posterior(schedule, x0=x0_hat, x_t=x_t, t=t)
  return mean


def reverse_mean_log_variance(schedule: schedules.Schedule, *, prediction: str,
                              variance: str, output: jax.Array, frac: jax.Array | None,
                              x_t: jax.Array, t: jax.Array, clip: bool
                              ) -> tuple[jax.Array, jax.Array]:
  """μ_θ and log σ²_θ of p(x_{t−1} | x_t) from the network's outputs.

  `clip` clips x̂_0 to [-1, 1] before forming the mean (sampling, evaluation).
  """
  x0_hat, _ = schedules.predict_x0_and_eps(schedule, prediction=prediction,
                                           output=output, x_t=x_t, t=t)
  if clip:
    x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
  mean = model_mean(schedule, x0_hat=x0_hat, x_t=x_t, t=t)
  log_variance = schedules.model_log_variance(schedule, variance=variance, t=t,
                                              shape=x_t.shape, frac=frac)
  return mean, log_variance


def prior_kl(schedule: schedules.Schedule, *, x0: jax.Array) -> jax.Array:
  """L_T = KL(q(x_T | x_0) || N(0, I)) summed over dimensions: [B] nats."""
  t = jnp.full((x0.shape[0],), schedule.num_timesteps - 1, jnp.int32)
  mean, variance = schedules.q_mean_variance(schedule, x0=x0, t=t)
  return distributions.gaussian_kl(mean=mean, logvar=jnp.log(variance))


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
  kl = distributions.gaussian_kl(mean=true_mean, logvar=true_log_variance,
                                 prior_mean=model_mean, prior_logvar=model_log_variance)
  log_scale = 0.5 * model_log_variance
  if levels is None:
    log_likelihood = distributions.gaussian_log_prob(x=x0, mean=model_mean,
                                                     log_scale=log_scale)
  else:
    log_likelihood = codec_lib.discretized_gaussian_log_prob(
        x=x0, mean=model_mean, log_scale=log_scale, levels=levels)
  return jnp.where(t == 0, -log_likelihood, kl)


def vlb_objective(schedule: schedules.Schedule, *, x0: jax.Array, x_t: jax.Array,
                  t: jax.Array, model_mean: jax.Array, model_log_variance: jax.Array,
                  levels: int | None) -> jax.Array:
  """T · L_{t−1} in bits per dimension: [B]; its mean over uniform t estimates the bound."""
  term = vlb_term(schedule, x0=x0, x_t=x_t, t=t, model_mean=model_mean,
                  model_log_variance=model_log_variance, levels=levels)
  dims = math.prod(x0.shape[1:])
  return schedule.num_timesteps * term / (dims * math.log(2.0))


def hybrid_objective(*, simple: jax.Array, vlb: jax.Array, weight: float) -> jax.Array:
  """L_simple + λ L_vlb (Nichol & Dhariwal 2021, eq. 16): [B]."""
  return simple + weight * vlb


def training_losses(schedule: schedules.Schedule, *, objective: str, prediction: str,
                    variance: str, hybrid_weight: float, levels: int | None,
                    network: Network, x0: jax.Array, t: jax.Array, noise: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The training loss per example for given draws of t and ε: ([B], aux).

  aux holds "simple" (and "vlb" for the vlb and hybrid objectives), [B] each,
  and "x_t", the noisy inputs the network saw.
  """
  if objective not in OBJECTIVES:
    raise ValueError(f"unknown diffusion objective {objective!r}")
  x_t = schedules.q_sample(schedule, x0=x0, t=t, noise=noise)
  output, frac = network(x_t, t)
  aux = {"simple": simple_objective(schedule, prediction=prediction, output=output,
                                    x0=x0, noise=noise, t=t), "x_t": x_t}
  if objective == "simple":
    return aux["simple"], aux
  # Hybrid: L_vlb trains only the variance (Nichol & Dhariwal section 3.1).
  mean_output = jax.lax.stop_gradient(output) if objective == "hybrid" else output
  mean, log_variance = reverse_mean_log_variance(
      schedule, prediction=prediction, variance=variance, output=mean_output,
      frac=frac, x_t=x_t, t=t, clip=False)
  aux["vlb"] = vlb_objective(schedule, x0=x0, x_t=x_t, t=t, model_mean=mean,
                             model_log_variance=log_variance, levels=levels)
  if objective == "vlb":
    return aux["vlb"], aux
  return hybrid_objective(simple=aux["simple"], vlb=aux["vlb"], weight=hybrid_weight), aux


def _fold_in(key: jax.Array, data: jax.Array | int) -> jax.Array:
  """fold_in for one key or for per-example keys (each folded with `data`)."""
  if rng.is_per_example(key):
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(key, data)
  return jax.random.fold_in(key, data)


def bound_terms(schedule: schedules.Schedule, *, model: ReverseModel, x0: jax.Array,
                key: jax.Array, levels: int | None) -> dict[str, jax.Array]:
  """The whole bound per example: {"prior": L_T, "decoder": L_0, "diffusion": Σ_{t>0} L_{t−1}}.

  All T terms are summed in one `lax.scan`, each with its own draw of x_t from
  q(x_t | x_0): noise from fold_in(key, t), drawn through `jaxgen.core.rng`, so
  `key` may be one key or per-example keys (then example i's value depends
  only on its own key, not on the batch). `model(x_t, t) -> (μ_θ, log σ²_θ)`
  of p(x_{t−1} | x_t). Values in nats, [B] each.
  """
  size = x0.shape[0]

  def body(diffusion, t):
    noise = rng.normal(_fold_in(key, t), x0.shape)
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
