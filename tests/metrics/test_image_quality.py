"""PSNR against its formula; SSIM against a direct NumPy/scipy implementation of
Wang et al. 2004 with skimage's defaults (scikit-image is not installed in the venv)."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxgen.metrics import image_quality


def _images(seed, shape=(3, 9, 11, 2)):
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 1, shape).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
  return x, y


def _ssim_oracle(x, y, data_range, win_size=7):
  """skimage.metrics.structural_similarity's algorithm on one [H, W] channel."""
  x, y = x.astype(np.float64), y.astype(np.float64)
  n = win_size**2
  filt = lambda a: ndimage.uniform_filter(a, size=win_size)  # noqa: E731
  ux, uy = filt(x), filt(y)
  vx = n / (n - 1) * (filt(x * x) - ux * ux)
  vy = n / (n - 1) * (filt(y * y) - uy * uy)
  vxy = n / (n - 1) * (filt(x * y) - ux * uy)
  c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
  pad = (win_size - 1) // 2
  return s[pad:-pad or None, pad:-pad or None].mean()


def test_psnr_and_mse_match_the_formula():
  x, y = _images(0)
  for data_range, shift in ((1.0, 0.0), (2.0, -1.0)):
    a, b = 2 * x + shift if shift else x, 2 * y + shift if shift else y
    expected_mse = ((a.astype(np.float64) - b) ** 2).reshape(3, -1).mean(1)
    np.testing.assert_allclose(image_quality.mse(a, b), expected_mse, rtol=1e-5)
    np.testing.assert_allclose(image_quality.psnr(a, b, data_range=data_range),
                               10 * np.log10(data_range**2 / expected_mse), rtol=1e-5)
  # Scaling images and range together leaves PSNR unchanged.
  np.testing.assert_allclose(image_quality.psnr(2 * x, 2 * y, data_range=2.0),
                             image_quality.psnr(x, y, data_range=1.0), rtol=1e-5)
  assert np.isinf(np.asarray(image_quality.psnr(x, x, data_range=1.0))).all()


@pytest.mark.parametrize("win_size", [7, 3])
def test_ssim_matches_a_direct_implementation_of_wang_et_al(win_size):
  x, y = _images(1)
  got = np.asarray(image_quality.ssim(jnp.asarray(x), jnp.asarray(y), data_range=1.0,
                                      win_size=win_size))
  expected = [np.mean([_ssim_oracle(x[i, ..., c], y[i, ..., c], 1.0, win_size)
                       for c in range(x.shape[-1])]) for i in range(len(x))]
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  # Scaling images and range together leaves SSIM unchanged; shifting them does not
  # (the luminance term reads the means), so SSIM is reported on images in [0, 1].
  np.testing.assert_allclose(image_quality.ssim(2 * x, 2 * y, data_range=2.0,
                                                win_size=win_size), got, rtol=1e-4, atol=1e-5)
  shifted = np.asarray(image_quality.ssim(2 * x - 1, 2 * y - 1, data_range=2.0,
                                          win_size=win_size))
  assert not np.allclose(shifted, got, rtol=1e-3)


def test_ssim_invariants():
  x, y = _images(2)
  np.testing.assert_allclose(image_quality.ssim(x, x, data_range=1.0), 1.0, rtol=1e-6)
  sym = image_quality.ssim(y, x, data_range=1.0)
  np.testing.assert_allclose(image_quality.ssim(x, y, data_range=1.0), sym, rtol=1e-6)
  assert np.all(np.asarray(sym) < 1.0)
  # More noise, lower SSIM.
  rng = np.random.default_rng(3)
  noisier = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1)
  assert np.all(np.asarray(image_quality.ssim(x, noisier, data_range=1.0)) < np.asarray(sym))


def test_bad_inputs_are_refused():
  x, _ = _images(0)
  with pytest.raises(ValueError, match="one shape"):
    image_quality.psnr(x, x[:, :8], data_range=1.0)
  with pytest.raises(ValueError, match="at least"):
    image_quality.ssim(x[:, :5, :5], x[:, :5, :5], data_range=1.0)
  with pytest.raises(ValueError, match="odd"):
    image_quality.ssim(x, x, data_range=1.0, win_size=4)
  with pytest.raises(ValueError, match="positive"):
    image_quality.psnr(x, x, data_range=0.0)
