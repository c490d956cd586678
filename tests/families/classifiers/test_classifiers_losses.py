"""Gaussian naive Bayes and logistic regression against scikit-learn.

Oracles: `GaussianNB` (theta_, var_, class log-prior, predict_log_proba) in
float64 within 1e-9 relative, in float32 within 1e-4; `LogisticRegression`
(lbfgs, multinomial, the same C) — at convergence the objective is within
1e-6 relative of sklearn's optimum and the predictions agree.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from jaxgen.families.classifiers import losses


def _digits(n=400):
  x, y = load_digits(return_X_y=True)
  return x[:n] / 16.0, y[:n], x[n:n + 200] / 16.0


def _nb(x, y, var_smoothing, num_classes=10):
  params, epsilon = losses.fit_gaussian_nb(x=jnp.asarray(x), labels=jnp.asarray(y),
                                           num_classes=num_classes,
                                           var_smoothing=var_smoothing)
  return jax.device_get(params), float(epsilon)


@pytest.mark.parametrize("var_smoothing", [1e-9, 1e-2])
def test_gaussian_nb_matches_sklearn_in_float64(var_smoothing):
  x, y, x_test = _digits()
  reference = GaussianNB(var_smoothing=var_smoothing).fit(x, y)
  with jax.enable_x64(True):
    params, epsilon = _nb(x, y, var_smoothing)
    log_proba = losses.predict_log_proba(log_joint=losses.joint_log_likelihood(
        x=jnp.asarray(x_test), params=jax.tree.map(jnp.asarray, params)))
  np.testing.assert_allclose(epsilon, reference.epsilon_, rtol=1e-12)
  np.testing.assert_allclose(params["theta"], reference.theta_, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(params["var"], reference.var_, rtol=1e-9)
  np.testing.assert_allclose(params["class_log_prior"], np.log(reference.class_prior_),
                             rtol=1e-12)
  want = reference.predict_log_proba(x_test)
  # Rows are log-probabilities of up to ~1e8 nats (tiny variances): relative.
  np.testing.assert_allclose(np.asarray(log_proba), want, rtol=1e-7, atol=1e-8)
  np.testing.assert_array_equal(np.argmax(log_proba, 1), reference.predict(x_test))


def test_gaussian_nb_matches_sklearn_in_float32():
  x, y, x_test = _digits()
  reference = GaussianNB(var_smoothing=1e-2).fit(x, y)
  params, _ = _nb(x.astype(np.float32), y, 1e-2)
  np.testing.assert_allclose(params["theta"], reference.theta_, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(params["var"], reference.var_, rtol=1e-4)
  log_proba = losses.predict_log_proba(log_joint=losses.joint_log_likelihood(
      x=jnp.asarray(x_test, jnp.float32), params=params))
  np.testing.assert_allclose(np.asarray(log_proba), reference.predict_log_proba(x_test),
                             rtol=1e-4, atol=1e-3)


def test_gaussian_nb_with_a_class_missing_never_predicts_it():
  x, y, x_test = _digits()
  keep = y != 3
  reference = GaussianNB().fit(x[keep], y[keep])
  with jax.enable_x64(True):
    params, _ = _nb(x[keep], y[keep], 1e-9)
    log_joint = losses.joint_log_likelihood(x=jnp.asarray(x_test),
                                            params=jax.tree.map(jnp.asarray, params))
    log_proba = np.asarray(losses.predict_log_proba(log_joint=log_joint))
  assert np.all(np.isneginf(log_proba[:, 3]))
  present = [c for c in range(10) if c != 3]
  np.testing.assert_allclose(params["theta"][present], reference.theta_, rtol=1e-10,
                             atol=1e-12)
  np.testing.assert_allclose(log_proba[:, present], reference.predict_log_proba(x_test),
                             rtol=1e-7, atol=1e-8)


def test_logistic_regression_reaches_sklearn_optimum():
  x, y = load_iris(return_X_y=True)
  x = (x - x.mean(0)) / x.std(0)
  c = 0.5
  reference = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(x, y)
  strength = losses.l2_strength(inverse_regularization=c, num_examples=len(x))

  def objective(params, x, y):
    ce = losses.cross_entropy(logits=losses.logits(x=x, params=params), labels=y)
    return jnp.mean(ce) + losses.l2_penalty(weights=params["weights"], strength=strength)

  with jax.enable_x64(True):
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    params = {"weights": jnp.zeros((4, 3)), "bias": jnp.zeros(3)}
    tx = optax.adam(optax.cosine_decay_schedule(0.05, 5000))   # decays: converges, not oscillates

    def step(carry, _):
      params, opt = carry
      grads = jax.grad(objective)(params, xs, ys)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=5000)
    ours = float(objective(params, xs, ys))
    theirs = float(objective({"weights": jnp.asarray(reference.coef_.T),
                              "bias": jnp.asarray(reference.intercept_)}, xs, ys))
    predictions = np.argmax(np.asarray(losses.logits(x=xs, params=params)), 1)
  # sklearn's optimum is the minimum of the same function: equal, and not lower
  # (a fixed step size left Adam oscillating 8e-6 above it with XLA's
  # optimizations off; the decaying one converges under both settings).
  assert ours >= theirs * (1 - 1e-9)
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)
  np.testing.assert_array_equal(predictions, reference.predict(x))
  np.testing.assert_allclose(np.asarray(params["weights"]), reference.coef_.T, atol=1e-3)
