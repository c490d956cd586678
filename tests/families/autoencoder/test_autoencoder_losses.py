"""Autoencoder losses, penalties and corruption against their formulas and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families.autoencoder import losses as ae


def test_kl_sparsity_penalty_matches_its_formula_and_scipy():
  rho = 0.05
  rho_hat = np.array([0.05, 0.5, 0.01, 0.9, 0.2], np.float32)
  expected = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
  got = np.asarray(ae.kl_sparsity_penalty(mean_activation=jnp.asarray(rho_hat), target=rho))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
  scipy_kl = [stats.entropy([rho, 1 - rho], [r, 1 - r]) for r in rho_hat]
  np.testing.assert_allclose(got, scipy_kl, rtol=1e-5, atol=1e-7)
  assert got[0] == pytest.approx(0.0, abs=1e-7) and np.all(got[1:] > 0)
  # Dead and saturated units stay finite.
  assert np.all(np.isfinite(ae.kl_sparsity_penalty(mean_activation=jnp.array([0.0, 1.0]),
                                                   target=rho)))
  with pytest.raises(ConfigError, match="sparsity_target"):
    ae.kl_sparsity_penalty(mean_activation=jnp.ones(2) / 2, target=1.0)


def test_reconstruction_losses_and_l1_match_their_formulas():
  rng = np.random.default_rng(0)
  x = rng.random((3, 4, 2)).astype(np.float32)
  out = rng.normal(size=(3, 4, 2)).astype(np.float32)
  p = 1 / (1 + np.exp(-out))
  bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(-1)
  np.testing.assert_allclose(ae.reconstruction_loss(x=x, output=out, kind="bernoulli"),
                             bce, rtol=1e-5)
  np.testing.assert_allclose(ae.reconstruction_loss(x=x, output=out, kind="mse"),
                             ((x - out) ** 2).reshape(3, -1).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(ae.l1_penalty(code=out.reshape(3, -1)),
                             np.abs(out).reshape(3, -1).sum(-1), rtol=1e-6)


def test_corruption_statistics():
  """Masking rate, Gaussian noise moments, salt and pepper shares (4σ bounds)."""
  n, d, rate = 400, 250, 0.3
  x = jnp.full((n, d), 0.5)
  key = jax.random.PRNGKey(0)

  @jax.jit
  def draws(key):
    k = jax.random.split(key, 3)
    return (ae.corrupt(k[0], x, kind="masking", rate=rate, low=0.0, high=1.0),
            ae.corrupt(k[1], x, kind="gaussian", noise_std=0.2),
            ae.corrupt(k[2], x, kind="salt_pepper", rate=rate, low=-1.0, high=2.0))

  masked, noisy, salted = (np.asarray(a) for a in draws(key))
  total = n * d
  tolerance = 4 * np.sqrt(rate * (1 - rate) / total)
  assert set(np.unique(masked)) == {0.0, 0.5}
  assert abs(np.mean(masked == 0.0) - rate) < tolerance
  noise = noisy - 0.5
  assert abs(noise.mean()) < 4 * 0.2 / np.sqrt(total)
  assert abs(noise.std() - 0.2) < 4 * 0.2 / np.sqrt(2 * total)
  assert stats.kstest(noise.reshape(-1)[:20_000] / 0.2, "norm").pvalue > 1e-3
  assert set(np.unique(salted)) == {-1.0, 0.5, 2.0}
  half = 4 * np.sqrt(rate / 2 * (1 - rate / 2) / total)
  assert abs(np.mean(salted == -1.0) - rate / 2) < half
  assert abs(np.mean(salted == 2.0) - rate / 2) < half
  # Each example gets its own draw: the masks of different rows differ.
  assert not np.array_equal(masked[0], masked[1])
  with pytest.raises(ConfigError, match="corruption"):
    ae.corrupt(key, x, kind="blur")


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_corruption_with_per_example_keys_does_not_depend_on_the_batching(kind):
  x = jnp.full((10, 6), 0.5)
  keys = rng.index_keys(jax.random.PRNGKey(2), jnp.arange(10))
  draw = jax.jit(lambda k, x: ae.corrupt(k, x, kind=kind, rate=0.5, noise_std=0.3))
  whole = draw(keys, x)
  parts = jnp.concatenate([draw(keys[:5], x[:5]), draw(keys[5:], x[5:])])
  np.testing.assert_array_equal(whole, parts)
  assert not np.array_equal(whole[0], whole[1])


def test_bernoulli_reconstruction_loss_matches_scipy():
  rng_np = np.random.default_rng(3)
  x = (rng_np.random((4, 5)) < 0.5).astype(np.float32)
  out = rng_np.normal(size=(4, 5)).astype(np.float32) * 2
  expected = -stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-out))).sum(-1)
  np.testing.assert_allclose(ae.reconstruction_loss(x=x, output=out, kind="bernoulli"),
                             expected, rtol=1e-5)
  with pytest.raises(ConfigError, match="huber"):
    ae.reconstruction_loss(x=x, output=out, kind="huber")

