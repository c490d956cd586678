"""Autoencoder objectives and the denoising corruption, as pure functions of arrays.

`reconstruction_loss` and `l1_penalty` return one value per example;
`kl_sparsity_penalty` returns one value per code unit, because its ρ̂_j is a
statistic of the batch (Ng 2011), not of one example. The denoising
autoencoder as a generative model (Bengio et al. 2013): `reconstruction_sample`
(a draw of P(X | x̃)), `chain_transition` (corrupt, then draw) and
`walkback_inputs` (the walk-back training pairs). Each is tested against
its formula and scipy (tests/families/autoencoder/test_losses.py).
"""

from __future__ import annotations

from collections.abc import Callable

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


# ------------------------------------------ the denoising autoencoder as a sampler


def reconstruction_sample(key: jax.Array, *, output: jax.Array, kind: str,
                          std: float | jax.Array = 1.0) -> tuple[jax.Array, jax.Array]:
  """A draw of the reconstruction distribution P(X | x̃) and its mean: ([B, ...], [B, ...]).

  The distribution whose negative log-likelihood the training loss is:
  'bernoulli': X ~ Bernoulli(sigmoid(output)) per value (draws in {0, 1});
  'mse': X ~ N(output, std² I) (squared error is its NLL for any std, up to
  scale and a constant; the method passes the ML std). `key`: one key or
  per-example keys (`jaxgen.core.rng`).
  """
  if kind == "bernoulli":
    mean = jax.nn.sigmoid(output)
    return rng.bernoulli(key, mean, output.shape).astype(output.dtype), mean
  if kind == "mse":
    return output + jnp.asarray(std, output.dtype) * rng.normal(key, output.shape,
                                                                output.dtype), output
  raise ConfigError(f"reconstruction loss {kind!r} is not one of {choices(LOSSES)}")


def chain_transition(key: jax.Array, x: jax.Array, *,
                     corrupt_fn: Callable[[jax.Array, jax.Array], jax.Array],
                     denoise_fn: Callable[[jax.Array], jax.Array], kind: str,
                     std: float | jax.Array = 1.0) -> tuple[jax.Array, jax.Array]:
  """One step of the DAE's Markov chain (Bengio et al. 2013, sec. 3.1): (x', E[X | x̃]).

  x̃ ~ C(X̃ | x) with `corrupt_fn(keys["corruption"], x)`, then
  x' ~ P(X | x̃) = `reconstruction_sample` of `denoise_fn(x̃)` (the decoder's
  output) with `keys["reconstruction"]`, where keys = rng.split(key,
  "corruption", "reconstruction").
  """
  keys = rng.split(key, "corruption", "reconstruction")
  x_tilde = corrupt_fn(keys["corruption"], x)
  return reconstruction_sample(keys["reconstruction"], output=denoise_fn(x_tilde),
                               kind=kind, std=std)


def walkback_inputs(key: jax.Array, x: jax.Array, *,
                    corrupt_fn: Callable[[jax.Array, jax.Array], jax.Array],
                    draw_fn: Callable[[jax.Array, jax.Array], jax.Array],
                    steps: int, probability: float) -> tuple[jax.Array, jax.Array]:
  """Walk-back training inputs (Bengio et al. 2013, sec. 3.3, Algorithm 2) for clean x [B, ...].

  Returns corrupted inputs [steps + 1, B, ...] and weights [steps + 1, B]: the
  training pairs are (inputs[j], x). x̃_0 ~ C(X̃ | x); for j ≥ 1,
  x*_j = `draw_fn(key_j, x̃_{j−1})` (a draw of P(X | x̃), no gradient) and
  x̃_j ~ C(X̃ | x*_j). Pair j counts (weight 1) when the walk went on j times,
  each time with probability `probability`: a geometric walk length, cut at
  `steps`. Step j's keys: rng.split(fold_in(walk, j), "reconstruction",
  "corruption"), walk/continue = rng.split(key, "walk", "continue").
  """
  keys = rng.split(key, "walk", "continue")
  batch = x.shape[0]
  weights = [jnp.ones((batch,), x.dtype)]
  if steps:
    go_on = rng.bernoulli(keys["continue"], probability, (batch, steps))
    weights += list(jnp.cumprod(go_on.astype(x.dtype), axis=1).T)
  inputs, x_star = [], x
  for j in range(steps + 1):   # a small static count: unrolled (see docs/architecture.md)
    step_keys = rng.split(jax.random.fold_in(keys["walk"], j), "reconstruction", "corruption")
    if j:
      x_star = jax.lax.stop_gradient(draw_fn(step_keys["reconstruction"], inputs[-1]))
    inputs.append(corrupt_fn(step_keys["corruption"], x_star))
  return jnp.stack(inputs), jnp.stack(weights)
