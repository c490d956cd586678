"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

FID = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}). The numerics follow pytorch-fid's
`calculate_frechet_distance` step for step, so a number computed here on the same
features matches the reference implementation: float64 throughout, the matrix
square root by `scipy.linalg.sqrtm` (Schur method), `eps * I` added to both
covariances when the product's square root is not finite, and a small imaginary
part of the result dropped (an error when a diagonal entry's imaginary part
exceeds 1e-3).

A singular product (features that are constant in some direction: dead units,
a collapsed generator) is common. scipy >= 1.16 then warns "Matrix is singular.
The result might be inaccurate..." (`LinAlgWarning`) and still returns a root,
where the scipy pytorch-fid was written against returned NaN. That warning is
caught here: the root is checked (‖X X − Σ1 Σ2‖_F against ‖Σ1 Σ2‖_F) and kept
when it is a square root, as pytorch-fid keeps a finite one; when it is not (or
is not finite), pytorch-fid's remedy, the `eps * I` offset, is taken. Neither
case warns the user; only a product that the offset does not fix does.

Evaluation-time code on the host: NumPy/SciPy, never traced.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

# pytorch-fid's tolerance on the imaginary part of diag(sqrtm(Σ1 Σ2)).
IMAGINARY_TOLERANCE = 1e-3


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of features, in float64, as pytorch-fid fits them.

  Args:
    features: [N, d] feature vectors, N >= 2.

  Returns:
    (mu [d], sigma [d, d]): the sample mean and the unbiased sample covariance
    (ddof=1, `np.cov(features, rowvar=False)`).
  """
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f"features must be [N, d] with N >= 2; got shape {features.shape}")
  mu = np.mean(features, axis=0)
  sigma = np.atleast_2d(np.cov(features, rowvar=False))
  return mu, sigma


# Largest relative residual ‖X X − A‖_F / ‖A‖_F of a root X of A = Σ1 Σ2 that
# scipy flagged (singular or ill-conditioned) and that is still kept.
ROOT_TOLERANCE = 1e-8


def _sqrtm(product: np.ndarray) -> tuple[np.ndarray, bool]:
  """(sqrtm(product), whether it is a usable square root of it).

  A root scipy flags with its LinAlgWarning (singular, ill-conditioned) is
  usable when it is finite and squares back to `product` (ROOT_TOLERANCE);
  the warning itself is caught, other warnings pass.
  """
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
    # scipy >= 1.16 deprecates `disp`; the result is the same matrix as
    # pytorch-fid's `sqrtm(..., disp=False)[0]`.
    root = scipy.linalg.sqrtm(product)
  flagged = False
  for warning in caught:
    if issubclass(warning.category, scipy.linalg.LinAlgWarning):
      flagged = True
    else:
      warnings.warn_explicit(warning.message, warning.category, warning.filename,
                             warning.lineno)
  if not np.isfinite(root).all():
    return root, False
  if flagged:
    residual = np.linalg.norm(root @ root - product)
    return root, bool(residual <= ROOT_TOLERANCE * np.linalg.norm(product))
  return root, True


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, *, eps: float = 1e-6) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017).

  Args:
    mu1, mu2: [d] means.
    sigma1, sigma2: [d, d] covariances (symmetric positive semi-definite).
    eps: added to both covariances' diagonals when sqrtm(sigma1 @ sigma2) is not
      finite (a singular product), as pytorch-fid does, or is no square root of
      the product (see the module docstring).

  Returns:
    The squared Fréchet distance, a float (>= 0 up to rounding).

  Raises:
    ValueError: shapes that do not agree, or a matrix square root whose diagonal
      has an imaginary part above 1e-3 (pytorch-fid's check).
  """
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.ndim != 1 or mu1.shape != mu2.shape:
    raise ValueError(f"means must both be [d]; got {mu1.shape} and {mu2.shape}")
  d = mu1.shape[0]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(f"covariances must both be [{d}, {d}]; got {sigma1.shape} and "
                     f"{sigma2.shape}")
  diff = mu1 - mu2
  covmean, usable = _sqrtm(sigma1 @ sigma2)
  if not usable:
    # pytorch-fid's remedy for a singular product (it prints a note; the offset
    # is the documented behaviour, so no warning here).
    offset = np.eye(d) * eps
    covmean, usable = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not usable:
      warnings.warn(f"FID: sqrtm(sigma1 @ sigma2) is no square root even with {eps} added "
                    "to both covariances' diagonals; the value is inaccurate",
                    RuntimeWarning, stacklevel=2)
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_TOLERANCE):
      raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary component of "
                       f"{np.max(np.abs(covmean.imag)):.3g}; the covariances are not "
                       f"positive semi-definite or are badly conditioned")
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray, *,
                      eps: float = 1e-6) -> float:
  """FID between two feature sets: `frechet_distance` of their Gaussian statistics.

  Args:
    features1: [N1, d]; features2: [N2, d] (e.g. Inception pool3 features of real
      and generated images).
  """
  mu1, sigma1 = gaussian_statistics(features1)
  mu2, sigma2 = gaussian_statistics(features2)
  return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
