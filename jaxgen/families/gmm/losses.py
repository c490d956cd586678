"""EM for Gaussian mixtures as pure functions of arrays.

Follows scikit-learn's `GaussianMixture` update by update, so that the oracle
test can compare the two iteration by iteration (tests/families/gmm):

* `log_gaussian_prob`: log N(x_i; μ_k, Σ_k) for every example and component;
* `e_step`: log p(x_i) and the log responsibilities, by log-sum-exp;
* `m_step`: weights, means and covariances from the responsibilities over the
  global batch (exact EM; Dempster et al. 1977), the covariances centred at
  the new means (two passes, as sklearn) plus `reg_covar` on the diagonal;
* `stepwise_em_step` (with `statistics`, `params_from_statistics`,
  `stepwise_update`): stepwise (online) EM on minibatches (Cappé & Moulines
  2009; Liang & Klein 2009), which interpolates the expected sufficient
  statistics with step size η_t;
* `kmeans_plus_plus`, `lloyd`: the initialisation (Arthur & Vassilvitskii 2007);
* `num_parameters`, `bic`, `aic`: model selection, as sklearn counts them.

Batch statistics are batch *means* passed through `mean_over_devices`, so one
device, many devices and `pmap` give the same update.

Shapes: x [B, D]; weights [K]; means [K, D]; covariances [K, D, D] (full),
[D, D] (tied), [K, D] (diag) or [K] (spherical).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.core import collectives
from jaxgen.errors import ConfigError, choices

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
Params = dict[str, jax.Array]


def _check_type(covariance_type: str) -> None:
  if covariance_type not in COVARIANCE_TYPES:
    raise ConfigError(f"unknown covariance_type {covariance_type!r}; valid: "
                      f"{choices(COVARIANCE_TYPES)}")


def _floor(dtype) -> float:
  """sklearn's 10·eps added to the component counts, so none is exactly zero."""
  return 10 * float(jnp.finfo(dtype).eps)


def log_gaussian_prob(*, x: jax.Array, means: jax.Array, covariances: jax.Array,
                      covariance_type: str) -> jax.Array:
  """log N(x_i; μ_k, Σ_k): [B, D] -> [B, K] (nats)."""
  _check_type(covariance_type)
  dim = x.shape[-1]
  diff = x[:, None, :] - means[None]                       # [B, K, D]
  if covariance_type in ("full", "tied"):
    chol = jnp.linalg.cholesky(covariances)                # [K, D, D] or [D, D]
    if covariance_type == "tied":
      chol = jnp.broadcast_to(chol, (means.shape[0], dim, dim))
    # L⁻¹ once per component (as sklearn's precision Cholesky), then one
    # batched matmul: a triangular solve per example is ~20x slower on CPU.
    eye = jnp.broadcast_to(jnp.eye(dim, dtype=x.dtype), chol.shape)
    inverse = jax.vmap(lambda c, e: jax.scipy.linalg.solve_triangular(c, e, lower=True))(
        chol, eye)                                         # [K, D, D]
    mahalanobis = jnp.sum(jnp.einsum("kij,bkj->bki", inverse, diff) ** 2, axis=-1)
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
  elif covariance_type == "diag":
    mahalanobis = jnp.sum(diff ** 2 / covariances[None], axis=-1)
    log_det = jnp.sum(jnp.log(covariances), axis=-1)
  else:
    mahalanobis = jnp.sum(diff ** 2, axis=-1) / covariances[None]
    log_det = dim * jnp.log(covariances)
  return -0.5 * (dim * math.log(2 * math.pi) + log_det[None] + mahalanobis)


def e_step(*, x: jax.Array, params: Params, covariance_type: str
           ) -> tuple[jax.Array, jax.Array]:
  """(log p(x_i) [B], log responsibilities log p(k | x_i) [B, K])."""
  weighted = log_gaussian_prob(x=x, means=params["means"],
                               covariances=params["covariances"],
                               covariance_type=covariance_type)
  weighted = weighted + jnp.log(params["weights"])[None]
  log_prob = jax.nn.logsumexp(weighted, axis=1)
  return log_prob, weighted - log_prob[:, None]


def log_likelihood(*, x: jax.Array, params: Params, covariance_type: str) -> jax.Array:
  """log p(x_i) under the mixture: [B, D] -> [B] (nats)."""
  return e_step(x=x, params=params, covariance_type=covariance_type)[0]


