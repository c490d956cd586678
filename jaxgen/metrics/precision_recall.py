"""k-NN manifold metrics: improved precision/recall and density/coverage.

Each point's k-NN ball has radius the distance to its k-th nearest neighbour in
its own set (the point itself not counted).

- Precision and recall (Kynkäänniemi et al. 2019, k=3): precision is the share
  of fake points inside the union of the real balls; recall the share of real
  points inside the union of the fake balls. A point on a ball's boundary is
  inside (`<=`), as in the authors' code (NVlabs stylegan2-ada `metrics/precision_recall`).
- Density and coverage (Naeem et al. 2020, k=5): density = (1 / kM) Σ_j #{real
  balls holding fake_j}; coverage is the share of real balls holding at least one
  fake point. Boundaries are outside (`<`), as in the authors' `prdc` package.

Distances are Euclidean, in float64, computed a block of rows at a time, so
memory stays at batch_size × N floats (10k × 10k features never form a full
matrix). Evaluation-time code on the host: NumPy, never traced.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise ValueError(f"{name} must be [N, d]; got shape {features.shape}")
  return features


def _check(real: np.ndarray, fake: np.ndarray, k: int, batch_size: int, *,
           fake_radii: bool) -> None:
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"real and fake features must agree in d; got {real.shape} and "
                     f"{fake.shape}")
  if len(fake) == 0:
    raise ValueError("fake features are empty")
  largest = min(len(real), len(fake)) - 1 if fake_radii else len(real) - 1
  if not 1 <= k <= largest:
    raise ValueError(f"k must be in [1, {largest}] for {len(real)} real and {len(fake)} "
                     f"fake points; got k={k}")
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}")


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Euclidean distances [N, M] between rows of x [N, d] and y [M, d], in float64.

  ‖x‖² + ‖y‖² − 2 x·y, clipped at 0 before the square root (one matrix product,
  as scikit-learn and the reference implementations compute it).
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  squared = (np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :]
             - 2.0 * (x @ y.T))
  return np.sqrt(np.maximum(squared, 0.0))


def _distance_blocks(x: np.ndarray, y: np.ndarray,
                     batch_size: int) -> Iterator[tuple[slice, np.ndarray]]:
  for start in range(0, len(x), batch_size):
    rows = slice(start, min(start + batch_size, len(x)))
    yield rows, pairwise_distances(x[rows], y)


def knn_radii(features: np.ndarray, *, k: int, batch_size: int = 1024) -> np.ndarray:
  """Distance from each point to its k-th nearest other point of the same set.

  Args:
    features: [N, d], N > k.
    k: neighbourhood size (the point itself is not counted).
    batch_size: rows of the distance matrix held at once.

  Returns:
    [N] radii in float64.
  """
  features = _as_features(features, "features")
  if k < 1 or k >= len(features):
    raise ValueError(f"k must be in [1, N - 1]; got k={k} with N={len(features)}")
  radii = np.empty(len(features))
  for rows, distances in _distance_blocks(features, features, batch_size):
    # Index 0 of the partition is the point itself (distance 0), so index k is
    # the k-th nearest other point.
    radii[rows] = np.partition(distances, k, axis=1)[:, k]
  return radii


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3,
                     batch_size: int = 1024) -> dict[str, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  Args:
    real: [N, d] features of real data; fake: [M, d] features of samples.
    k: neighbourhood size of the k-NN balls (the paper's 3).
    batch_size: rows of a distance matrix held at once (memory batch_size × max(N, M)).

  Returns:
    {"precision": share of fake in the real manifold,
     "recall": share of real in the fake manifold}
  """
  real = _as_features(real, "real")
  fake = _as_features(fake, "fake")
  _check(real, fake, k, batch_size, fake_radii=True)
  real_radii = knn_radii(real, k=k, batch_size=batch_size)
  fake_radii = knn_radii(fake, k=k, batch_size=batch_size)
  fake_inside = np.zeros(len(fake), bool)
  for rows, distances in _distance_blocks(fake, real, batch_size):
    fake_inside[rows] = np.any(distances <= real_radii[None, :], axis=1)
  real_inside = np.zeros(len(real), bool)
  for rows, distances in _distance_blocks(real, fake, batch_size):
    real_inside[rows] = np.any(distances <= fake_radii[None, :], axis=1)
  return {"precision": float(np.mean(fake_inside)), "recall": float(np.mean(real_inside))}


def density_coverage(real: np.ndarray, fake: np.ndarray, *, k: int = 5,
                     batch_size: int = 1024) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020).

  Args:
    real: [N, d] features of real data; fake: [M, d] features of samples.
    k: neighbourhood size of the real k-NN balls (the paper's 5).
    batch_size: rows of a distance matrix held at once (memory batch_size × max(N, M)).

  Returns:
    {"density": (1 / kM) Σ_j #{i : ‖fake_j − real_i‖ < r_i}  (1 in expectation
     for identical distributions, unbounded above),
     "coverage": share of real i with some fake j, ‖fake_j − real_i‖ < r_i}
  """
  real = _as_features(real, "real")
  fake = _as_features(fake, "fake")
  _check(real, fake, k, batch_size, fake_radii=False)
  real_radii = knn_radii(real, k=k, batch_size=batch_size)
  inside_count = 0
  for _, distances in _distance_blocks(fake, real, batch_size):
    inside_count += int(np.sum(distances < real_radii[None, :]))
  covered = np.zeros(len(real), bool)
  for rows, distances in _distance_blocks(real, fake, batch_size):
    covered[rows] = np.min(distances, axis=1) < real_radii[rows]
  return {"density": inside_count / (k * len(fake)), "coverage": float(np.mean(covered))}
