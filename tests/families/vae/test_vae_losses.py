"""The VAE objectives as pure functions, against closed forms, scipy and Monte Carlo.

Oracles: scipy's Bernoulli, normal and logistic densities; the closed-form KL
against scipy's entropy integrals and Monte Carlo; a linear-Gaussian model
whose log p(x) is known exactly; Jensen's inequality between the bounds.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxgen import distributions
from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families.vae import losses


# ------------------------------------------------------------------ ELBO terms
def test_log_likelihood_matches_scipy_for_each_kind():
  rng_np = np.random.default_rng(0)
  x = (rng_np.random((4, 3, 2)) < 0.5).astype(np.float32)
  location = rng_np.normal(size=(4, 3, 2)).astype(np.float32)
  log_scale = (rng_np.normal(size=(4, 3, 2)) * 0.3).astype(np.float32)
  bernoulli = losses.log_likelihood(x=x, location=location, log_scale=log_scale,
                                    kind="bernoulli")
  expected = stats.bernoulli.logpmf(x, special.expit(location)).reshape(4, -1).sum(-1)
  np.testing.assert_allclose(bernoulli, expected, rtol=1e-5, atol=1e-5)
  gaussian = losses.log_likelihood(x=x, location=location, log_scale=log_scale,
                                   kind="gaussian")
  expected = stats.norm.logpdf(x, location, np.exp(log_scale)).reshape(4, -1).sum(-1)
  np.testing.assert_allclose(gaussian, expected, rtol=1e-5)
  # Two levels on [0, 1]: the bins split at 0.5, so P(0) = F(0.5) and P(1) = 1 − F(0.5).
  logistic = losses.log_likelihood(x=x, location=location, log_scale=log_scale,
                                   kind="discretized_logistic", levels=2)
  cdf = stats.logistic.cdf(0.5, loc=location, scale=np.exp(log_scale))
  expected = np.log(np.where(x == 0, cdf, 1 - cdf)).reshape(4, -1).sum(-1)
  np.testing.assert_allclose(logistic, expected, rtol=1e-4)
  with pytest.raises(ConfigError, match="poisson"):
    losses.log_likelihood(x=x, location=location, log_scale=log_scale, kind="poisson")


def test_kl_divergence_matches_scipy_and_the_elbo_terms_add_up():
  rng_np = np.random.default_rng(1)
  mean = rng_np.normal(size=(5, 3)).astype(np.float32)
  logvar = (rng_np.normal(size=(5, 3)) * 0.5).astype(np.float32)
  kl = np.asarray(losses.kl_divergence(mean=mean, logvar=logvar), np.float64)
  # KL(q || p) = cross-entropy H(q, p) − entropy H(q), per dimension:
  # H(q, N(0,1)) = ½ log 2π + ½ (σ² + μ²).
  sigma = np.exp(0.5 * logvar.astype(np.float64))
  cross = 0.5 * np.log(2 * np.pi) + 0.5 * (sigma**2 + mean.astype(np.float64) ** 2)
  expected = (cross - stats.norm(mean, sigma).entropy()).sum(-1)
  np.testing.assert_allclose(kl, expected, rtol=1e-5, atol=1e-6)
  reconstruction = jnp.asarray(rng_np.normal(size=5), jnp.float32)
  terms = losses.elbo_terms(reconstruction=reconstruction, kl=kl)
  np.testing.assert_allclose(terms["elbo"], reconstruction - kl, rtol=1e-6)
  loss = losses.beta_elbo_loss(reconstruction=reconstruction, kl=kl, beta=2.5)
  np.testing.assert_allclose(loss, 2.5 * kl - reconstruction, rtol=1e-6)


def test_reparameterized_samples_have_the_posterior_moments():
  mean, logvar = jnp.array([[1.0, -2.0]]), jnp.array([[0.0, math.log(0.25)]])
  eps = jax.random.normal(jax.random.PRNGKey(0), (200_000, 1, 2))
  z = np.asarray(losses.reparameterize(mean=mean, logvar=logvar, eps=eps)).reshape(-1, 2)
  np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.01)
  np.testing.assert_allclose(z.std(0), [1.0, 0.5], rtol=0.01)


def test_kl_weight_ramps_linearly_then_stays():
  betas = [float(losses.kl_weight(step=jnp.int32(t), beta=2.0, warmup_steps=4))
           for t in range(7)]
  np.testing.assert_allclose(betas, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
  assert float(losses.kl_weight(step=jnp.int32(0), beta=3.0, warmup_steps=0)) == 3.0


def test_log_importance_weight_matches_scipy_densities():
  rng_np = np.random.default_rng(2)
  mean = rng_np.normal(size=(3, 2))
  logvar = rng_np.normal(size=(3, 2)) * 0.4
  eps = rng_np.normal(size=(3, 2))
  z = mean + np.exp(0.5 * logvar) * eps
  log_lik = rng_np.normal(size=3)
  got = losses.log_importance_weight(
      log_likelihood=jnp.asarray(log_lik, jnp.float32), z=jnp.asarray(z, jnp.float32),
      eps=jnp.asarray(eps, jnp.float32), logvar=jnp.asarray(logvar, jnp.float32))
  log_prior = stats.norm.logpdf(z).sum(-1)
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  np.testing.assert_allclose(got, log_lik + log_prior - log_q, rtol=1e-5, atol=1e-5)


def test_iwae_bound_with_one_sample_is_the_elbo_estimate():
  log_w = jnp.asarray(np.random.default_rng(3).normal(size=(1, 6)), jnp.float32)
  np.testing.assert_allclose(losses.iwae_bound(log_weights=log_w), log_w[0], rtol=1e-6)
  many = np.random.default_rng(4).normal(size=(7, 6)) * 3
  np.testing.assert_allclose(losses.iwae_bound(log_weights=jnp.asarray(many)),
                             special.logsumexp(many, axis=0) - np.log(7), rtol=1e-5)


# ------------------------------------------------- importance-weighted bound
class LinearGaussian:
  """p(z) = N(0, I_2), p(x|z) = N(Wz + b, σ²I_3): log p(x) = log N(x; b, WWᵀ + σ²I)."""

  W = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)  # orthogonal columns
  b = np.array([0.5, -1.0, 0.3], np.float32)
  sigma = 0.7

  def log_px(self, x):
    cov = self.W @ self.W.T + self.sigma**2 * np.eye(3)
    return stats.multivariate_normal(self.b, cov).logpdf(x)

  def posterior(self, x):
    """The exact posterior, diagonal because WᵀW is: (mean [B, 2], logvar [B, 2])."""
    precision = 1.0 + np.diag(self.W.T @ self.W) / self.sigma**2
    mean = ((x - self.b) @ self.W) / self.sigma**2 / precision
    return mean.astype(np.float32), np.broadcast_to(-np.log(precision), mean.shape
                                                    ).astype(np.float32)

  def log_weights(self, x, mean, logvar):
    """eps [C, B, 2] -> log p(x, z) − log q(z|x) [C, B] with z = mean + σ_q eps."""

    def fn(eps):
      z = mean + jnp.exp(0.5 * logvar) * eps
      log_lik = jax.vmap(lambda z: distributions.gaussian_log_prob(
          x=x, mean=z @ self.W.T + self.b, log_scale=math.log(self.sigma)))(z)
      log_prior = jax.vmap(distributions.standard_normal_log_prob)(z)
      log_q = (jax.vmap(distributions.standard_normal_log_prob)(eps)
               - 0.5 * jnp.sum(logvar, -1))
      return log_lik + log_prior - log_q

    return fn


@pytest.fixture(scope="module")
def linear_gaussian():
  model = LinearGaussian()
  x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32) * 1.5
  mean, logvar = model.posterior(x)
  # A deliberately wrong posterior: shifted and too wide.
  rough = (mean + 0.6, logvar + 0.8)
  return model, x, (mean, logvar), rough


def _bound(fn, num_samples, chunk_size, key=jax.random.PRNGKey(3), batch=6):
  return np.asarray(jax.jit(lambda k: losses.importance_weighted_bound(
      fn, k, batch_size=batch, latent_dim=2, num_samples=num_samples,
      chunk_size=chunk_size))(key), np.float64)


def test_bound_is_exact_for_the_true_posterior(linear_gaussian):
  model, x, exact, _ = linear_gaussian
  fn = model.log_weights(x, *exact)
  # Every weight equals p(x): any K gives log p(x) exactly.
  np.testing.assert_allclose(_bound(fn, 10, 4), model.log_px(x), atol=2e-4)


def test_bound_rises_to_log_px_and_k1_is_the_elbo(linear_gaussian):
  model, x, _, rough = linear_gaussian
  fn = model.log_weights(x, *rough)
  key = jax.random.PRNGKey(3)

  @jax.jit
  def first_weights_and_bounds(key):
    # The first 8 log weights, drawn as the function documents, and the
    # function's own 1-, 8- and 5000-sample bounds, in chunks (8 = 3 + 3 + 2).
    eps = losses.importance_noise(key, batch_size=6, latent_dim=2, indices=jnp.arange(8))
    bounds = [losses.importance_weighted_bound(fn, key, batch_size=6, latent_dim=2,
                                               num_samples=k, chunk_size=c)
              for k, c in ((1, 1), (8, 3), (5000, 250))]
    # Plenty of samples for the ELBO's expectation.
    many = jax.random.normal(jax.random.fold_in(key, 10**6), (4000, 6, 2))
    return fn(eps), bounds, jnp.mean(fn(many), axis=0)

  log_w, bounds, elbo = jax.tree.map(lambda a: np.asarray(a, np.float64),
                                     first_weights_and_bounds(key))
  # k=1: the one-sample ELBO estimate log p(x, z_1) − log q(z_1|x).
  np.testing.assert_allclose(bounds[0], log_w[0], rtol=1e-6, atol=1e-5)
  # The first k samples are shared, and chunking does not change the numbers.
  np.testing.assert_allclose(bounds[1], special.logsumexp(log_w, axis=0) - np.log(8),
                             rtol=1e-6, atol=1e-5)
  # Burda et al.'s proof, exactly on these 8 weights: the mean of the k-sample
  # bound over all k-subsets does not decrease with k (A_1 = mean log w, the
  # ELBO estimate; A_8 = the 8-sample bound).
  averages = [np.mean([special.logsumexp(log_w[list(s)], axis=0) - np.log(k)
                       for s in itertools.combinations(range(8), k)], axis=0)
              for k in range(1, 9)]
  assert np.all(np.diff(averages, axis=0) >= -1e-9)
  np.testing.assert_allclose(averages[0], log_w.mean(0))
  # Large K approaches the exact log-likelihood from below, in chunks.
  exact = model.log_px(x)
  elbo_gap = exact - elbo
  gap = exact - bounds[2]
  assert np.all(elbo_gap > 0.3), elbo_gap
  assert np.all(np.abs(gap) < 0.05 * elbo_gap + 0.01), (gap, elbo_gap)
  assert np.mean(gap) > -0.01


def test_bound_with_per_example_keys_does_not_depend_on_the_batch(linear_gaussian):
  """Keys from global indices: examples 0..5 in one batch or in batches of 4 and 2."""
  model, x, _, rough = linear_gaussian
  key = jax.random.PRNGKey(7)

  def bound(rows):
    fn = model.log_weights(x[rows], rough[0][rows], rough[1][rows])
    return np.asarray(jax.jit(lambda keys: losses.importance_weighted_bound(
        fn, keys, batch_size=len(rows), latent_dim=2, num_samples=9, chunk_size=4))(
            rng.index_keys(key, jnp.asarray(rows))))

  whole = bound(np.arange(6))
  parts = np.concatenate([bound(np.arange(3)), bound(np.arange(3, 6))])
  np.testing.assert_allclose(whole, parts, rtol=1e-6)
  # The first sample of a per-example key is the one-sample ELBO with that noise.
  keys = rng.index_keys(key, jnp.arange(6))
  eps = losses.importance_noise(keys, batch_size=6, latent_dim=2, indices=jnp.arange(1))
  fn = model.log_weights(x, *rough)
  one = jax.jit(lambda keys: losses.importance_weighted_bound(
      fn, keys, batch_size=6, latent_dim=2, num_samples=1))(keys)
  np.testing.assert_allclose(one, fn(eps)[0], rtol=1e-6)


def test_bound_runs_in_chunks_of_bounded_size():
  """K=5000 in chunks of 100 is a scan of 50 steps over [100, B] log weights."""
  seen = []

  def fn(eps):
    seen.append(eps.shape)
    return -jnp.sum(eps * eps, -1)

  jaxpr = jax.make_jaxpr(lambda k: losses.importance_weighted_bound(
      fn, k, batch_size=4, latent_dim=3, num_samples=5000, chunk_size=100))(
          jax.random.PRNGKey(0))
  scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
  assert len(scans) == 1 and scans[0].params["length"] == 50
  assert seen == [(100, 4, 3)]
  with pytest.raises(ConfigError, match="num_samples"):
    losses.importance_weighted_bound(fn, jax.random.PRNGKey(0), batch_size=1,
                                     latent_dim=1, num_samples=0)