def m_step(*, x: jax.Array, resp: jax.Array, reg_covar: float,
           covariance_type: str) -> Params:
  """The maximum-likelihood parameters given responsibilities resp [B, K].

  Exact over the global batch: each batch mean goes through
  `mean_over_devices`. The covariances are centred at the new means (a second
  pass), as sklearn's `_estimate_gaussian_parameters`, which keeps float32
  accurate where E[xxᵀ] − μμᵀ would cancel.
  """
  _check_type(covariance_type)
  dim = x.shape[-1]
  counts, first = collectives.mean_over_devices(
      (jnp.mean(resp, axis=0), resp.T @ x / x.shape[0]))
  counts = counts + _floor(x.dtype)
  means = first / counts[:, None]
  diff = x[:, None, :] - means[None]                       # [B, K, D]
  if covariance_type in ("full", "tied"):
    scatter = jnp.einsum("bk,bki,bkj->kij", resp, diff, diff) / x.shape[0]
    scatter = collectives.mean_over_devices(scatter)
    if covariance_type == "full":
      covariances = scatter / counts[:, None, None] + reg_covar * jnp.eye(dim, dtype=x.dtype)
    else:
      covariances = (jnp.sum(scatter, axis=0) / jnp.sum(counts)
                     + reg_covar * jnp.eye(dim, dtype=x.dtype))
  else:
    scatter = collectives.mean_over_devices(
        jnp.einsum("bk,bkd->kd", resp, diff ** 2) / x.shape[0])
    covariances = scatter / counts[:, None] + reg_covar
    if covariance_type == "spherical":
      covariances = jnp.mean(covariances, axis=1)
  return {"weights": counts / jnp.sum(counts), "means": means, "covariances": covariances}


def em_step(*, x: jax.Array, params: Params, reg_covar: float, covariance_type: str
            ) -> tuple[Params, jax.Array]:
  """One EM iteration: (new params, log p(x_i) [B] under the *old* params)."""
  log_prob, log_resp = e_step(x=x, params=params, covariance_type=covariance_type)
  new = m_step(x=x, resp=jnp.exp(log_resp), reg_covar=reg_covar,
               covariance_type=covariance_type)
  return new, log_prob


# ----------------------------------------------------------- stepwise EM


def statistics(*, x: jax.Array, resp: jax.Array, centres: jax.Array,
               covariance_type: str) -> Params:
  """Expected sufficient statistics, averaged over the global batch.

  Centred at each component's current mean c_k = `centres[k]`, which keeps
  the second moments well conditioned in float32 (E[xxᵀ] − μμᵀ loses the
  variance of a tight component far from the origin):
  s0 = E[r_k], s1 = E[r_k (x − c_k)] [K, D], s2 = E[r_k (x − c_k)(x − c_k)ᵀ]
  ([K, D, D] for full; summed over k, [D, D], for tied) or E[r_k (x − c_k)²]
  ([K, D], diag and spherical).
  """
  _check_type(covariance_type)
  diff = x[:, None, :] - centres[None]                     # [B, K, D]
  n = x.shape[0]
  if covariance_type == "full":
    second = jnp.einsum("bk,bki,bkj->kij", resp, diff, diff) / n
  elif covariance_type == "tied":
    second = jnp.einsum("bk,bki,bkj->ij", resp, diff, diff) / n
  else:
    second = jnp.einsum("bk,bkd->kd", resp, diff ** 2) / n
  return collectives.mean_over_devices(
      {"s0": jnp.mean(resp, axis=0), "s1": jnp.einsum("bk,bkd->kd", resp, diff) / n,
       "s2": second})


def params_from_statistics(*, stats: Params, centres: jax.Array, reg_covar: float,
                           covariance_type: str) -> Params:
  """The M-step from expected sufficient statistics centred at `centres` (see `statistics`)."""
  _check_type(covariance_type)
  counts = stats["s0"] + _floor(stats["s0"].dtype)
  offsets = stats["s1"] / counts[:, None]                  # μ_k − c_k
  eye = jnp.eye(centres.shape[1], dtype=centres.dtype)
  if covariance_type == "full":
    covariances = (stats["s2"] / counts[:, None, None]
                   - jnp.einsum("ki,kj->kij", offsets, offsets) + reg_covar * eye)
  elif covariance_type == "tied":
    between = jnp.einsum("k,ki,kj->ij", counts, offsets, offsets)
    covariances = (stats["s2"] - between) / jnp.sum(counts) + reg_covar * eye
  else:
    covariances = jnp.maximum(stats["s2"] / counts[:, None] - offsets ** 2, 0.0)
    covariances = covariances + reg_covar
    if covariance_type == "spherical":
      covariances = jnp.mean(covariances, axis=1)
  return {"weights": counts / jnp.sum(counts), "means": centres + offsets,
          "covariances": covariances}


def statistics_of_params(*, params: Params, reg_covar: float,
                         covariance_type: str) -> Params:
  """The statistics, centred at the means, whose M-step gives `params` back.

  Stepwise EM keeps only the parameters: its running statistics, centred at
  the current means, are these (s1 = 0), so nothing else need be stored.
  """
  _check_type(covariance_type)
  weights, means = params["weights"], params["means"]
  variances = params["covariances"] - reg_covar * (
      jnp.eye(means.shape[1], dtype=means.dtype)
      if covariance_type in ("full", "tied") else 1.0)
  if covariance_type == "full":
    second = weights[:, None, None] * variances
  elif covariance_type == "tied":
    second = jnp.sum(weights) * variances
  elif covariance_type == "diag":
    second = weights[:, None] * variances
  else:
    second = weights[:, None] * jnp.broadcast_to(variances[:, None], means.shape)
  return {"s0": weights, "s1": jnp.zeros_like(means), "s2": second}


