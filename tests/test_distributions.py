"""Log-densities and KL divergences against scipy and Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

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
