"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared maximum mean discrepancy between two
feature distributions under the cubic polynomial kernel k(x, y) = (x·y / d + 1)³,
averaged over random subsets. Defaults follow torch-fidelity (100 subsets of
1,000 samples drawn without replacement, the mean and the population std of the
subset estimates); the subset size is capped by the smaller sample count, where
torch-fidelity would stop with an error.

Evaluation-time code on the host: NumPy float64, never traced.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray, *, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
  """k(x, y) = (gamma x·y + coef0)^degree; gamma defaults to 1/d.

  Args:
    x: [N, d]; y: [M, d].

  Returns:
    [N, M] kernel matrix in float64.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if gamma is None:
    gamma = 1.0 / x.shape[1]
  return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
  """Unbiased MMD² from kernel matrices (Gretton et al. 2012, eq. 3).

  MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1))
           − 2 Σ_{i,j} k(x_i, y_j) / (mn).
  With m = n it is torch-fidelity's `mmd2(..., mmd_est="unbiased")`.

  Args:
    k_xx: [m, m]; k_xy: [m, n]; k_yy: [n, n]; m, n >= 2.
  """
  m, n = k_xy.shape
  if k_xx.shape != (m, m) or k_yy.shape != (n, n) or min(m, n) < 2:
    raise ValueError(f"kernel matrices must be [m, m], [m, n], [n, n] with m, n >= 2; got "
                     f"{k_xx.shape}, {k_xy.shape}, {k_yy.shape}")
  within_x = (np.sum(k_xx) - np.trace(k_xx)) / (m * (m - 1))
  within_y = (np.sum(k_yy) - np.trace(k_yy)) / (n * (n - 1))
  return float(within_x + within_y - 2.0 * np.sum(k_xy) / (m * n))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, *, degree: int = 3,
                    gamma: float | None = None, coef0: float = 1.0) -> float:
  """Unbiased MMD² between samples x [m, d] and y [n, d] under the polynomial kernel."""
  kernel = dict(degree=degree, gamma=gamma, coef0=coef0)
  return mmd2_unbiased(polynomial_kernel(x, x, **kernel), polynomial_kernel(x, y, **kernel),
                       polynomial_kernel(y, y, **kernel))


def kid_from_features(features1: np.ndarray, features2: np.ndarray, *,
                      num_subsets: int = 100, subset_size: int = 1000,
                      seed: int | np.random.Generator = 0, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0) -> dict[str, float | int]:
  """KID: unbiased polynomial-kernel MMD² over random subsets (Bińkowski et al. 2018).

  Each subset draws `subset_size` rows of features1, then of features2, without
  replacement, from one generator, so the result is a function of the seed.

  Args:
    features1: [N1, d]; features2: [N2, d] (e.g. Inception pool3 features).
    num_subsets: subsets to average over (torch-fidelity: 100).
    subset_size: samples per subset (torch-fidelity: 1000), capped by min(N1, N2).
    seed: an int seed or a `numpy.random.Generator` for the subset draws.
    degree, gamma, coef0: the kernel (gamma=None means 1/d).

  Returns:
    {"mean": float, "std": float (ddof=0, as torch-fidelity), "subset_size": int used}
  """
  features1 = np.asarray(features1, np.float64)
  features2 = np.asarray(features2, np.float64)
  if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
    raise ValueError(f"features must be [N1, d] and [N2, d]; got {features1.shape} and "
                     f"{features2.shape}")
  if num_subsets < 1:
    raise ValueError(f"num_subsets must be at least 1, got {num_subsets}")
  size = min(subset_size, len(features1), len(features2))
  if size < 2:
    raise ValueError(f"KID needs subsets of at least 2 samples; got subset_size={subset_size} "
                     f"with {len(features1)} and {len(features2)} samples")
  rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
  mmds = np.empty(num_subsets)
  for i in range(num_subsets):
    x = features1[rng.choice(len(features1), size, replace=False)]
    y = features2[rng.choice(len(features2), size, replace=False)]
    mmds[i] = polynomial_mmd2(x, y, degree=degree, gamma=gamma, coef0=coef0)
  return {"mean": float(np.mean(mmds)), "std": float(np.std(mmds)), "subset_size": size}
