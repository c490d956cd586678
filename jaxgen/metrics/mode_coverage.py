"""Mode coverage of samples from a mixture with known centres.

The protocol of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN): a
sample is *high quality* when it lies within `threshold` standard deviations of
its nearest mode centre; a mode is *covered* when at least `min_count` high
quality samples sit at it (PacGAN uses 20 of 2,500 samples on the ring and grid).
"""

from __future__ import annotations

import numpy as np


def mode_coverage(samples: np.ndarray, modes: np.ndarray, std: float, *,
                  threshold: float = 3.0, min_count: int = 20) -> dict[str, object]:
  """Counts covered modes and the share of high-quality samples.

  Args:
    samples: [N, d] points.
    modes: [M, d] mode centres.
    std: the standard deviation of each mixture component.
    threshold: a sample is high quality within threshold * std of its nearest mode.
    min_count: high-quality samples a mode needs to count as covered.

  Returns:
    {"modes_covered": int, "high_quality_share": float, "counts": int [M]}
  """
  samples = np.asarray(samples, np.float64)
  modes = np.asarray(modes, np.float64)
  if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1]:
    raise ValueError(f"samples [N, d] and modes [M, d] must agree in d; got "
                     f"{samples.shape} and {modes.shape}")
  if std <= 0:
    raise ValueError(f"std must be positive, got {std}")
  finite = np.all(np.isfinite(samples), axis=1)
  distances = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  distances[~finite] = np.inf
  nearest = np.argmin(distances, axis=1)
  high_quality = distances[np.arange(len(samples)), nearest] <= threshold * std
  counts = np.bincount(nearest[high_quality], minlength=len(modes))
  return {
      "modes_covered": int(np.sum(counts >= min_count)),
      "high_quality_share": float(np.mean(high_quality)) if len(samples) else 0.0,
      "counts": counts,
  }
