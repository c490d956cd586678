"""EM for Gaussian mixtures against scikit-learn, iteration by iteration.

Oracle: from the same initial parameters, `sklearn.mixture.GaussianMixture`
stepped one iteration at a time (max_iter=1, warm_start=True) and jaxgen's
`gmm` train step give the same weights, means, covariances and per-sample
log-likelihoods after each of the first 20 iterations: within 1e-5 relative
in float64, and within 1e-4 relative (atol 1e-5) in float32.
"""

import warnings

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from jaxgen import data as data_lib
from jaxgen.core.state import TrainState
from jaxgen.families import gmm
from jaxgen.families.gmm import losses

TYPES = ("full", "diag", "tied", "spherical")


def _data(n=240, seed=0):
  """Three overlapping, anisotropic 3-D clusters (EM takes many iterations)."""
  r = np.random.default_rng(seed)
  centres = np.array([[0.0, 0.0, 0.0], [1.5, 1.0, -0.5], [-1.0, 2.0, 1.0]])
  mixing = r.normal(size=(3, 3, 3)) * 0.6
  labels = r.integers(0, 3, n)
  return centres[labels] + np.einsum("nij,nj->ni", mixing[labels], r.normal(size=(n, 3)))


def _initial(x, covariance_type, k=3):
  """Deliberately poor initial parameters: data points as means, broad covariances."""
  means = x[[0, 1, 2]]
  d = x.shape[1]
  weights = np.array([0.5, 0.3, 0.2])
  cov = {"full": np.stack([np.eye(d) * (1 + i) + 0.2 for i in range(k)]),
         "tied": np.eye(d) * 2 + 0.3, "diag": np.ones((k, d)) * [[1.0], [2.0], [0.5]],
         "spherical": np.array([1.0, 2.0, 0.5])}[covariance_type]
  return {"weights": weights, "means": means, "covariances": cov}


def _precisions(cov, covariance_type):
  if covariance_type in ("full", "tied"):
    return np.linalg.inv(cov)
  return 1.0 / cov


def _sklearn_gmm(x, init, covariance_type, reg_covar):
  return GaussianMixture(
      n_components=len(init["weights"]), covariance_type=covariance_type,
      reg_covar=reg_covar, max_iter=1, warm_start=True, tol=0.0,
      init_params="random_from_data", random_state=0,
      weights_init=init["weights"], means_init=init["means"],
      precisions_init=_precisions(init["covariances"], covariance_type))


def _method(covariance_type, reg_covar, dim):
  config = ml_collections.ConfigDict(dict(model=gmm.default_config("toy2d:moons").model))
  config.model.covariance_type = covariance_type
  config.model.reg_covar = reg_covar
  config.model.num_components = 3
  spec = data_lib.DataSpec(name="test", shape=(dim,), num_classes=None, num_train=240,
                           num_test=0, is_image=False, value_range=(-5.0, 5.0),
                           binary=False)
  return gmm.make(config, spec)


