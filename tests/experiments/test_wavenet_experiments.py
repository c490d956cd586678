"""The WaveNet experiment script runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_quick_mode_writes_its_outputs(tmp_path):
  summary = load_experiment("wavenet_seq1d").main(["--quick", "--out", str(tmp_path)])
  assert summary["quick"] is True
  for name in ("sines", "mixture"):
    assert (tmp_path / name / "signals.png").is_file()
    assert len(list((tmp_path / name / "wav").glob("*.wav"))) == 4
    run = summary["runs"][name]
    assert 0 < run["test_nll_bits_per_sample"] < 9 and run["num_test_signals"] == 64
    assert run["generation_under_load"]["same_samples"] is True
  assert summary["runs"]["mixture"]["conditional"] is True
  assert json.loads((tmp_path / "summary.json").read_text())["quick"] is True
