"""The classifier methods: `gaussian_nb` (generative) and `logistic_regression`.

Both read labelled data (`batch["label"]`) and evaluate per-example accuracy,
error and NLL −log p(y | x). With `model.train_on='first_batch'` the first
training batch is kept in `model_state` and every step fits that batch only:
with `data.batch_size = m` and `train.seeds`, each seed fits its own random
m-example training set, in one program (Ng & Jordan 2002's learning curves).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.classifiers import losses, settings as settings_lib

Batch = dict[str, jax.Array]


def _check_labels(spec: Any, name: str) -> int:
  if not spec.num_classes:
    raise ConfigError(f"{name} needs labelled data; {spec.name} has no labels "
                      f"(or data.labels=False)")
  return int(spec.num_classes)


class _Data:
  """Flattening, and the choice between the incoming batch and the kept first batch."""

  def __init__(self, shape: tuple[int, ...], train_on: str):
    self.dim = math.prod(shape)
    self.train_on = train_on

  def flat(self, x: jax.Array) -> jax.Array:
    return jnp.asarray(x).reshape(x.shape[0], self.dim)

  def kept(self, batch: Batch) -> dict[str, Any]:
    """model_state at init: the first batch when training on it, else nothing."""
    if self.train_on != "first_batch":
      return {}
    return {"train_data": {"x": self.flat(batch["x"]),
                           "label": jnp.asarray(batch["label"], jnp.int32)}}

  def training(self, state: TrainState, batch: Batch) -> tuple[jax.Array, jax.Array]:
    if self.train_on == "first_batch":
      data = state.model_state["train_data"]
      return data["x"], data["label"]
    return self.flat(batch["x"]), batch["label"]


def make_nb(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """Gaussian naive Bayes fit in closed form on each training batch."""
  s = settings_lib.resolve_nb(config.model)
  precision.require_float32(config, "gaussian_nb", "a closed-form fit with no network")
  num_classes = _check_labels(spec, "gaussian_nb")
  shape = tuple(spec.shape)
  data = _Data(shape, s.train_on)
  protocol = {
      "estimator": "Gaussian naive Bayes: accuracy/error of argmax p(y|x); nll = "
                   "-log p(y|x); log_likelihood = log p(x) under the generative model",
      "units": "fractions (accuracy, error); nats per example (nll, log_likelihood)",
      "fit": f"closed form (sklearn GaussianNB), var_smoothing={s.var_smoothing:g}, on "
             + ("the first training batch" if s.train_on == "first_batch"
                else "each training batch"),
  }

  def fit(x: jax.Array, labels: jax.Array):
    return losses.fit_gaussian_nb(x=x, labels=labels, num_classes=num_classes,
                                  var_smoothing=s.var_smoothing)

  def init(key: jax.Array, batch: Batch) -> TrainState:
    params, _ = fit(data.flat(batch["x"]), jnp.asarray(batch["label"], jnp.int32))
    return TrainState.create(key=key, params={"nb": params}, opt_state={},
                             model_state=data.kept(batch))

  def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
    x, labels = data.training(state, batch)
    params, epsilon = fit(x, labels)
    log_proba = losses.predict_log_proba(
        log_joint=losses.joint_log_likelihood(x=x, params=params))
    train = collectives.mean_over_devices(
        {k: jnp.mean(v) for k, v in losses.classification_metrics(
            log_proba=log_proba, labels=labels).items()})
    metrics = {"loss": train["nll"], "train_accuracy": train["accuracy"],
               "epsilon": epsilon}
    return state.replace(step=state.step + 1, params={"nb": params}), metrics

  def evaluate(state: TrainState, batch: Batch, key: jax.Array) -> dict[str, jax.Array]:
    """Deterministic per-example values; `key` is unused."""
    del key
    log_joint = losses.joint_log_likelihood(x=data.flat(batch["x"]),
                                            params=state.params["nb"])
    values = losses.classification_metrics(
        log_proba=losses.predict_log_proba(log_joint=log_joint), labels=batch["label"])
    values["log_likelihood"] = jax.nn.logsumexp(log_joint, axis=1)
    if "mask" in batch:
      # A class absent from training has p(y|x) = 0: nll = inf on a real example
      # is the truth, but on a padding row inf·0 would turn the split's mean to NaN.
      values = {k: jnp.where(batch["mask"] > 0, v, 0.0) for k, v in values.items()}
    return values

  def sample(state: TrainState, key: jax.Array, num: int,
             labels: jax.Array | None = None) -> jax.Array:
    """x ~ p(x | y) = Π_d N(θ_yd, σ²_yd); labels default to 0, 1, ..., C−1, 0, ..."""
    params = state.params["nb"]
    labels = (jnp.arange(num) % num_classes if labels is None
              else jnp.asarray(labels, jnp.int32).reshape(num))
    eps = rng.normal(key, (num, data.dim), params["theta"].dtype)
    x = params["theta"][labels] + jnp.sqrt(params["var"][labels]) * eps
    return x.reshape((num,) + shape)

  return Method(name="gaussian_nb", init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, eval_protocol=protocol)


def make_lr(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """Multinomial logistic regression with sklearn's L2 convention, trained by optax."""
  s = settings_lib.resolve_lr(config.model)
  precision.require_float32(config, "logistic_regression",
                            "a scikit-learn parity baseline, fitted in float32")
  num_classes = _check_labels(spec, "logistic_regression")
  shape = tuple(spec.shape)
  data = _Data(shape, s.train_on)
  # n of sklearn's objective C·Σ_i CE_i + ½‖W‖²: the examples fitted.
  num_examples = (int(config.data.batch_size) if s.train_on == "first_batch"
                  else int(spec.num_train))
  strength = losses.l2_strength(inverse_regularization=s.inverse_regularization,
                                num_examples=num_examples)
  tx = optim.make(config.optim, optim.schedule_horizon(config.train))
  protocol = {
      "estimator": "multinomial logistic regression: accuracy/error of argmax p(y|x); "
                   "nll = -log p(y|x)",
      "units": "fractions (accuracy, error); nats per example (nll)",
      "objective": f"mean cross-entropy + {strength:.3g}/2 |W|^2 (sklearn C="
                   f"{s.inverse_regularization:g} over n={num_examples}; bias not "
                   "penalised)",
  }

  def objective(params, x: jax.Array, labels: jax.Array):
    ce = losses.cross_entropy(logits=losses.logits(x=x, params=params), labels=labels)
    mean_ce = collectives.mean_over_devices(jnp.mean(ce))
    return mean_ce + losses.l2_penalty(weights=params["weights"], strength=strength), mean_ce

  def init(key: jax.Array, batch: Batch) -> TrainState:
    dtype = jnp.asarray(batch["x"]).dtype
    params = {"weights": jnp.zeros((data.dim, num_classes), dtype),
              "bias": jnp.zeros((num_classes,), dtype)}
    return TrainState.create(key=key, params={"classifier": params},
                             opt_state={"classifier": tx.init(params)},
                             model_state=data.kept(batch))

  def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
    x, labels = data.training(state, batch)
    (loss, mean_ce), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params["classifier"], x, labels)
    grads = collectives.mean_over_devices(grads)
    params, opt_state = optim.apply_gradients(tx, grads, state.opt_state["classifier"],
                                              state.params["classifier"])
    return state.replace(step=state.step + 1, params={"classifier": params},
                         opt_state={"classifier": opt_state}), {
                             "loss": loss, "cross_entropy": mean_ce}

  def evaluate(state: TrainState, batch: Batch, key: jax.Array) -> dict[str, jax.Array]:
    """Deterministic per-example values; `key` is unused."""
    del key
    scores = losses.logits(x=data.flat(batch["x"]), params=state.params["classifier"])
    return losses.classification_metrics(log_proba=jax.nn.log_softmax(scores, axis=1),
                                         labels=batch["label"])

  # A discriminative model has no p(x): no sample (the runner and `jaxgen
  # sample` say so instead of drawing).
  return Method(name="logistic_regression", init=init, train_step=train_step,
                sample=None, evaluate=evaluate, eval_protocol=protocol)
