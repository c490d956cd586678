"""The `gmm` method: init (k-means++ over the whole training split), train_step (one EM iteration), sample, evaluate.

`train_step` calls no `jax.grad`: with `model.em='batch'` it is one EM
iteration over the batch (exact EM when the batch is the training set); with
`'stepwise'` it interpolates the running sufficient statistics with the
batch's and sets the parameters from them (the running statistics, centred
at the current means, are a function of the parameters, so `model_state`
stays empty). `opt_state` is empty.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgen.core import collectives, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.families.gmm import losses, settings as settings_lib


def _protocol(m: settings_lib.ModelSettings, batch_size: int | None,
              num_train: int) -> dict[str, Any]:
  exact = m.em == "batch" and batch_size == num_train
  return {
      "estimator": "exact log p(x) under the mixture (log-sum-exp over components)",
      "units": "nats per example (log_likelihood, nll); bits per dimension for "
               "nll_bits_per_dim = nll / (D ln 2)",
      "model": f"{m.num_components} Gaussians, {m.covariance_type} covariances, "
               f"reg_covar={m.reg_covar:g}",
      "training": ("exact EM over the whole training set, one iteration per step"
                   if exact else
                   "EM on each batch, one iteration per step" if m.em == "batch" else
                   f"stepwise EM, step size (t + {m.step_size_offset:g})^-"
                   f"{m.step_size_power:g}"),
      "init": (f"{m.init} on the whole training split ({num_train} examples)"
               + (f", then {m.kmeans_iterations} Lloyd iterations"
                  if m.kmeans_iterations else "")),
  }


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The Gaussian mixture trained by EM, for `config` and the data `spec`."""
  m = settings_lib.resolve(config.model)
  precision.require_float32(config, "gmm", "closed-form EM with no network; its "
                            "covariances need float32")
  batch_size = config.get("data", {}).get("batch_size")
  return _build(m, tuple(spec.shape), _protocol(m, batch_size, spec.num_train))


def _build(m: settings_lib.ModelSettings, shape: tuple[int, ...],
           protocol: dict[str, Any]) -> Method:
  """The method's closures over the frozen settings."""
  dim = math.prod(shape)
  cov = m.covariance_type

  def flat(batch: dict[str, jax.Array]) -> jax.Array:
    return jnp.asarray(batch["x"]).reshape(batch["x"].shape[0], dim)

  def init(key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    """k-means++ (+ Lloyd) on `batch`, then sklearn's hard-assignment M-step.

    In training `batch` is the whole training split (`init_data="split"`), in
    exact and in stepwise EM alike.
    """
    keys = rng.split(key, "centres", "base")
    x = flat(batch)
    if m.init == "kmeans++":
      centres = losses.kmeans_plus_plus(keys["centres"], x, m.num_components)
    else:
      index = jax.random.choice(keys["centres"], x.shape[0], (m.num_components,),
                                replace=x.shape[0] < m.num_components)
      centres = x[index]
    centres = losses.lloyd(x, centres, m.kmeans_iterations)
    params = losses.initial_params(x=x, centres=centres, reg_covar=m.reg_covar,
                                   covariance_type=cov)
    return TrainState.create(key=keys["base"], params={"gmm": params}, opt_state={})

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    x = flat(batch)
    params = state.params["gmm"]
    metrics = {}
    if m.em == "batch":
      new, log_prob = losses.em_step(x=x, params=params, reg_covar=m.reg_covar,
                                     covariance_type=cov)
    else:
      eta = losses.step_size(step=state.step, power=m.step_size_power,
                             offset=m.step_size_offset)
      new, log_prob = losses.stepwise_em_step(x=x, params=params, eta=eta,
                                              reg_covar=m.reg_covar, covariance_type=cov)
      metrics["step_size"] = eta
    # log p(x) of the batch under the parameters *before* this M-step: EM never
    # lets it fall from one full-batch iteration to the next.
    mean_log_prob = collectives.mean_over_devices(jnp.mean(log_prob))
    metrics.update(loss=-mean_log_prob, log_likelihood=mean_log_prob,
                   min_weight=jnp.min(new["weights"]))
    return state.replace(step=state.step + 1, params={"gmm": new}), metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array], key: jax.Array
               ) -> dict[str, jax.Array]:
    """Exact per-example log p(x); deterministic, so `key` is unused."""
    del key
    log_prob = losses.log_likelihood(x=flat(batch), params=state.params["gmm"],
                                     covariance_type=cov)
    return {"log_likelihood": log_prob, "nll": -log_prob,
            "nll_bits_per_dim": -log_prob / (dim * math.log(2))}

  def sample(state: TrainState, key: jax.Array, num: int) -> jax.Array:
    """Ancestral samples: k ~ Categorical(weights), then x ~ N(μ_k, Σ_k)."""
    params = state.params["gmm"]
    scale = _scale(params["covariances"], cov, m.num_components, dim)  # [K, D, D]
    log_weights = jnp.log(params["weights"])

    def draw(k: jax.Array) -> jax.Array:
      keys = rng.split(k, "component", "noise")
      component = jax.random.categorical(keys["component"], log_weights)
      eps = jax.random.normal(keys["noise"], (dim,), params["means"].dtype)
      return params["means"][component] + scale[component] @ eps

    return rng.per_example(key, num, draw).reshape((num,) + shape)

  return Method(name="gmm", init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, eval_protocol=protocol, init_data="split")


def _scale(covariances: jax.Array, covariance_type: str, num_components: int,
           dim: int) -> jax.Array:
  """A square root L of each covariance (LLᵀ = Σ_k): [K, D, D]."""
  if covariance_type == "full":
    return jnp.linalg.cholesky(covariances)
  if covariance_type == "tied":
    return jnp.broadcast_to(jnp.linalg.cholesky(covariances), (num_components, dim, dim))
  if covariance_type == "diag":
    return jax.vmap(jnp.diag)(jnp.sqrt(covariances))
  eye = jnp.eye(dim, dtype=covariances.dtype)
  return jnp.sqrt(covariances)[:, None, None] * eye