def _compare_with_sklearn(covariance_type, dtype, rtol, atol, iterations=20):
  x = _data()
  reg_covar = 1e-4
  init = _initial(x, covariance_type)
  reference = _sklearn_gmm(x, init, covariance_type, reg_covar)
  method = _method(covariance_type, reg_covar, x.shape[1])
  params = {k: jnp.asarray(v, dtype) for k, v in init.items()}
  state = TrainState.create(key=jax.random.PRNGKey(0), params={"gmm": params},
                            opt_state={})
  batch = {"x": jnp.asarray(x, dtype)}
  step = jax.jit(method.train_step)
  evaluate = jax.jit(method.evaluate)
  for iteration in range(1, iterations + 1):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", ConvergenceWarning)
      reference.fit(x)
    state, _ = step(state, batch)
    got = state.params["gmm"]
    assert got["means"].dtype == dtype
    for name, want in (("weights", reference.weights_), ("means", reference.means_),
                       ("covariances", reference.covariances_)):
      np.testing.assert_allclose(np.asarray(got[name]), want, rtol=rtol, atol=atol,
                                 err_msg=f"{name} after iteration {iteration}")
    np.testing.assert_allclose(
        np.asarray(evaluate(state, batch, jax.random.PRNGKey(0))["log_likelihood"]),
        reference.score_samples(x), rtol=rtol, atol=atol,
        err_msg=f"log-likelihood after iteration {iteration}")
  # The comparison is not trivially met: the parameters moved far from the start.
  assert np.abs(np.asarray(got["means"]) - init["means"]).max() > 0.1


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_matches_sklearn_in_float64(covariance_type):
  with jax.enable_x64(True):
    _compare_with_sklearn(covariance_type, jnp.float64, rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_matches_sklearn_in_float32(covariance_type):
  _compare_with_sklearn(covariance_type, jnp.float32, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_log_likelihood_never_decreases(covariance_type):
  with jax.enable_x64(True):
    x = jnp.asarray(_data(seed=1))
    params = {k: jnp.asarray(v) for k, v in _initial(np.asarray(x), covariance_type).items()}
    step = jax.jit(lambda p: losses.em_step(x=x, params=p, reg_covar=1e-6,
                                            covariance_type=covariance_type))
    previous = -np.inf
    for _ in range(60):
      params, log_prob = step(params)
      mean = float(jnp.mean(log_prob))
      assert mean >= previous - 1e-12, (mean, previous)
      previous = mean
    final = float(jnp.mean(losses.log_likelihood(x=x, params=params,
                                                 covariance_type=covariance_type)))
    assert final >= previous - 1e-12


@pytest.mark.parametrize("covariance_type", TYPES)
def test_bic_and_aic_match_sklearn(covariance_type):
  x = _data(seed=2)
  reference = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(x)
  params = {"weights": reference.weights_, "means": reference.means_,
            "covariances": reference.covariances_}
  with jax.enable_x64(True):
    log_prob = losses.log_likelihood(x=jnp.asarray(x), params=jax.tree.map(jnp.asarray, params),
                                     covariance_type=covariance_type)
    count = losses.num_parameters(num_components=3, dim=3, covariance_type=covariance_type)
    assert count == reference._n_parameters()  # pylint: disable=protected-access
    np.testing.assert_allclose(float(losses.bic(log_likelihoods=log_prob, num_params=count)),
                               reference.bic(x), rtol=1e-10)
    np.testing.assert_allclose(float(losses.aic(log_likelihoods=log_prob, num_params=count)),
                               reference.aic(x), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_statistics_round_trip_and_full_step_matches_batch_em(covariance_type):
  with jax.enable_x64(True):
    x = jnp.asarray(_data(seed=3))
    params = {k: jnp.asarray(v) for k, v in _initial(np.asarray(x), covariance_type).items()}
    stats = losses.statistics_of_params(params=params, reg_covar=1e-3,
                                        covariance_type=covariance_type)
    back = losses.params_from_statistics(stats=stats, centres=params["means"],
                                         reg_covar=1e-3, covariance_type=covariance_type)
    for name in params:
      np.testing.assert_allclose(back[name], params[name], rtol=1e-12, atol=1e-12)
    # A stepwise step with η = 1 on the whole data set is one exact EM iteration;
    # with η = 0 it changes nothing.
    exact, exact_log_prob = losses.em_step(x=x, params=params, reg_covar=1e-3,
                                           covariance_type=covariance_type)
    stepped, log_prob = losses.stepwise_em_step(x=x, params=params, eta=jnp.asarray(1.0),
                                                reg_covar=1e-3,
                                                covariance_type=covariance_type)
    np.testing.assert_array_equal(log_prob, exact_log_prob)
    still, _ = losses.stepwise_em_step(x=x, params=params, eta=jnp.asarray(0.0),
                                       reg_covar=1e-3, covariance_type=covariance_type)
    for name in params:
      np.testing.assert_allclose(stepped[name], exact[name], rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(still[name], params[name], rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_stepwise_em_on_minibatches_approaches_exact_em():
  """Stepwise EM over many small batches ends near the exact EM fixed point."""
  with jax.enable_x64(True):
    x = _data(n=2000, seed=4)
    params = {k: jnp.asarray(v) for k, v in _initial(x, "full").items()}
    exact = params
    em = jax.jit(lambda p: losses.em_step(x=jnp.asarray(x), params=p, reg_covar=1e-6,
                                          covariance_type="full")[0])
    for _ in range(200):
      exact = em(exact)
    step = jax.jit(lambda p, b, t: losses.stepwise_em_step(
        x=b, params=p, eta=losses.step_size(step=t, power=0.7, offset=2.0),
        reg_covar=1e-6, covariance_type="full")[0])
    order = np.random.default_rng(0).permutation(np.tile(np.arange(2000), 10))
    stepwise = params
    for t, start in enumerate(range(0, len(order), 100)):
      stepwise = step(stepwise, jnp.asarray(x[order[start:start + 100]]), t)
    ll = lambda p: float(jnp.mean(losses.log_likelihood(  # noqa: E731
        x=jnp.asarray(x), params=p, covariance_type="full")))
    assert abs(ll(stepwise) - ll(exact)) < 0.01, (ll(stepwise), ll(exact))


def test_kmeans_plus_plus_and_lloyd_find_separated_clusters():
  r = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
  labels = np.repeat(np.arange(4), 50)
  x = jnp.asarray(centres[labels] + 0.1 * r.normal(size=(200, 2)), jnp.float32)
  seeded = losses.kmeans_plus_plus(jax.random.PRNGKey(3), x, 4)
  # Every seed is a data point.
  assert np.min(np.abs(np.asarray(x)[None] - np.asarray(seeded)[:, None]).sum(-1), 1).max() == 0
  refined = np.asarray(losses.lloyd(x, seeded, 5))
  order = np.argsort(refined @ np.array([1.0, 100.0]))
  truth = np.stack([np.asarray(x)[labels == i].mean(0) for i in range(4)])
  np.testing.assert_allclose(refined[order], truth, atol=1e-4)
  # More clusters than points: still finite, every point a centre.
  few = losses.kmeans_plus_plus(jax.random.PRNGKey(0), x[:3], 5)
  assert np.all(np.isfinite(np.asarray(few)))
