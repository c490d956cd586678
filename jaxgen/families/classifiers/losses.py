"""Gaussian naive Bayes and logistic regression as pure functions of arrays.

Gaussian naive Bayes (the generative classifier) follows scikit-learn's
`GaussianNB` exactly: per-class means and (biased) variances, ε =
var_smoothing · (the largest variance of a feature over all the data) added
to every variance, class priors from the class frequencies. Logistic
regression (its discriminative counterpart; Ng & Jordan 2002) is the
multinomial model with sklearn's L2 convention (intercepts not penalised).

Batch statistics are batch means passed through `mean_over_devices`, so the
fit does not depend on the device count. Shapes: x [B, D], labels [B] int,
theta and var [C, D], class_log_prior [C].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.core import collectives

Params = dict[str, jax.Array]


def fit_gaussian_nb(*, x: jax.Array, labels: jax.Array, num_classes: int,
                    var_smoothing: float) -> tuple[Params, jax.Array]:
  """The closed-form fit over the global batch: (params, ε).

  A class absent from the batch gets prior 0 (log prior −inf, never
  predicted), mean 0 and variance 1 (as if it did not exist: sklearn only
  knows the classes it has seen).
  """
  onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)    # [B, C]
  n = x.shape[0]
  counts, sums, feature_mean = collectives.mean_over_devices(
      (jnp.mean(onehot, axis=0), onehot.T @ x / n, jnp.mean(x, axis=0)))
  present = counts > 0
  safe = jnp.where(present, counts, 1.0)[:, None]
  theta = jnp.where(present[:, None], sums / safe, 0.0)
  # Second passes, centred at the means just found (as sklearn, two-pass).
  squares, feature_var = collectives.mean_over_devices(
      (onehot.T @ (x - theta[labels]) ** 2 / n,
       jnp.mean((x - feature_mean) ** 2, axis=0)))
  epsilon = var_smoothing * jnp.max(feature_var)
  var = jnp.where(present[:, None], squares / safe + epsilon, 1.0)
  prior = counts / jnp.sum(counts)
  log_prior = jnp.where(present, jnp.log(jnp.where(present, prior, 1.0)), -jnp.inf)
  return {"theta": theta, "var": var, "class_log_prior": log_prior}, epsilon


def joint_log_likelihood(*, x: jax.Array, params: Params) -> jax.Array:
  """log p(x, y = c) = log π_c + Σ_d log N(x_d; θ_cd, σ²_cd): [B, D] -> [B, C]."""
  var = params["var"]
  log_norm = -0.5 * jnp.sum(jnp.log(2 * math.pi * var), axis=1)          # [C]
  squares = jnp.sum((x[:, None, :] - params["theta"][None]) ** 2 / var[None], axis=2)
  return params["class_log_prior"][None] + log_norm[None] - 0.5 * squares


def predict_log_proba(*, log_joint: jax.Array) -> jax.Array:
  """log p(y | x) from the joint [B, C] (Bayes' rule, by log-sum-exp)."""
  return log_joint - jax.nn.logsumexp(log_joint, axis=1, keepdims=True)


def logits(*, x: jax.Array, params: Params) -> jax.Array:
  """Multinomial logistic regression scores x W + b: [B, D] -> [B, C]."""
  return x @ params["weights"] + params["bias"]


def cross_entropy(*, logits: jax.Array, labels: jax.Array) -> jax.Array:
  """−log p(y | x) per example under softmax(logits): [B]."""
  return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=1), labels[:, None],
                              axis=1)[:, 0]


def l2_penalty(*, weights: jax.Array, strength: float) -> jax.Array:
  """(strength / 2)·‖W‖², the intercept left out (sklearn's convention)."""
  return 0.5 * strength * jnp.sum(weights ** 2)


def l2_strength(*, inverse_regularization: float, num_examples: int) -> float:
  """λ of mean CE + (λ/2)‖W‖² equal to sklearn's C·Σ CE + ½‖W‖²: λ = 1 / (C n)."""
  if inverse_regularization == 0:
    return 0.0
  return 1.0 / (inverse_regularization * num_examples)


def classification_metrics(*, log_proba: jax.Array, labels: jax.Array
                           ) -> dict[str, jax.Array]:
  """Per-example accuracy, error and NLL −log p(y | x) (nats)."""
  correct = (jnp.argmax(log_proba, axis=1) == labels).astype(jnp.float32)
  nll = -jnp.take_along_axis(log_proba, labels[:, None], axis=1)[:, 0]
  return {"accuracy": correct, "error": 1.0 - correct, "nll": nll}
