"""Restricted Boltzmann machines as pure functions of arrays.

An RBM's parameters are {"weights": W [D, H], "visible_bias": b [D],
"hidden_bias": c [H]}. With binary hidden units h and visible units v,

  bernoulli visible:  E(v, h) = -b·v - c·h - vᵀWh,                v ∈ {0, 1}^D
  gaussian visible:   E(v, h) = ||v - b||²/2 - c·h - vᵀWh,        v ∈ R^D (unit variance)

and the free energy F(v) = -log Σ_h exp(-E(v, h)) is
  -b·v - Σ_j softplus(c_j + v·W_j)  (bernoulli),  ||v - b||²/2 - Σ_j softplus(...)  (gaussian).

Here: the conditionals p(h|v), p(v|h); the free energy; one Gibbs sweep;
the CD statistics (the "gradient" handed to optax: data minus model
expectations of ∂E/∂θ, sign as a loss gradient); the pseudo-log-likelihood and
reconstruction error (cheap monitors); exact log Z by enumerating the hidden
units (the test oracle, and usable for H ≤ ~20).

Randomness comes in through `draw(key, kind, shape)` (kind "uniform" or
"normal"), so the same sweep serves batch data (per-example noise through
`jaxgen.core.rng`) and persistent chains (noise per chain index from a key
every device shares: `chain_noise`), as docs/architecture.md's rule for
randomness in replicated state asks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxgen.core import rng
from jaxgen.errors import ConfigError

Params = dict[str, jax.Array]
Draw = Callable[[jax.Array, str, tuple[int, ...]], jax.Array]
VISIBLE = ("bernoulli", "gaussian")


def _check(visible: str) -> None:
  if visible not in VISIBLE:
    raise ConfigError(f"unknown visible units {visible!r}; valid: 'bernoulli', 'gaussian'")


def init_params(key: jax.Array, *, visible_dim: int, hidden_dim: int, init_std: float,
                data_mean: jax.Array | None = None) -> Params:
  """W ~ N(0, init_std²), c = 0, b = logit(data_mean) (clipped) or 0 (Hinton 2010, §8)."""
  weights = init_std * jax.random.normal(key, (visible_dim, hidden_dim), jnp.float32)
  if data_mean is None:
    visible_bias = jnp.zeros((visible_dim,), jnp.float32)
  else:
    p = jnp.clip(data_mean, 1e-3, 1 - 1e-3)
    visible_bias = jnp.log(p) - jnp.log1p(-p)
  return {"weights": weights, "visible_bias": visible_bias,
          "hidden_bias": jnp.zeros((hidden_dim,), jnp.float32)}


def per_example_noise(key: jax.Array, kind: str, shape: tuple[int, ...]) -> jax.Array:
  """Noise for batch data: example i of the global batch gets split(key, B)[i]."""
  return rng.normal(key, shape) if kind == "normal" else rng.uniform(key, shape)


def chain_noise(key: jax.Array, kind: str, shape: tuple[int, ...]) -> jax.Array:
  """Noise for replicated chains: chain i gets split(key, C)[i] on every device."""
  keys = jax.random.split(key, shape[0])
  fn = jax.random.normal if kind == "normal" else jax.random.uniform
  return jax.vmap(lambda k: fn(k, shape[1:], jnp.float32))(keys)


def hidden_input(v: jax.Array, params: Params) -> jax.Array:
  """c + vW: [B, D] -> [B, H]."""
  return v @ params["weights"] + params["hidden_bias"]


def visible_input(h: jax.Array, params: Params) -> jax.Array:
  """b + hWᵀ: [B, H] -> [B, D]."""
  return h @ params["weights"].T + params["visible_bias"]


def hidden_probs(v: jax.Array, params: Params) -> jax.Array:
  """p(h_j = 1 | v) = σ(c_j + v·W_j): [B, H]."""
  return jax.nn.sigmoid(hidden_input(v, params))


def visible_mean(h: jax.Array, params: Params, visible: str) -> jax.Array:
  """E[v | h]: σ(b + hWᵀ) (bernoulli) or b + hWᵀ (gaussian): [B, D]."""
  _check(visible)
  x = visible_input(h, params)
  return jax.nn.sigmoid(x) if visible == "bernoulli" else x


def free_energy(*, v: jax.Array, params: Params, visible: str) -> jax.Array:
  """F(v) = -log Σ_h exp(-E(v, h)) per example: [B, D] -> [B] (nats)."""
  _check(visible)
  hidden_term = jnp.sum(jax.nn.softplus(hidden_input(v, params)), axis=-1)
  if visible == "bernoulli":
    return -v @ params["visible_bias"] - hidden_term
  return 0.5 * jnp.sum(jnp.square(v - params["visible_bias"]), axis=-1) - hidden_term


def sample_hidden(key: jax.Array, v: jax.Array, params: Params, draw: Draw) -> jax.Array:
  """h ~ p(h | v), as float 0/1: [B, H]."""
  p = hidden_probs(v, params)
  return (draw(key, "uniform", p.shape) < p).astype(v.dtype)


def sample_visible(key: jax.Array, h: jax.Array, params: Params, visible: str,
                   draw: Draw) -> jax.Array:
  """v ~ p(v | h): Bernoulli(σ(b + hWᵀ)) or N(b + hWᵀ, I): [B, D]."""
  mean = visible_mean(h, params, visible)
  if visible == "bernoulli":
    return (draw(key, "uniform", mean.shape) < mean).astype(h.dtype)
  return mean + draw(key, "normal", mean.shape)


def gibbs_sweep(key: jax.Array, v: jax.Array, params: Params, visible: str,
                draw: Draw, down: Params | None = None) -> jax.Array:
  """One block-Gibbs sweep v -> h ~ p(h|v) -> v' ~ p(v|h).

  `down`: other parameters for p(v|h) (the DBM's pre-training RBMs, whose
  up and down conditionals differ by a factor 2 on the weights).
  """
  keys = jax.random.split(key, 2)
  h = sample_hidden(keys[0], v, params, draw)
  return sample_visible(keys[1], h, params if down is None else down, visible, draw)


def gibbs_chain(key: jax.Array, v: jax.Array, params: Params, visible: str, steps: int,
                draw: Draw, down: Params | None = None) -> jax.Array:
  """`steps` sweeps in one `lax.scan`; sweep t uses fold_in(key, t)."""

  def body(v, t):
    return gibbs_sweep(jax.random.fold_in(key, t), v, params, visible, draw, down), None

  v, _ = jax.lax.scan(body, v, jnp.arange(steps))
  return v


def expected_statistics(v: jax.Array, params: Params,
                        weights: jax.Array | None = None) -> Params:
  """E[v hᵀ], E[v], E[h] over the rows of v (weighted, default uniform), h ~ p(h|v) summed exactly.

  These are E[-∂E/∂θ] for W, b, c (for gaussian visible units -∂E/∂b = v - b,
  whose b cancels in `cd_statistics`).
  """
  if weights is None:
    weights = jnp.full((v.shape[0],), 1.0 / v.shape[0], v.dtype)
  ph = hidden_probs(v, params)
  return {"weights": (v * weights[:, None]).T @ ph,
          "visible_bias": weights @ v,
          "hidden_bias": weights @ ph}


def cd_statistics(*, v_data: jax.Array, v_model: jax.Array, params: Params,
                  model_weights: jax.Array | None = None) -> Params:
  """The CD "gradient": E_model[-∂E/∂θ] - E_data[-∂E/∂θ] (a loss gradient for optax).

  With v_model the visible states after k Gibbs sweeps from the data this is
  CD-k (Hinton 2002); with persistent chains PCD (Tieleman 2008); with the
  model's exact distribution (weights p(v)) it is the exact gradient of the
  negative mean log-likelihood. The hidden units enter through p(h|v) (their
  expectation, lower variance than samples). For gaussian visible units
  -∂E/∂b = v - b, whose b cancels between the two terms, so the same form serves.
  model_weights: [M] probabilities of the rows of v_model (default uniform).
  """
  positive = expected_statistics(v_data, params)
  negative = expected_statistics(v_model, params, model_weights)
  return jax.tree.map(lambda n, p: n - p, negative, positive)


def reconstruction_error(*, v: jax.Array, params: Params, visible: str) -> jax.Array:
  """||v - E[v | h = p(h|v)]||² per example (mean-field, deterministic): [B]."""
  mean = visible_mean(hidden_probs(v, params), params, visible)
  return jnp.sum(jnp.square(v - mean), axis=-1)


def flip_free_energy_gaps(*, v: jax.Array, params: Params) -> jax.Array:
  """F(v with unit i flipped) - F(v) for every i: [B, D] (bernoulli; D passes of size H)."""
  base = hidden_input(v, params)                            # [B, H]
  sign = 1.0 - 2.0 * v                                      # +1 turns a 0 on, -1 a 1 off
  flipped = base[:, None, :] + sign[..., None] * params["weights"][None]   # [B, D, H]
  hidden_gap = (jnp.sum(jax.nn.softplus(flipped), -1)
                - jnp.sum(jax.nn.softplus(base), -1)[:, None])
  return -(sign * params["visible_bias"]) - hidden_gap


def pseudo_log_likelihood(*, v: jax.Array, params: Params) -> jax.Array:
  """Σ_i log p(v_i | v_-i) per example, exactly (Besag 1975): [B] (bernoulli)."""
  return jnp.sum(jax.nn.log_sigmoid(flip_free_energy_gaps(v=v, params=params)), -1)


def pseudo_log_likelihood_estimate(*, v: jax.Array, params: Params,
                                   key: jax.Array) -> jax.Array:
  """D · log p(v_i | v_-i) for one unit i ~ Uniform per example: unbiased for the PLL, [B].

  One extra pass of size H instead of D; `key` is one key (split over the
  batch) or per-example keys.
  """
  dim = v.shape[-1]
  index = rng.randint(key, (v.shape[0],), 0, dim)
  one_hot = jax.nn.one_hot(index, dim, dtype=v.dtype)
  flipped = v + one_hot * (1.0 - 2.0 * v)
  gap = (free_energy(v=flipped, params=params, visible="bernoulli")
         - free_energy(v=v, params=params, visible="bernoulli"))
  return dim * jax.nn.log_sigmoid(gap)


def all_binary(n: int) -> jax.Array:
  """Every configuration of n binary units: [2^n, n] (enumeration; n ≤ ~20)."""
  return jnp.asarray(list(itertools.product((0.0, 1.0), repeat=n)), jnp.float32)


def log_partition_exact(*, params: Params, visible: str) -> jax.Array:
  """log Z by enumerating the hidden units, the visible ones summed/integrated exactly.

  log Z = logsumexp_h [c·h + Σ_i softplus(b_i + (Wh)_i)] (bernoulli)
        = logsumexp_h [c·h + (||b + Wh||² - ||b||²)/2] + (D/2) log 2π (gaussian).
  """
  _check(visible)
  hidden = all_binary(params["hidden_bias"].shape[0])
  x = visible_input(hidden, params)                         # b + Wh: [2^H, D]
  if visible == "bernoulli":
    terms = hidden @ params["hidden_bias"] + jnp.sum(jax.nn.softplus(x), -1)
  else:
    dim = params["visible_bias"].shape[0]
    terms = (hidden @ params["hidden_bias"]
             + 0.5 * (jnp.sum(jnp.square(x), -1) - jnp.sum(jnp.square(params["visible_bias"])))
             + 0.5 * dim * math.log(2 * math.pi))
  return jax.nn.logsumexp(terms)