def stepwise_em_step(*, x: jax.Array, params: Params, eta: jax.Array, reg_covar: float,
                     covariance_type: str) -> tuple[Params, jax.Array]:
  """One stepwise EM step: (new params, log p(x_i) [B] under the old params).

  s ← (1 − η) s + η ŝ(batch), then the M-step (Liang & Klein 2009; Cappé &
  Moulines 2009). Both statistics are centred at the current means.
  """
  log_prob, log_resp = e_step(x=x, params=params, covariance_type=covariance_type)
  batch_stats = statistics(x=x, resp=jnp.exp(log_resp), centres=params["means"],
                           covariance_type=covariance_type)
  stats = stepwise_update(
      stats=statistics_of_params(params=params, reg_covar=reg_covar,
                                 covariance_type=covariance_type),
      batch_stats=batch_stats, eta=eta)
  return params_from_statistics(stats=stats, centres=params["means"], reg_covar=reg_covar,
                                covariance_type=covariance_type), log_prob


def step_size(*, step: jax.Array, power: float, offset: float) -> jax.Array:
  """η_t = (t + offset)^(−power): Σ η_t = ∞ and Σ η_t² < ∞ for power in (0.5, 1]."""
  return (step.astype(jnp.float32) + offset) ** (-power)


def stepwise_update(*, stats: Params, batch_stats: Params, eta: jax.Array) -> Params:
  """s ← (1 − η) s + η ŝ (Liang & Klein 2009, stepwise EM)."""
  return jax.tree.map(lambda s, b: (1 - eta).astype(s.dtype) * s + eta.astype(s.dtype) * b,
                      stats, batch_stats)


# -------------------------------------------------------- initialisation


def kmeans_plus_plus(key: jax.Array, x: jax.Array, num_clusters: int) -> jax.Array:
  """k-means++ seeding (Arthur & Vassilvitskii 2007): centres [K, D].

  The first centre is a uniform draw; each next one is drawn with probability
  proportional to the squared distance to the nearest centre so far (uniform
  when every point is already a centre, e.g. K > B).
  """
  keys = jax.random.split(key, num_clusters)
  first = x[jax.random.randint(keys[0], (), 0, x.shape[0])]
  centres = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(first)
  nearest = jnp.sum((x - first) ** 2, axis=1)

  def body(i, carry):
    centres, nearest = carry
    logits = jnp.where(jnp.sum(nearest) > 0, jnp.log(nearest), 0.0)
    centre = x[jax.random.categorical(keys[i], logits)]
    nearest = jnp.minimum(nearest, jnp.sum((x - centre) ** 2, axis=1))
    return centres.at[i].set(centre), nearest

  centres, _ = jax.lax.fori_loop(1, num_clusters, body, (centres, nearest))
  return centres


def assign(x: jax.Array, centres: jax.Array) -> jax.Array:
  """Index of the nearest centre for each point: [B]."""
  distances = (jnp.sum(x ** 2, 1)[:, None] - 2 * x @ centres.T
               + jnp.sum(centres ** 2, 1)[None])
  return jnp.argmin(distances, axis=1)


def lloyd(x: jax.Array, centres: jax.Array, iterations: int) -> jax.Array:
  """`iterations` Lloyd steps of k-means; an empty cluster keeps its centre."""
  def body(_, centres):
    onehot = jax.nn.one_hot(assign(x, centres), centres.shape[0], dtype=x.dtype)
    counts = jnp.sum(onehot, axis=0)
    sums = onehot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres)
  return jax.lax.fori_loop(0, iterations, body, centres)


def initial_params(*, x: jax.Array, centres: jax.Array, reg_covar: float,
                   covariance_type: str) -> Params:
  """Parameters from hard assignments to `centres` (sklearn's `_initialize`)."""
  resp = jax.nn.one_hot(assign(x, centres), centres.shape[0], dtype=x.dtype)
  return m_step(x=x, resp=resp, reg_covar=reg_covar, covariance_type=covariance_type)


# ------------------------------------------------------- model selection


def num_parameters(*, num_components: int, dim: int, covariance_type: str) -> int:
  """Free parameters of the mixture, counted as sklearn's `_n_parameters`."""
  _check_type(covariance_type)
  k, d = num_components, dim
  covariance = {"full": k * d * (d + 1) // 2, "diag": k * d,
                "tied": d * (d + 1) // 2, "spherical": k}[covariance_type]
  return covariance + k * d + k - 1


def bic(*, log_likelihoods: jax.Array, num_params: int) -> jax.Array:
  """Bayesian information criterion −2 Σ log p(x_i) + p log N (Schwarz 1978)."""
  n = log_likelihoods.shape[0]
  return -2 * jnp.sum(log_likelihoods) + num_params * math.log(n)


def aic(*, log_likelihoods: jax.Array, num_params: int) -> jax.Array:
  """Akaike information criterion −2 Σ log p(x_i) + 2p (Akaike 1974)."""
  return -2 * jnp.sum(log_likelihoods) + 2 * num_params
