"""Annealed importance sampling for partition functions (Neal 2001; Salakhutdinov & Murray 2008).

The intermediate distributions interpolate the energies of a base-rate model A
(visible biases from the data marginals, no weights: its log Z_A is known) and
the model B:  p_β(x) ∝ exp(-(1 - β) E_A(x) - β E_B(x)),  0 = β_0 < ... < β_K = 1.
Each of M independent runs draws x_1 ~ p_A and, for k = 1..K, adds
log p*_β_k(x_k) - log p*_β_{k-1}(x_k) to its log weight, then moves x_k by
one Gibbs sweep that leaves p_β_k invariant. Ẑ_B = Z_A · mean(w) is unbiased for
Z_B; log Ẑ_B = log Z_A + logmeanexp(log w) (biased low by Jensen, the
"conservative" direction for a log-likelihood).

Models (the hidden units of A and B both summed out exactly):
  * RBM, x = v:  log p*_β(v) = (1-β) b_A·v + β b·v + Σ_j softplus(β(c_j + v·W_j))
    (gaussian visible: -(1-β)||v - b_A||²/2 - β||v - b||²/2 + ...);
  * 2-layer DBM, x = (v, h2) with h1 summed out analytically, as in
    Salakhutdinov & Hinton 2009: log p*_β(v, h2) = (1-β) b_A·v + β(b·v + c2·h2)
    + Σ_j softplus(β(c1_j + v·W1_j + h2·W2_j)).

The loop over temperatures is host-driven over compiled chunks of `chunk`
temperatures (a progress bar per chunk); temperature k draws from
fold_in(key, k) and run m from split(·, M)[m], so the estimate does not depend
on the chunk size. The last chunk is padded with β = 1 → 1 steps, which add
exactly 0 to every log weight.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jaxgen.families.boltzmann import energies

Params = dict[str, jax.Array]


def beta_schedule(boundaries: tuple[float, ...], counts: tuple[int, ...]) -> np.ndarray:
  """β_0 = 0, then `counts[s]` uniformly spaced values in (boundaries[s-1], boundaries[s]].

  The default (0.5, 0.9, 1) × (500, 4000, 10000) is S&M 2008's 14,500. Returns
  float64 [1 + sum(counts)], ending at exactly 1.
  """
  betas = [np.zeros(1)]
  start = 0.0
  for end, count in zip(boundaries, counts):
    betas.append(np.linspace(start, end, count + 1)[1:])
    start = end
  out = np.concatenate(betas)
  out[-1] = 1.0
  return out


def base_rate_bias(data_mean: jax.Array, count: jax.Array, pseudocount: float,
                   visible: str) -> jax.Array:
  """The base-rate model's visible biases from the training marginals.

  bernoulli: logit(p) with p = (count·mean + pseudocount/2) / (count + pseudocount);
  gaussian: the data mean (the base model is N(mean, I)).
  """
  if visible == "gaussian":
    return data_mean
  p = (count * data_mean + 0.5 * pseudocount) / (count + pseudocount)
  return jnp.log(p) - jnp.log1p(-p)


# ---------------------------------------------------------------- RBM
def _rbm_log_f(params: Params, beta: jax.Array, v: jax.Array, visible: str) -> jax.Array:
  hidden = jnp.sum(jax.nn.softplus(beta * energies.hidden_input(v, params)), -1)
  if visible == "bernoulli":
    return (1 - beta) * (v @ params["base_bias"]) + beta * (v @ params["visible_bias"]) + hidden
  return (-(1 - beta) * 0.5 * jnp.sum(jnp.square(v - params["base_bias"]), -1)
          - beta * 0.5 * jnp.sum(jnp.square(v - params["visible_bias"]), -1) + hidden)


def _rbm_transition(params: Params, key: jax.Array, beta: jax.Array, v: jax.Array,
                    visible: str) -> jax.Array:
  keys = jax.random.split(key, 2)
  p = jax.nn.sigmoid(beta * energies.hidden_input(v, params))
  h = (energies.chain_noise(keys[0], "uniform", p.shape) < p).astype(v.dtype)
  x = (1 - beta) * params["base_bias"] + beta * energies.visible_input(h, params)
  if visible == "bernoulli":
    return (energies.chain_noise(keys[1], "uniform", x.shape) < jax.nn.sigmoid(x)).astype(v.dtype)
  return x + energies.chain_noise(keys[1], "normal", x.shape)


def _rbm_base(params: Params, key: jax.Array, runs: int, visible: str
              ) -> tuple[jax.Array, jax.Array]:
  """(x_1 ~ p_A [M, D], log Z_A)."""
  bias = params["base_bias"]
  hidden_dim = params["hidden_bias"].shape[0]
  if visible == "bernoulli":
    v = (energies.chain_noise(key, "uniform", (runs,) + bias.shape)
         < jax.nn.sigmoid(bias)).astype(jnp.float32)
    log_z = jnp.sum(jax.nn.softplus(bias)) + hidden_dim * math.log(2)
  else:
    v = bias + energies.chain_noise(key, "normal", (runs,) + bias.shape)
    log_z = 0.5 * bias.shape[0] * math.log(2 * math.pi) + hidden_dim * math.log(2)
  return v, log_z


# ---------------------------------------------------------------- DBM (h1 summed out)
def _dbm_h1_input(params: Params, v: jax.Array, h2: jax.Array) -> jax.Array:
  return v @ params["w1"] + h2 @ params["w2"].T + params["c1"]


def _dbm_log_f(params: Params, beta: jax.Array, x: tuple[jax.Array, jax.Array],
               visible: str) -> jax.Array:
  del visible
  v, h2 = x
  hidden = jnp.sum(jax.nn.softplus(beta * _dbm_h1_input(params, v, h2)), -1)
  return ((1 - beta) * (v @ params["base_bias"])
          + beta * (v @ params["b"] + h2 @ params["c2"]) + hidden)


def _dbm_transition(params: Params, key: jax.Array, beta: jax.Array,
                    x: tuple[jax.Array, jax.Array], visible: str):
  del visible
  v, h2 = x
  keys = jax.random.split(key, 3)
  p1 = jax.nn.sigmoid(beta * _dbm_h1_input(params, v, h2))
  h1 = (energies.chain_noise(keys[0], "uniform", p1.shape) < p1).astype(v.dtype)
  pv = jax.nn.sigmoid((1 - beta) * params["base_bias"]
                      + beta * (h1 @ params["w1"].T + params["b"]))
  p2 = jax.nn.sigmoid(beta * (h1 @ params["w2"] + params["c2"]))
  v = (energies.chain_noise(keys[1], "uniform", pv.shape) < pv).astype(v.dtype)
  h2 = (energies.chain_noise(keys[2], "uniform", p2.shape) < p2).astype(v.dtype)
  return v, h2


def _dbm_base(params: Params, key: jax.Array, runs: int, visible: str):
  del visible
  keys = jax.random.split(key, 2)
  bias = params["base_bias"]
  h1_dim, h2_dim = params["c1"].shape[0], params["c2"].shape[0]
  v = (energies.chain_noise(keys[0], "uniform", (runs,) + bias.shape)
       < jax.nn.sigmoid(bias)).astype(jnp.float32)
  h2 = (energies.chain_noise(keys[1], "uniform", (runs, h2_dim)) < 0.5).astype(jnp.float32)
  log_z = jnp.sum(jax.nn.softplus(bias)) + (h1_dim + h2_dim) * math.log(2)
  return (v, h2), log_z


MODELS: dict[str, tuple[Callable, Callable, Callable]] = {
    "rbm": (_rbm_log_f, _rbm_transition, _rbm_base),
    "dbm": (_dbm_log_f, _dbm_transition, _dbm_base),
}


@functools.partial(jax.jit, static_argnames=("model", "visible"))
def _chunk(params: Params, x: Any, log_w: jax.Array, betas: jax.Array, index: jax.Array,
           key: jax.Array, *, model: str, visible: str) -> tuple[Any, jax.Array]:
  """Temperatures betas[1:] (from betas[0]) of every run, in one `lax.scan`."""
  log_f, transition, _ = MODELS[model]

  def body(carry, inputs):
    x, log_w = carry
    beta_prev, beta, k = inputs
    log_w = log_w + log_f(params, beta, x, visible) - log_f(params, beta_prev, x, visible)
    x = transition(params, jax.random.fold_in(key, k), beta, x, visible)
    return (x, log_w), None

  (x, log_w), _ = jax.lax.scan(body, (x, log_w), (betas[:-1], betas[1:], index))
  return x, log_w


@functools.partial(jax.jit, static_argnames=("model", "runs", "visible"))
def _start(params: Params, key: jax.Array, *, model: str, runs: int, visible: str):
  return MODELS[model][2](params, key, runs, visible)


def log_weights(*, model: str, params: Params, betas: np.ndarray, key: jax.Array,
                runs: int, visible: str = "bernoulli", chunk: int = 500,
                progress: bool = False, description: str = "AIS"
                ) -> tuple[jax.Array, jax.Array]:
  """(log w [M], log Z_A) of M AIS runs over `betas` (host loop over compiled chunks).

  params: the model's parameters plus "base_bias" (see `base_rate_bias`);
  model: "rbm" or "dbm".
  """
  keys = jax.random.split(key, 2)
  x, log_z_base = _start(params, keys[0], model=model, runs=runs, visible=visible)
  log_w = jnp.zeros((runs,), jnp.float32)
  steps = len(betas) - 1
  chunk = max(1, min(chunk, steps))
  padded = np.concatenate([betas, np.ones(-steps % chunk)]).astype(np.float32)
  bar = tqdm.tqdm(total=steps, desc=description, unit="temperature", disable=not progress,
                  leave=False)
  for start in range(0, steps, chunk):
    index = jnp.arange(start + 1, start + chunk + 1)
    x, log_w = _chunk(params, x, log_w, jnp.asarray(padded[start:start + chunk + 1]), index,
                      keys[1], model=model, visible=visible)
    bar.update(min(chunk, steps - start))
  bar.close()
  return log_w, log_z_base


def summarize(log_w: jax.Array, log_z_base: jax.Array) -> dict[str, jax.Array]:
  """log Ẑ = log Z_A + logmeanexp(log w), its standard error and the spread of the weights.

  log_z_stderr: the delta-method standard error of log Ẑ, σ(w) / (√M · mean(w));
  log_z_minus_3se / log_z_plus_3se: log(Ẑ ∓ 3 σ(w)Z_A/√M) as S&M 2008 report
  (-inf when Ẑ - 3σ ≤ 0); log_w_std: the empirical std of the log weights;
  ess: the effective sample size (Σw)² / Σw².
  """
  runs = log_w.shape[0]
  log_mean = jax.nn.logsumexp(log_w) - math.log(runs)
  ratio = jnp.exp(log_w - log_mean)                  # w / mean(w)
  rel_se = jnp.std(ratio) / math.sqrt(runs)
  log_z = log_z_base + log_mean
  low = 1.0 - 3.0 * rel_se
  return {
      "log_z": log_z,
      "log_z_stderr": rel_se,
      "log_z_minus_3se": jnp.where(low > 0, log_z + jnp.log(jnp.maximum(low, 1e-30)), -jnp.inf),
      "log_z_plus_3se": log_z + jnp.log1p(3.0 * rel_se),
      "log_w_std": jnp.std(log_w),
      "ess": jnp.sum(ratio) ** 2 / jnp.sum(ratio ** 2),
      "log_z_base": log_z_base,
  }


def estimate(*, model: str, params: Params, betas: np.ndarray, key: jax.Array, runs: int,
             visible: str = "bernoulli", chunk: int = 500, progress: bool = False
             ) -> dict[str, jax.Array]:
  """AIS's log Ẑ and its error (see `summarize`)."""
  log_w, log_z_base = log_weights(model=model, params=params, betas=betas, key=key,
                                  runs=runs, visible=visible, chunk=chunk,
                                  progress=progress)
  return summarize(log_w, log_z_base)
