"""Log-densities and KL divergences against scipy and Monte Carlo."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxgen import distributions


def test_bernoulli_log_prob_matches_scipy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 4, 3)).astype(np.float32) * 3
  x = (rng.random((5, 4, 3)) < 0.5).astype(np.float32)
  expected = stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-logits))).reshape(5, -1).sum(-1)
  got = distributions.bernoulli_log_prob(x=jnp.asarray(x), logits=jnp.asarray(logits))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  # Extreme logits stay finite (the softplus form).
  big = distributions.bernoulli_log_prob(x=jnp.ones((1, 1)), logits=jnp.full((1, 1), -200.0))
  np.testing.assert_allclose(big, [-200.0], rtol=1e-6)


def test_gaussian_log_prob_matches_scipy():
  rng = np.random.default_rng(1)
  x, mean = rng.normal(size=(2, 6, 5)).astype(np.float32)
  log_scale = rng.normal(size=(6, 5)).astype(np.float32) * 0.5
  expected = stats.norm.logpdf(x, mean, np.exp(log_scale)).sum(-1)
  got = distributions.gaussian_log_prob(x=jnp.asarray(x), mean=jnp.asarray(mean),
                                        log_scale=jnp.asarray(log_scale))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  scalar = distributions.gaussian_log_prob(x=jnp.asarray(x), mean=jnp.asarray(mean),
                                           log_scale=np.log(0.3))
  np.testing.assert_allclose(scalar, stats.norm.logpdf(x, mean, 0.3).sum(-1), rtol=1e-5)


def test_gaussian_log_prob_takes_a_log_variance_too():
  rng = np.random.default_rng(5)
  x, mean = rng.normal(size=(2, 4, 3, 2)).astype(np.float32)
  logvar = rng.normal(size=(4, 1, 1)).astype(np.float32)  # per example, broadcast
  expected = stats.norm.logpdf(x, mean, np.exp(0.5 * logvar)).reshape(4, -1).sum(-1)
  got = distributions.gaussian_log_prob(x=jnp.asarray(x), mean=jnp.asarray(mean),
                                        logvar=jnp.asarray(logvar))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  same = distributions.gaussian_log_prob(x=jnp.asarray(x), mean=jnp.asarray(mean),
                                         log_scale=0.5 * jnp.asarray(logvar))
  np.testing.assert_allclose(got, same, rtol=1e-6)
  for scales in ({}, {"log_scale": 0.0, "logvar": 0.0}):
    with pytest.raises(ValueError, match="exactly one"):
      distributions.gaussian_log_prob(x=jnp.asarray(x), mean=jnp.asarray(mean), **scales)


def test_kl_broadcasts_a_per_example_variance_and_a_scalar_prior():
  rng = np.random.default_rng(6)
  mean = rng.normal(size=(3, 2, 2)).astype(np.float32)
  logvar = rng.normal(size=(3, 1, 1)).astype(np.float32)
  full = np.broadcast_to(logvar, mean.shape)
  got = distributions.gaussian_kl(mean=jnp.asarray(mean), logvar=jnp.asarray(logvar),
                                  prior_mean=0.5, prior_logvar=np.log(2.0))
  expected = distributions.gaussian_kl(
      mean=jnp.asarray(mean), logvar=jnp.asarray(full),
      prior_mean=jnp.full(mean.shape, 0.5), prior_logvar=jnp.full(mean.shape, np.log(2.0)))
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # Per dimension: log(σ_p/σ_q) + (σ_q² + (μ_q − μ_p)²) / (2σ_p²) − ½.
  sq, sp = np.exp(0.5 * full.astype(np.float64)), np.sqrt(2.0)
  closed = (np.log(sp / sq) + (sq**2 + (mean - 0.5) ** 2) / (2 * sp**2) - 0.5)
  np.testing.assert_allclose(got, closed.reshape(3, -1).sum(-1), rtol=1e-5, atol=1e-6)


def test_shape_mismatch_is_caught():
  with pytest.raises(AssertionError):
    distributions.bernoulli_log_prob(x=jnp.zeros((2, 3)), logits=jnp.zeros((2, 4)))


@pytest.mark.parametrize("prior", ["standard", "general"])
def test_closed_form_kl_matches_monte_carlo(prior):
  """KL(q || p) = E_q[log q(z) − log p(z)], estimated with 400k draws."""
  rng = np.random.default_rng(2)
  mean = rng.normal(size=(3, 4)).astype(np.float32)
  logvar = rng.normal(size=(3, 4)).astype(np.float32) * 0.5
  if prior == "standard":
    prior_mean, prior_logvar = np.zeros_like(mean), np.zeros_like(mean)
    kl = distributions.gaussian_kl(mean=jnp.asarray(mean), logvar=jnp.asarray(logvar))
  else:
    prior_mean = rng.normal(size=(3, 4)).astype(np.float32)
    prior_logvar = rng.normal(size=(3, 4)).astype(np.float32) * 0.5
    kl = distributions.gaussian_kl(mean=jnp.asarray(mean), logvar=jnp.asarray(logvar),
                                   prior_mean=jnp.asarray(prior_mean),
                                   prior_logvar=jnp.asarray(prior_logvar))
  n = 400_000
  eps = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (n, 3, 4)), np.float64)
  z = mean + np.exp(0.5 * logvar) * eps
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  log_p = stats.norm.logpdf(z, prior_mean, np.exp(0.5 * prior_logvar)).sum(-1)
  samples = log_q - log_p
  estimate, stderr = samples.mean(0), samples.std(0) / np.sqrt(n)
  assert np.all(np.abs(np.asarray(kl) - estimate) < 5 * stderr + 1e-4)
  assert np.all(np.asarray(kl) >= 0)


def test_kl_is_zero_at_the_prior():
  kl = distributions.gaussian_kl(mean=jnp.zeros((2, 3)), logvar=jnp.zeros((2, 3)))
  np.testing.assert_array_equal(kl, np.zeros(2))


# ----------------------------------------------------------- discretized logistic
@pytest.mark.parametrize("levels, low, high", [(2, 0.0, 1.0), (17, 0.0, 1.0),
                                               (256, -1.0, 1.0)])
def test_discretized_logistic_masses_sum_to_one_and_match_scipy(levels, low, high):
  grid = np.linspace(low, high, levels, dtype=np.float32)
  means = np.array([low - 0.3, low, 0.5 * (low + high), high + 0.2], np.float32)
  log_scales = np.array([np.log(0.01), np.log(0.2), np.log(3.0)], np.float32)
  # One example per (mean, scale, level): x of shape [examples, 1].
  m, s, x = (a.reshape(-1, 1) for a in np.meshgrid(means, log_scales, grid,
                                                    indexing="ij"))
  log_p = jax.jit(lambda x, m, s: distributions.discretized_logistic_log_prob(
      x=x, mean=m, log_scale=s, levels=levels, low=low, high=high))(x, m, s)
  log_p = np.asarray(log_p, np.float64).reshape(len(means), len(log_scales), levels)
  np.testing.assert_allclose(special.logsumexp(log_p, axis=-1), 0.0, atol=2e-5)
  half = 0.5 * (high - low) / (levels - 1)
  cdf = lambda v: stats.logistic.cdf(v, loc=m, scale=np.exp(s))  # noqa: E731
  upper = np.where(x > high - half, 1.0, cdf(x + half))
  lower = np.where(x < low + half, 0.0, cdf(x - half))
  expected = (upper - lower).reshape(log_p.shape)
  # Compare where the mass is not lost to float64 rounding in scipy's difference.
  big = expected > 1e-12
  np.testing.assert_allclose(np.exp(log_p[big]), expected[big], rtol=2e-4, atol=1e-7)


def test_discretized_logistic_is_finite_far_in_the_tails_and_sums_per_example():
  x = jnp.array([[0.0, 0.5, 1.0]])
  far = distributions.discretized_logistic_log_prob(
      x=x, mean=jnp.full((1, 3), 40.0), log_scale=math.log(0.01), levels=3)
  assert np.all(np.isfinite(far)) and float(far[0]) < -1e3
  log_p = distributions.discretized_logistic_log_prob(
      x=x, mean=x, log_scale=jnp.zeros((1, 3)) + math.log(0.05), levels=3)
  # Bins of half-width 0.25 = 5 scales: the ends hold σ(5), the middle σ(5) − σ(−5).
  sigmoid = special.expit
  expected = 2 * np.log(sigmoid(5.0)) + np.log(sigmoid(5.0) - sigmoid(-5.0))
  assert log_p.shape == (1,) and float(log_p[0]) == pytest.approx(expected, rel=1e-5)


def test_discretized_logistic_samples_follow_the_masses():
  levels, n = 5, 200_000
  mean, log_scale = jnp.full((n, 1), 0.4), jnp.full((n, 1), math.log(0.15))
  draws = np.asarray(distributions.discretized_logistic_sample(
      jax.random.PRNGKey(0), mean=mean, log_scale=log_scale, levels=levels))
  grid = np.linspace(0, 1, levels)
  assert set(np.round(np.unique(draws), 6)) <= set(np.round(grid, 6))
  counts = np.array([(np.abs(draws - g) < 1e-6).sum() for g in grid])
  probs = np.exp(np.asarray(distributions.discretized_logistic_log_prob(
      x=jnp.asarray(grid[:, None], jnp.float32), mean=mean[:levels],
      log_scale=log_scale[:levels], levels=levels), np.float64))
  assert probs.sum() == pytest.approx(1.0, abs=1e-5)
  _, p_value = stats.chisquare(counts, probs / probs.sum() * n)
  assert p_value > 1e-3, (counts, probs * n)
