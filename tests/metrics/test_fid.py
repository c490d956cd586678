"""FID: oracles from the closed form of the Fréchet distance between Gaussians."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from jaxgen.metrics import fid


def _random_covariance(rng, d, scale=1.0):
  a = rng.normal(size=(d, d))
  return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _psd_sqrt(sigma):
  values, vectors = np.linalg.eigh(sigma)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _closed_form_by_eigh(mu1, sigma1, mu2, sigma2):
  """Independent oracle: Tr (Σ1 Σ2)^{1/2} = Tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}, symmetric sqrts."""
  root1 = _psd_sqrt(sigma1)
  cross = _psd_sqrt(root1 @ sigma2 @ root1)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
               - 2 * np.trace(cross))


def test_gaussian_statistics_by_hand():
  features = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
  mu, sigma = fid.gaussian_statistics(features)
  np.testing.assert_allclose(mu, [2.0, 2.0])
  # Deviations (-2,-1), (0,-1), (2,2); sums of products / (N - 1) = / 2.
  np.testing.assert_allclose(sigma, [[4.0, 3.0], [3.0, 3.0]])
  assert mu.dtype == np.float64 and sigma.dtype == np.float64


def test_gaussian_statistics_one_dimension_is_a_matrix():
  mu, sigma = fid.gaussian_statistics(np.array([[0.0], [2.0]], np.float32))
  assert mu.shape == (1,) and sigma.shape == (1, 1)
  np.testing.assert_allclose(sigma, [[2.0]])


def test_fid_of_a_set_with_itself_is_zero():
  features = np.random.default_rng(0).normal(size=(200, 16)) * 3.0 + 1.0
  mu, sigma = fid.gaussian_statistics(features)
  value = fid.frechet_distance(mu, sigma, mu, sigma)
  assert abs(value) < 1e-9 * np.trace(sigma)
  assert abs(fid.fid_from_features(features, features)) < 1e-9 * np.trace(sigma)


def test_one_dimension_closed_form():
  # (μ1 − μ2)² + (s1 − s2)² for variances s1², s2².
  value = fid.frechet_distance(np.array([1.0]), np.array([[4.0]]),
                               np.array([-2.0]), np.array([[9.0]]))
  np.testing.assert_allclose(value, 9.0 + 1.0, rtol=1e-12)


def test_diagonal_covariances_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
  var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  # Σ_i (sqrt(var1_i) − sqrt(var2_i))² = 4 + 1 + 0; ‖Δμ‖² = 1 + 0 + 9.
  value = fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  np.testing.assert_allclose(value, 15.0, rtol=1e-12)


def test_commuting_covariances_closed_form():
  rng = np.random.default_rng(1)
  rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
  var1, var2 = rng.uniform(0.1, 3.0, size=5), rng.uniform(0.1, 3.0, size=5)
  sigma1 = rotation @ np.diag(var1) @ rotation.T
  sigma2 = rotation @ np.diag(var2) @ rotation.T
  mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  np.testing.assert_allclose(fid.frechet_distance(mu1, sigma1, mu2, sigma2), want,
                             rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_general_covariances_match_eigendecomposition(seed):
  rng = np.random.default_rng(seed)
  d = 12
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  sigma1, sigma2 = _random_covariance(rng, d), _random_covariance(rng, d, scale=2.0)
  np.testing.assert_allclose(fid.frechet_distance(mu1, sigma1, mu2, sigma2),
                             _closed_form_by_eigh(mu1, sigma1, mu2, sigma2), rtol=1e-9)


def test_samples_from_two_gaussians_approach_the_closed_form():
  rng = np.random.default_rng(3)
  d, n = 3, 40_000
  mu1, mu2 = np.zeros(d), np.array([1.0, 0.0, -0.5])
  sigma1, sigma2 = _random_covariance(rng, d), _random_covariance(rng, d)
  x = rng.multivariate_normal(mu1, sigma1, size=n)
  y = rng.multivariate_normal(mu2, sigma2, size=n)
  want = _closed_form_by_eigh(mu1, sigma1, mu2, sigma2)
  np.testing.assert_allclose(fid.fid_from_features(x, y), want, rtol=0.05, atol=0.01)


def test_symmetric_and_translation_invariant():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(300, 8))
  y = rng.normal(size=(250, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
  value = fid.fid_from_features(x, y)
  assert value > 0.1
  np.testing.assert_allclose(fid.fid_from_features(y, x), value, rtol=1e-9)
  shift = rng.normal(size=8) * 10.0
  np.testing.assert_allclose(fid.fid_from_features(x + shift, y + shift), value, rtol=1e-8)


def test_small_imaginary_part_is_dropped():
  # sqrtm(diag(1, -1e-8)) = diag(1, 1e-4 i): below pytorch-fid's 1e-3, so kept real.
  sigma1, sigma2 = np.diag([1.0, -1e-8]), np.eye(2)
  value = fid.frechet_distance(np.zeros(2), sigma1, np.zeros(2), sigma2)
  assert isinstance(value, float)
  np.testing.assert_allclose(value, (1.0 - 1e-8) + 2.0 - 2.0 * 1.0, rtol=1e-12)


def test_large_imaginary_part_raises():
  with pytest.raises(ValueError, match="imaginary component"):
    fid.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_shape_errors():
  with pytest.raises(ValueError, match="means"):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))
  with pytest.raises(ValueError, match="covariances"):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
  with pytest.raises(ValueError, match=r"\[N, d\]"):
    fid.gaussian_statistics(np.zeros((1, 3)))


def _dead_and_collapsed(seed=5):
  """Feature sets whose covariance product is exactly singular: dead units (zero
  in both sets) and a second set collapsed onto few points."""
  rng = np.random.default_rng(seed)
  x = np.maximum(rng.normal(size=(60, 24)), 0.0)
  y = np.repeat(rng.normal(size=(3, 24)), 20, axis=0)
  x[:, :5] = 0.0
  y[:, :5] = 0.0
  return x, y


def test_a_singular_product_is_exact_and_quiet():
  x, y = _dead_and_collapsed()
  mu1, sigma1 = fid.gaussian_statistics(x)
  mu2, sigma2 = fid.gaussian_statistics(y)
  with pytest.warns(scipy.linalg.LinAlgWarning, match="singular"):
    scipy.linalg.sqrtm(sigma1 @ sigma2)     # the case scipy warns about
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    value = fid.frechet_distance(mu1, sigma1, mu2, sigma2)
    fid.fid_from_features(x, y)
  assert not caught, [str(w.message) for w in caught]
  # The root scipy returns is a square root: the value is the closed form's,
  # not the one with pytorch-fid's offset (1e-6 on both diagonals).
  exact = _closed_form_by_eigh(mu1, sigma1, mu2, sigma2)
  offset = 1e-6 * np.eye(len(mu1))
  shifted = _closed_form_by_eigh(mu1, sigma1 + offset, mu2, sigma2 + offset) - 2e-6 * len(mu1)
  assert abs(value - exact) < 1e-7 < 1e-4 < abs(shifted - exact)


@pytest.mark.parametrize("failure", ["nan", "no_root"])
def test_a_product_without_a_root_takes_pytorch_fids_offset_quietly(monkeypatch, failure):
  rng = np.random.default_rng(6)
  d, eps = 6, 1e-3
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  sigma1, sigma2 = _random_covariance(rng, d), _random_covariance(rng, d)
  real_sqrtm, calls = scipy.linalg.sqrtm, []

  def sqrtm(product):
    calls.append(product)
    if len(calls) > 1:
      return real_sqrtm(product)
    if failure == "nan":   # what the scipy pytorch-fid was written against returned
      return np.full_like(product, np.nan)
    warnings.warn("Matrix is singular. The result might be inaccurate",
                  scipy.linalg.LinAlgWarning)
    return np.eye(d)       # finite, flagged, and no root of the product

  monkeypatch.setattr(fid.scipy.linalg, "sqrtm", sqrtm)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    value = fid.frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
  assert not caught, [str(w.message) for w in caught]
  assert len(calls) == 2
  np.testing.assert_allclose(calls[1], (sigma1 + eps * np.eye(d)) @ (sigma2 + eps * np.eye(d)))
  # pytorch-fid: the traces of the covariances as given, the root of the offset ones.
  offset = eps * np.eye(d)
  root1 = _psd_sqrt(sigma1 + offset)
  cross = np.trace(_psd_sqrt(root1 @ (sigma2 + offset) @ root1))
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross
  np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_a_product_the_offset_does_not_fix_warns(monkeypatch):
  monkeypatch.setattr(fid.scipy.linalg, "sqrtm", lambda product: np.full_like(product, np.nan))
  with pytest.warns(RuntimeWarning, match="no square root even with"):
    value = fid.frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
  assert np.isnan(value)
