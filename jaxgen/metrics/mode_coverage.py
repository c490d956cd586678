"""Mode coverage of samples from a mixture with known centres.

The protocol of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN): a
sample is *high quality* when it lies within `threshold` standard deviations of
its nearest mode centre; a mode is *covered* when at least `min_count` high
quality samples sit at it (PacGAN uses 20 of 2,500 samples on the ring and grid).
`evaluator` wraps it as the sample-based evaluator the runner uses on data
with known modes, counting chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from jaxgen.core.evaluators import SampleBased


def _check(modes: np.ndarray, std: float) -> np.ndarray:
  modes = np.asarray(modes, np.float64)
  if modes.ndim != 2:
    raise ValueError(f"modes must be [M, d], got {modes.shape}")
  if std <= 0:
    raise ValueError(f"std must be positive, got {std}")
  return modes


def _assign(samples: np.ndarray, modes: np.ndarray, std: float,
            threshold: float) -> tuple[np.ndarray, np.ndarray]:
  """(nearest mode [N], high quality [N]) of each sample; non-finite ones are low."""
  samples = np.asarray(samples, np.float64)
  if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
    raise ValueError(f"samples [N, d] and modes [M, d] must agree in d; got "
                     f"{samples.shape} and {modes.shape}")
  finite = np.all(np.isfinite(samples), axis=1)
  distances = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
  distances[~finite] = np.inf
  nearest = np.argmin(distances, axis=1)
  high_quality = distances[np.arange(len(samples)), nearest] <= threshold * std
  return nearest, high_quality


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
  return _coverage_of_chunks([samples], _check(modes, std), std, threshold, min_count)


def _coverage_of_chunks(chunks: Iterable[np.ndarray], modes: np.ndarray, std: float,
                        threshold: float, min_count: int) -> dict[str, object]:
  counts = np.zeros(len(modes), np.int64)
  high, total = 0, 0
  for chunk in chunks:
    chunk = np.asarray(chunk)
    if len(chunk) == 0:
      continue
    nearest, high_quality = _assign(chunk.reshape(len(chunk), -1), modes, std,
                                    threshold)
    counts += np.bincount(nearest[high_quality], minlength=len(modes))
    high += int(np.sum(high_quality))
    total += len(chunk)
  return {
      "modes_covered": int(np.sum(counts >= min_count)),
      "high_quality_share": high / total if total else 0.0,
      "counts": counts,
  }


def evaluator(modes: np.ndarray, std: float, num_samples: int, *,
              chunk_size: int = 2500, threshold: float = 3.0,
              min_count: int = 20) -> SampleBased:
  """Mode coverage of `num_samples` model samples, as a sample-based evaluator.

  Its numbers are "modes_covered" and "high_quality_share"; memory is bounded
  by one chunk of samples.
  """
  modes = _check(modes, std)

  def fn(chunks):
    result = _coverage_of_chunks(chunks, modes, std, threshold, min_count)
    return {"modes_covered": float(result["modes_covered"]),
            "high_quality_share": float(result["high_quality_share"])}

  return SampleBased(
      name="mode_coverage", fn=fn, num_samples=num_samples, chunk_size=chunk_size,
      protocol={
          "modes": int(len(modes)),
          "high_quality": (f"within {threshold:g} standard deviations of the "
                           "nearest mode centre"),
          "covered": (f"at least {min_count} high-quality samples at the mode "
                      "(Lin et al. 2018)"),
      })
