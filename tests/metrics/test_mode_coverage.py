"""Mode coverage on hand-placed points with known counts per mode."""

import numpy as np
import pytest

from jaxgen.metrics.mode_coverage import mode_coverage

MODES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
SAMPLES = np.array([
    [0.0, 0.0], [1.0, 0.0], [0.0, -2.9],   # mode 0, within 3σ (σ = 1)
    [3.1, 0.0],                            # nearest mode 0, beyond 3σ: low quality
    [10.0, 3.0], [7.0, 0.0],               # mode 1, exactly on the 3σ boundary: high quality
    [0.5, 10.5],                           # mode 2
    [50.0, 50.0],                          # far from everything
    [np.nan, 1.0],                         # not finite: low quality, no mode
])


def test_counts_share_and_covered_modes_by_hand():
  out = mode_coverage(SAMPLES, MODES, 1.0, threshold=3.0, min_count=2)
  np.testing.assert_array_equal(out["counts"], [3, 2, 1])
  assert out["modes_covered"] == 2            # mode 2 has 1 < min_count
  assert out["high_quality_share"] == pytest.approx(6 / 9)


def test_min_count_is_inclusive():
  counts = {m: mode_coverage(SAMPLES, MODES, 1.0, min_count=m)["modes_covered"]
            for m in (1, 2, 3, 4)}
  assert counts == {1: 3, 2: 2, 3: 1, 4: 0}


def test_radius_is_threshold_times_std():
  # σ = 0.5, threshold 3: radius 1.5 keeps only (0,0), (1,0) and (0.5,10.5).
  out = mode_coverage(SAMPLES, MODES, 0.5, threshold=3.0, min_count=1)
  np.testing.assert_array_equal(out["counts"], [2, 0, 1])
  assert out["high_quality_share"] == pytest.approx(3 / 9)
  # The same radius from σ = 1 and threshold 1.5.
  same = mode_coverage(SAMPLES, MODES, 1.0, threshold=1.5, min_count=1)
  np.testing.assert_array_equal(same["counts"], out["counts"])


def test_a_sample_counts_at_its_nearest_mode_only():
  modes = np.array([[0.0], [4.0]])
  # 2.5 is within 3σ of both modes but nearer mode 1; 2.0 is a tie and goes to
  # the first mode (argmin); -2.5 lies only near mode 0.
  samples = np.array([[2.5], [2.0], [-2.5]])
  out = mode_coverage(samples, modes, 1.0, min_count=1)
  np.testing.assert_array_equal(out["counts"], [2, 1])
  assert out["high_quality_share"] == 1.0


def test_ring_of_eight_with_known_counts_per_mode():
  """The PacGAN ring: 8 modes on radius 2, σ = 0.02; 20 samples make a mode covered."""
  angles = 2 * np.pi * np.arange(8) / 8
  modes = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  per_mode = [25, 25, 25, 20, 19, 5, 0, 0]
  samples = []
  for mode, count in zip(modes, per_mode):
    around = 2 * np.pi * np.arange(count) / max(count, 1)
    # Points 2σ from the centre (inside 3σ), and as many at 4σ (outside).
    samples.append(mode + 0.04 * np.stack([np.cos(around), np.sin(around)], axis=1))
    samples.append(mode + 0.08 * np.stack([np.cos(around), np.sin(around)], axis=1))
  samples.append(np.zeros((10, 2)))     # the centre of the ring: far from every mode
  out = mode_coverage(np.concatenate(samples), modes, 0.02)
  np.testing.assert_array_equal(out["counts"], per_mode)
  assert out["modes_covered"] == 4
  assert out["high_quality_share"] == pytest.approx(sum(per_mode) / (2 * sum(per_mode) + 10))


def test_no_samples():
  out = mode_coverage(np.zeros((0, 2)), MODES, 1.0)
  np.testing.assert_array_equal(out["counts"], [0, 0, 0])
  assert out["modes_covered"] == 0 and out["high_quality_share"] == 0.0


def test_input_errors():
  with pytest.raises(ValueError, match="must agree in d"):
    mode_coverage(np.zeros((4, 3)), MODES, 1.0)
  with pytest.raises(ValueError, match="std must be positive"):
    mode_coverage(SAMPLES, MODES, 0.0)
