"""Full-reference image quality: PSNR and SSIM, per example, as pure JAX functions.

Both compare images x to references y of the same shape [N, H, W, C] whose
values span `data_range` (high - low of the data's range: 1 for (0, 1), 2 for
(-1, 1)); they return one value per example ([N]).

* `psnr`: 10 · log10(data_range² / MSE), the MSE over all H·W·C values of an
  example (+inf for identical images).
* `ssim`: Wang et al. 2004, eq. 13, with the choices of
  `skimage.metrics.structural_similarity`'s defaults: a 7x7 uniform window,
  K1 = 0.01, K2 = 0.03, C_i = (K_i · data_range)², sample (co)variances
  (N/(N-1) with N = 49), the SSIM map averaged over the window positions that
  lie wholly inside the image (skimage's crop of (7-1)/2 pixels per border),
  and over channels. Images must be at least 7x7 (`win_size` smaller for
  smaller ones, odd).

    from jaxgen.metrics import image_quality
    image_quality.psnr(x, y, data_range=2.0)             # [N] dB
    image_quality.ssim(x, y, data_range=2.0)             # [N] in [-1, 1]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

K1, K2 = 0.01, 0.03
WINDOW = 7


def _check(x: Array, y: Array, data_range: float) -> tuple[Array, Array]:
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f"images and references must both be [N, H, W, C] of one shape, "
                     f"got {x.shape} and {y.shape}")
  if not data_range > 0:
    raise ValueError(f"data_range must be positive, got {data_range}")
  return x, y


def mse(x: Array, y: Array) -> Array:
  """Per-example mean squared error over H, W, C: [N]."""
  x, y = _check(x, y, 1.0)
  return jnp.mean(jnp.square(x - y), axis=(1, 2, 3))


def psnr(x: Array, y: Array, *, data_range: float) -> Array:
  """Per-example peak signal-to-noise ratio in dB: [N] (+inf where x == y)."""
  x, y = _check(x, y, data_range)
  error = jnp.mean(jnp.square(x - y), axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range**2 / error)


def _window_means(x: Array, win_size: int) -> Array:
  """Means over every win_size² window wholly inside the image: [N, H-w+1, W-w+1, C]."""
  sums = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, win_size, win_size, 1),
                               (1, 1, 1, 1), "VALID")
  return sums / win_size**2


def ssim(x: Array, y: Array, *, data_range: float, win_size: int = WINDOW) -> Array:
  """Per-example mean structural similarity (Wang et al. 2004; skimage's defaults): [N]."""
  x, y = _check(x, y, data_range)
  if win_size < 1 or win_size % 2 == 0:
    raise ValueError(f"win_size must be odd and positive, got {win_size}")
  if min(x.shape[1:3]) < win_size:
    raise ValueError(f"SSIM with a {win_size}x{win_size} window needs images at least "
                     f"that large, got {x.shape[1]}x{x.shape[2]}; pass a smaller odd "
                     "win_size")
  n = win_size**2
  cov_norm = n / (n - 1)   # sample covariance, as skimage's use_sample_covariance
  ux, uy = _window_means(x, win_size), _window_means(y, win_size)
  vx = cov_norm * (_window_means(x * x, win_size) - ux * ux)
  vy = cov_norm * (_window_means(y * y, win_size) - uy * uy)
  vxy = cov_norm * (_window_means(x * y, win_size) - ux * uy)
  c1, c2 = (K1 * data_range)**2, (K2 * data_range)**2
  ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / (
      (ux * ux + uy * uy + c1) * (vx + vy + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))
