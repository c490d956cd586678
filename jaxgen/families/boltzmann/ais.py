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

Reverse AIS (Burda, Grosse & Salakhutdinov 2015) runs the same chain the other
way, from the model (β = 1) to the base model (β = 0): started at x_K, it
first moves x_K by the β = 1 transition, then for k = K..1 adds
log p*_β_{k-1}(x) - log p*_β_k(x) and moves x by the β_{k-1} transition.
  * From exact samples of the model, mean(w) is unbiased for Z_A / Z_B, so
    log Ẑ_B = log Z_A - logmeanexp(log w) is biased *high*: with forward AIS
    it sandwiches log Z (`reverse_estimate`; the oracle tests draw exact samples).
  * From a test point v (RAISE), -F(v) - log Z_A + logmeanexp(log w) is the log
    of an unbiased estimate of p_ann(v), the probability of v under the
    directed "annealing model" (x_0 ~ p_A, then the forward transitions, whose
    last state approximates p_B as K grows): a stochastic lower bound on
    log p_ann(v), needing no sample of the model (`raise_log_likelihood`).
    Burda et al. find it errs low where forward AIS errs high; it is not a
    bound on log p_B(v) itself.

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


def rbm_base_log_z(params: Params, visible: str) -> jax.Array:
  """log Z_A of the base-rate model (its hidden units free: H log 2)."""
  bias = params["base_bias"]
  hidden_dim = params["hidden_bias"].shape[0]
  if visible == "bernoulli":
    return jnp.sum(jax.nn.softplus(bias)) + hidden_dim * math.log(2)
  return jnp.asarray(0.5 * bias.shape[0] * math.log(2 * math.pi) + hidden_dim * math.log(2))


def _rbm_base(params: Params, key: jax.Array, runs: int, visible: str
              ) -> tuple[jax.Array, jax.Array]:
  """(x_1 ~ p_A [M, D], log Z_A)."""
  bias = params["base_bias"]
  if visible == "bernoulli":
    v = (energies.chain_noise(key, "uniform", (runs,) + bias.shape)
         < jax.nn.sigmoid(bias)).astype(jnp.float32)
  else:
    v = bias + energies.chain_noise(key, "normal", (runs,) + bias.shape)
  return v, rbm_base_log_z(params, visible)


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
  log_w = _anneal(params, x, betas, keys[1], model=model, visible=visible, chunk=chunk,
                  progress=progress, description=description)
  return log_w, log_z_base


def _anneal(params: Params, x: Any, betas: np.ndarray, key: jax.Array, *, model: str,
            visible: str, chunk: int, progress: bool, description: str) -> jax.Array:
  """The log weights of the runs started at x over `betas` (chunks padded with betas[-1])."""
  log_w = jnp.zeros((jax.tree.leaves(x)[0].shape[0],), jnp.float32)
  steps = len(betas) - 1
  chunk = max(1, min(chunk, steps))
  padded = np.concatenate([betas, np.full(-steps % chunk, betas[-1])]).astype(np.float32)
  bar = tqdm.tqdm(total=steps, desc=description, unit="temperature", disable=not progress,
                  leave=False)
  for start in range(0, steps, chunk):
    index = jnp.arange(start + 1, start + chunk + 1)
    x, log_w = _chunk(params, x, log_w, jnp.asarray(padded[start:start + chunk + 1]), index,
                      key, model=model, visible=visible)
    bar.update(min(chunk, steps - start))
  bar.close()
  return log_w


@functools.partial(jax.jit, static_argnames=("model", "visible"))
def _first_reverse_move(params: Params, x: Any, key: jax.Array, *, model: str,
                        visible: str) -> Any:
  """The β = 1 transition that starts a reverse run (temperature index 0)."""
  return MODELS[model][1](params, jax.random.fold_in(key, 0), jnp.float32(1.0), x, visible)


def reverse_log_weights(*, model: str, params: Params, betas: np.ndarray, key: jax.Array,
                        start: Any, visible: str = "bernoulli", chunk: int = 500,
                        progress: bool = False, description: str = "reverse AIS"
                        ) -> tuple[jax.Array, jax.Array]:
  """(log w [M], log Z_A) of reverse runs from the states `start` ([M, D], or a tuple).

  From exact samples of the model, mean(w) is unbiased for Z_A / Z_B. Move k
  (k = 0 the first, at β = 1) draws from fold_in(key, k), so the weights do
  not depend on the chunk size.
  """
  if model != "rbm":
    raise ValueError(f"reverse AIS is implemented for the RBM, not {model!r}")
  x = _first_reverse_move(params, start, key, model=model, visible=visible)
  log_w = _anneal(params, x, np.asarray(betas)[::-1].copy(), key, model=model,
                  visible=visible, chunk=chunk, progress=progress, description=description)
  return log_w, rbm_base_log_z(params, visible)


def reverse_estimate(*, params: Params, betas: np.ndarray, key: jax.Array, start: jax.Array,
                     visible: str = "bernoulli", chunk: int = 500, progress: bool = False
                     ) -> dict[str, jax.Array]:
  """Reverse AIS's log Ẑ = log Z_A - logmeanexp(log w) (biased high from exact samples).

  log_z_stderr: the delta-method standard error, as for the forward estimate.
  """
  log_w, log_z_base = reverse_log_weights(model="rbm", params=params, betas=betas, key=key,
                                          start=start, visible=visible, chunk=chunk,
                                          progress=progress)
  forward = summarize(log_w, jnp.zeros(()))            # log mean w and its error
  return {"log_z": log_z_base - forward["log_z"], "log_z_stderr": forward["log_z_stderr"],
          "ess": forward["ess"], "log_w_std": forward["log_w_std"],
          "log_z_base": log_z_base}


def raise_log_likelihood(*, params: Params, v: jax.Array, keys: jax.Array,
                         betas: np.ndarray, runs: int, visible: str = "bernoulli"
                         ) -> jax.Array:
  """RAISE per example (Burda et al. 2015): log of an unbiased estimate of p_ann(v), [B].

  `runs` reverse chains start at each test point v (example i's from keys[i],
  so the value does not depend on the batch); -F(v) - log Z_A + logmeanexp(log w).
  Traceable (one `lax.scan` over the temperatures): a per-example evaluator.
  """
  reverse = jnp.asarray(np.asarray(betas)[::-1].copy(), jnp.float32)
  index = jnp.arange(1, reverse.shape[0])

  def one(v_i, key):
    x = jnp.broadcast_to(v_i, (runs,) + v_i.shape)
    x = _first_reverse_move(params, x, key, model="rbm", visible=visible)
    _, log_w = _chunk(params, x, jnp.zeros((runs,), jnp.float32), reverse, index, key,
                      model="rbm", visible=visible)
    return jax.nn.logsumexp(log_w) - math.log(runs)

  log_mean_w = jax.vmap(one)(v, keys)
  return (-energies.free_energy(v=v, params=params, visible=visible)
          - rbm_base_log_z(params, visible) + log_mean_w)


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
