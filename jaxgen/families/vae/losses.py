"""The VAE objectives as pure functions of arrays, one value per example.

The β-ELBO (Kingma & Welling 2014; Higgins et al. 2017) is assembled from
`log_likelihood` (the reconstruction term log p(x|z)) and `kl_divergence`
(the closed-form KL(q(z|x) || N(0, I))); the IWAE bound (Burda et al. 2016)
from `log_importance_weight` and `iwae_bound`, or, for evaluation with many
samples in bounded memory, `importance_weighted_bound`. The method wires the
networks to these; every function here is tested against a closed form or
scipy (tests/families/vae/test_losses.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxgen import distributions
from jaxgen.core import rng
from jaxgen.errors import ConfigError, choices

LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic")


def reparameterize(*, mean: jax.Array, logvar: jax.Array, eps: jax.Array) -> jax.Array:
  """z = mean + σ·eps with σ = exp(logvar / 2): the reparameterisation trick."""
  return mean + jnp.exp(0.5 * logvar) * eps


def log_likelihood(*, x: jax.Array, location: jax.Array, log_scale: jax.Array,
                   kind: str, levels: int | None = None, low: float = 0.0,
                   high: float = 1.0) -> jax.Array:
  """log p(x | decoder output), the reconstruction term: [B, ...] -> [B] (nats).

  kind 'bernoulli': `location` holds logits; 'gaussian': N(location,
  exp(log_scale)²); 'discretized_logistic': a logistic of scale exp(log_scale)
  discretized to `levels` values on [low, high] (Salimans et al. 2017).
  """
  if kind == "bernoulli":
    return distributions.bernoulli_log_prob(x=x, logits=location)
  if kind == "discretized_logistic":
    return distributions.discretized_logistic_log_prob(
        x=x, mean=location, log_scale=log_scale, levels=levels, low=low, high=high)
  if kind == "gaussian":
    return distributions.gaussian_log_prob(x=x, mean=location, log_scale=log_scale)
  raise ConfigError(f"likelihood {kind!r} is not one of {choices(LIKELIHOODS)}")


def kl_divergence(*, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, diag e^logvar) || N(0, I)) in closed form: [B, d] -> [B]."""
  return distributions.gaussian_kl(mean=mean, logvar=logvar)


def elbo_terms(*, reconstruction: jax.Array, kl: jax.Array) -> dict[str, jax.Array]:
  """Per-example reconstruction log-likelihood, KL and ELBO = reconstruction − KL."""
  return {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}


def beta_elbo_loss(*, reconstruction: jax.Array, kl: jax.Array,
                   beta: jax.Array | float) -> jax.Array:
  """The negative β-ELBO β·KL − log p(x|z) per example (Higgins et al. 2017)."""
  return beta * kl - reconstruction


def kl_weight(*, step: jax.Array, beta: float, warmup_steps: int) -> jax.Array:
  """β at `step`: constant, or ramped linearly from 0 over `warmup_steps`.

  Bowman et al. 2016; Sønderby et al. 2016. `warmup_steps=0` turns the ramp off.
  """
  if not warmup_steps:
    return jnp.asarray(beta, jnp.float32)
  ramp = jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)
  return beta * ramp


def log_importance_weight(*, log_likelihood: jax.Array, z: jax.Array, eps: jax.Array,
                          logvar: jax.Array) -> jax.Array:
  """log w = log p(x|z) + log p(z) − log q(z|x) per example: -> [B].

  z = mean + σ·eps was drawn from q(z|x) = N(mean, diag σ²), so
  log q(z|x) = log N(eps; 0, I) − Σ log σ; p(z) = N(0, I).
  """
  log_q = distributions.standard_normal_log_prob(eps) - 0.5 * jnp.sum(logvar, -1)
  return log_likelihood + distributions.standard_normal_log_prob(z) - log_q


def iwae_bound(*, log_weights: jax.Array) -> jax.Array:
  """log (1/k) Σ_i w_i per example from log weights [k, B] -> [B] (Burda et al. eq. 8).

  k = 1 gives the one-sample ELBO estimate log w_1.
  """
  return distributions.log_mean_exp(log_weights, axis=0)


def importance_weighted_bound(log_weights: Callable[[jax.Array], jax.Array],
                              key: jax.Array, *, batch_size: int, latent_dim: int,
                              num_samples: int, chunk_size: int = 100) -> jax.Array:
  """log (1/K) Σ_{j<K} exp(log_weights(ε_j)) per example, in chunks: -> [B].

  Burda et al. 2016, eq. 8, with w_j = p(x, z_j) / q(z_j | x) and z_j the
  reparameterised sample of ε_j ~ N(0, I). `log_weights(eps)` maps
  eps: [C, B, latent_dim] to [C, B]. `key` is one key (split over the global
  batch) or per-example keys [B] (evaluation: from the examples' indices).
  Sample j of example i is drawn from `fold_in(example_key_i, j)`
  (`importance_noise`), so the estimate does not depend on `chunk_size`, the
  batch size or the device count, and the first k samples of a K-sample
  estimate are those of the k-sample one. Chunks run in a `lax.scan` with a
  running log-sum-exp: memory grows with `chunk_size`, not K. K = 1 is the
  one-sample ELBO estimate; the bound's expectation rises with K to log p(x).
  """
  if num_samples < 1 or chunk_size < 1:
    raise ConfigError(f"importance sampling needs num_samples and chunk_size >= 1, "
                      f"got {num_samples} and {chunk_size}")
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)
  example_keys = _example_keys(key, batch_size)

  def body(carry, chunk):
    running_max, running_sum = carry
    indices = chunk * chunk_size + jnp.arange(chunk_size)
    eps = _noise(example_keys, indices, latent_dim)
    log_w = log_weights(eps)
    # The last chunk may run past K; its extra samples weigh nothing.
    log_w = jnp.where((indices < num_samples)[:, None], log_w, -jnp.inf)
    new_max = jnp.maximum(running_max, jnp.max(log_w, axis=0))
    running_sum = (running_sum * jnp.exp(running_max - new_max)
                   + jnp.sum(jnp.exp(log_w - new_max), axis=0))
    return (new_max, running_sum), None

  init = (jnp.full((batch_size,), -jnp.inf), jnp.zeros((batch_size,)))
  (running_max, running_sum), _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
  return running_max + jnp.log(running_sum) - math.log(num_samples)


def _example_keys(key: jax.Array, batch_size: int) -> jax.Array:
  """Per-example keys as given, or one key split over the global batch."""
  if rng.is_per_example(key):
    if key.shape[0] != batch_size:
      raise ValueError(f"{key.shape[0]} per-example keys for a batch of {batch_size}")
    return key
  return rng.example_keys(key, batch_size)


def _noise(example_keys: jax.Array, indices: jax.Array, latent_dim: int) -> jax.Array:
  """eps[c, i] ~ N(0, I) from fold_in(example_keys[i], indices[c]): [C, B, latent_dim]."""
  def one(j: jax.Array) -> jax.Array:
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, j),
                                                (latent_dim,)))(example_keys)
  return jax.vmap(one)(indices)


def importance_noise(key: jax.Array, *, batch_size: int, latent_dim: int,
                     indices: jax.Array) -> jax.Array:
  """The noise `importance_weighted_bound` uses for samples `indices`: [C, B, d]."""
  return _noise(_example_keys(key, batch_size), jnp.asarray(indices), latent_dim)
