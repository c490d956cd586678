"""Losses and the variational bound: closed forms, scipy, and the Gaussian case."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen.families.diffusion import losses, schedules

MU, S, D = 0.5, 0.3, 2  # data N(MU, S² I) in D dims


def _table(values, t):
  return jnp.asarray(np.asarray(values, np.float32))[t][:, None]


def gaussian_reverse_model(schedule, exact_variance: bool):
  """p(x_{t-1} | x_t) for data N(MU, S²): the exact mean, and the exact or β̃ variance."""

  def model(x_t, t):
    ab = _table(schedule.alpha_bars, t)
    marginal = ab * S**2 + 1.0 - ab
    x0_mean = MU + jnp.sqrt(ab) * S**2 * (x_t - jnp.sqrt(ab) * MU) / marginal
    x0_var = S**2 * (1.0 - ab) / marginal
    coef_x0 = _table(schedule.posterior_coef_x0, t)
    mean = coef_x0 * x0_mean + _table(schedule.posterior_coef_xt, t) * x_t
    if exact_variance:  # Var[x_{t-1} | x_t] = β̃_t + coef² Var[x_0 | x_t]
      log_var = jnp.log(_table(schedule.posterior_variance, t) + coef_x0**2 * x0_var)
    else:
      log_var = _table(schedule.posterior_log_variance, t)
    return mean, jnp.broadcast_to(log_var, x_t.shape)

  return model


def test_simple_loss_is_the_mean_squared_error_per_example():
  rng = np.random.default_rng(0)
  eps, eps_hat = rng.normal(size=(2, 4, 3, 3, 1)).astype(np.float32)
  got = losses.simple_loss(prediction=eps_hat, target=eps)
  np.testing.assert_allclose(got, ((eps - eps_hat) ** 2).reshape(4, -1).mean(-1), rtol=1e-6)


def test_normal_kl_against_numerical_integration():
  x = np.linspace(-12, 12, 200_001)
  m1, v1, m2, v2 = 0.3, 0.5, -0.4, 1.7
  p, q = stats.norm.pdf(x, m1, v1**0.5), stats.norm.pdf(x, m2, v2**0.5)
  numeric = np.trapezoid(p * (np.log(p) - np.log(q)), x)
  got = losses.normal_kl(mean1=m1, logvar1=math.log(v1), mean2=m2, logvar2=math.log(v2))
  assert float(got) == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_gaussian_matches_scipy_and_sums_to_one(levels):
  grid = np.linspace(-1.0, 1.0, levels)
  mean, log_scale = 0.13, math.log(0.2)
  got = np.asarray(losses.discretized_gaussian_log_likelihood(
      x=jnp.asarray(grid, jnp.float32), mean=mean, log_scale=log_scale, levels=levels),
                   np.float64)
  edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
  cdf = stats.norm.cdf(edges, mean, math.exp(log_scale))
  expected = np.log(np.maximum(np.diff(cdf), 1e-12))
  np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
  assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-4)


def test_gaussian_log_likelihood_matches_scipy():
  x = np.array([-1.2, 0.0, 2.5], np.float32)
  got = losses.gaussian_log_likelihood(x=x, mean=0.4, log_scale=math.log(0.7))
  np.testing.assert_allclose(got, stats.norm.logpdf(x, 0.4, 0.7), rtol=1e-5)


def test_vlb_terms_are_non_negative_for_any_model():
  s = schedules.get("linear", 40)
  rng = np.random.default_rng(1)
  x0 = jnp.asarray(rng.uniform(-1, 1, (8, 4, 4, 1)), jnp.float32)
  x_t = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
  mean = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
  log_var = jnp.asarray(rng.normal(size=(8, 4, 4, 1)) - 3.0, jnp.float32)
  t = jnp.arange(8) * 5
  grid = jnp.round((x0 + 1) * 8) / 8 - 1  # 17 levels
  terms = losses.vlb_term(s, x0=grid, x_t=x_t, t=t, model_mean=mean,
                          model_log_variance=log_var, levels=17)
  assert terms.shape == (8,) and bool(jnp.all(terms >= 0))  # KLs, and -log P(bin) ≥ 0
  assert bool(jnp.all(losses.prior_kl(s, x0=x0) >= 0))


@pytest.fixture(scope="module")
def gaussian_bounds():
  """The bound for data N(MU, S²) with the exact reverse model and with β̃ variances."""
  schedule = schedules.get("linear", 200)
  n = 10_000
  x0 = MU + S * jax.random.normal(jax.random.PRNGKey(0), (n, D))
  out = {}
  for exact in (True, False):
    model = gaussian_reverse_model(schedule, exact)
    terms = jax.jit(lambda x0, model=model: losses.bound_terms(
        schedule, model=model, x0=x0, key=jax.random.PRNGKey(1), levels=None))(x0)
    out[exact] = np.asarray(sum(terms.values()), np.float64)
  nll = -stats.norm.logpdf(np.asarray(x0, np.float64), MU, S).sum(-1)
  return out, nll


def test_bound_equals_the_nll_for_the_exact_reverse_process(gaussian_bounds):
  # With p(x_{t-1} | x_t) = q(x_{t-1} | x_t), E_q[L] = -log p(x_0) exactly (up to
  # the N(0, I) prior at T); the estimate has one x_t draw per step.
  bounds, nll = gaussian_bounds
  gap = bounds[True] - nll
  assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(len(gap)) + 1e-3, gap.mean()


def test_bound_with_fixed_variances_is_above_the_true_nll(gaussian_bounds):
  bounds, nll = gaussian_bounds
  gap = bounds[False] - nll
  # β̃ misses Var[x_0 | x_t] at small t: a strictly looser bound.
  assert gap.mean() > 10 * gap.std() / math.sqrt(len(gap))
  assert bounds[False].mean() > bounds[True].mean()


def test_classifier_loss_is_the_cross_entropy():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
  labels = jnp.array([0, 1])
  expected = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))[[0, 1], [0, 1]]
  np.testing.assert_allclose(losses.classifier_loss(logits=logits, labels=labels),
                             expected, rtol=1e-5)
