"""benchmarks/wavenet_generation.py: a smoke run's JSON (not its speed)."""

import json

import pytest

from benchmarks import wavenet_generation


@pytest.mark.slow
def test_quick_run_writes_both_loops_against_the_receptive_field(tmp_path):
  report = wavenet_generation.main(["--quick", "--out", str(tmp_path / "out.json")])
  saved = json.loads((tmp_path / "out.json").read_text())
  # depth 1 and 3, two stacks: R = 1 + (1 + Σ dilations) = 8 and 32.
  assert [row["receptive_field"] for row in saved["rows"]] == [8, 32]
  assert [row["layers"] for row in saved["rows"]] == [4, 8]
  for row in report["rows"]:
    assert row["same_samples"] is True
    assert row["cached_samples_per_second"] > 0 and row["naive_samples_per_second"] > 0
    assert row["speedup"] == row["cached_samples_per_second"] / row["naive_samples_per_second"]
