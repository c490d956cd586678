"""Autoencoder objectives and the denoising corruption, as pure functions of arrays.

`reconstruction_loss` and `l1_penalty` return one value per example;
`kl_sparsity_penalty` returns one value per code unit, because its ρ̂_j is a
statistic of the batch (Ng 2011), not of one example. Each is tested against
its formula and scipy (tests/families/autoencoder/test_losses.py).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxgen import distributions
from jaxgen.core import rng
from jaxgen.errors import ConfigError, choices

LOSSES = ("bernoulli", "mse")
CORRUPTIONS = ("gaussian", "masking", "salt_pepper")


def reconstruction_loss(*, x: jax.Array, output: jax.Array, kind: str) -> jax.Array:
  """Per-example loss of the decoder output: [B, ...] -> [B].

  'bernoulli': cross-entropy −log p(x | sigmoid(output)), x in [0, 1] (output
  holds logits); 'mse': the sum of squared errors Σ (x − output)².
  """
  chex.assert_equal_shape([x, output])
  if kind == "bernoulli":
    return -distributions.bernoulli_log_prob(x=x, logits=output)
  if kind == "mse":
    return distributions.sum_per_example((x - output) ** 2)
  raise ConfigError(f"reconstruction loss {kind!r} is not one of {choices(LOSSES)}")


def l1_penalty(*, code: jax.Array) -> jax.Array:
  """Σ_j |h_j| per example: [B, d] -> [B]."""
  return jnp.sum(jnp.abs(code), axis=-1)


def kl_sparsity_penalty(*, mean_activation: jax.Array, target: float) -> jax.Array:
  """KL(Bernoulli(ρ) || Bernoulli(ρ̂_j)) per unit: [d] -> [d].

  ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), Ng 2011 (CS294A notes, sec. 3).
  ρ̂ is clipped to [1e-6, 1 − 1e-6] so a dead or saturated unit stays finite.
  """
  if not 0.0 < target < 1.0:
    raise ConfigError(f"model.sparsity_target must lie in (0, 1), got {target}")
  rho_hat = jnp.clip(mean_activation, 1e-6, 1.0 - 1e-6)
  return (target * jnp.log(target / rho_hat)
          + (1.0 - target) * jnp.log((1.0 - target) / (1.0 - rho_hat)))


def corrupt(key: jax.Array, x: jax.Array, *, kind: str, rate: float = 0.25,
            noise_std: float = 0.5, low: float = 0.0, high: float = 1.0) -> jax.Array:
  """A corrupted copy x̃ of x: [B, ...] -> [B, ...], one independent draw per example.

  'gaussian': x + noise_std·ε; 'masking': each value with probability `rate`
  set to `low` (the background); 'salt_pepper': each value with probability
  `rate` set to `low` or `high`, each with probability ½ (Vincent et al. 2010,
  sec. 4.2). `key` is one key or per-example keys [B]; noise comes from
  `jaxgen.core.rng`, so it does not depend on how the batch is spread over
  devices (nor, with per-example keys, on the batch an example is in).
  """
  if kind == "gaussian":
    return x + noise_std * rng.normal(key, x.shape, x.dtype)
  if kind == "masking":
    return jnp.where(rng.bernoulli(key, rate, x.shape), jnp.asarray(low, x.dtype), x)
  if kind == "salt_pepper":
    u = rng.uniform(key, x.shape)
    # u < rate/2: pepper (low); rate/2 <= u < rate: salt (high); else unchanged.
    noisy = jnp.where(u < 0.5 * rate, low, high).astype(x.dtype)
    return jnp.where(u < rate, noisy, x)
  raise ConfigError(f"model.corruption={kind!r} is not one of {choices(CORRUPTIONS)}")
