"""experiments/pggan_digits.py runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_pggan_digits_quick(tmp_path):
  report = load_experiment("pggan_digits").main(
      ["--quick", "--out", str(tmp_path), "--seeds", "0,1"])
  summary = report["summary"]
  for name in ("pggan", "dcgan"):
    scores = summary[name]["classifier_score"]
    assert len(scores["per_seed"]) == 2 and all(1.0 <= s <= 10.0 for s in scores["per_seed"])
  run = report["runs"][0]
  # 12 steps of batch 16: stage 0 ends at step 4, the fade at 8 (α = 0.5 at 6).
  assert [row.split(":")[0] for row in run["growing_rows"]] == [
      "step 4", "step 6", "step 8", "step 12"]
  assert run["pggan"]["parameters"]["generator"] > 0
  for name in ("growing.png", "samples_pggan.png", "samples_dcgan.png"):
    assert (tmp_path / "digits" / "seed0" / name).stat().st_size > 0, name
  saved = json.loads((tmp_path / "digits" / "results.json").read_text())
  assert saved["seeds"] == [0, 1]
  assert "pggan" in (tmp_path / "digits" / "results.md").read_text()
