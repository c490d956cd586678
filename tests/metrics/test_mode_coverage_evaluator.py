"""Mode coverage against hand-placed points whose counts are known."""

import re

import numpy as np
import pytest

from jaxgen.metrics import mode_coverage
from jaxgen.metrics.mode_coverage import evaluator

MODES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
STD = 1.0


def placed_points():
  """25 points within 3σ of mode 0, 19 at mode 1, 0 at mode 2, 6 far away, 2 NaN."""
  rng = np.random.default_rng(0)
  angle = rng.uniform(0, 2 * np.pi, 44)
  radius = rng.uniform(0, 2.9, 44)  # < 3σ: high quality
  offsets = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
  near = np.concatenate([MODES[0] + offsets[:25], MODES[1] + offsets[25:]])
  far = np.array([[5.0, 5.0], [-4.0, 0.0], [10.0, 3.5], [20.0, 20.0],
                  [0.0, -3.2], [6.0, 6.0]])  # each > 3σ from every mode
  return np.concatenate([near, far, np.full((2, 2), np.nan)])


def test_counts_on_hand_placed_points():
  result = mode_coverage(placed_points(), MODES, STD)
  np.testing.assert_array_equal(result["counts"], [25, 19, 0])
  # 20 high-quality samples make a mode covered: mode 0 yes, mode 1 (19) no.
  assert result["modes_covered"] == 1
  assert result["high_quality_share"] == pytest.approx(44 / 52)
  assert mode_coverage(placed_points(), MODES, STD, min_count=19)["modes_covered"] == 2
  # A wider threshold takes in the points at 3.2 and 3.5 σ.
  assert mode_coverage(placed_points(), MODES, STD, threshold=3.6)["counts"].sum() == 46


def test_the_evaluator_counts_chunk_by_chunk_like_the_function():
  points = placed_points()
  whole = mode_coverage(points, MODES, STD)
  streaming = evaluator(MODES, STD, num_samples=len(points), chunk_size=7)
  assert streaming.chunk_sizes() == [7] * 7 + [3]
  chunks = (points[i:i + 7] for i in range(0, len(points), 7))
  values = streaming.fn(chunks)
  assert values == {"modes_covered": float(whole["modes_covered"]),
                    "high_quality_share": whole["high_quality_share"]}
  assert streaming.name == "mode_coverage" and streaming.protocol["modes"] == 3


@pytest.mark.parametrize("samples,modes,std,fragment", [
    (np.zeros((3, 3)), MODES, 1.0, "must agree in d"),
    (np.zeros((3, 2)), MODES, 0.0, "std must be positive"),
    (np.zeros((3, 2)), MODES[0], 1.0, "modes must be [M, d]"),
])
def test_bad_input_is_refused(samples, modes, std, fragment):
  with pytest.raises(ValueError, match=re.escape(fragment)):
    mode_coverage(samples, modes, std)
