"""experiments/pix2pix_digits.py runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_pix2pix_digits_quick(tmp_path):
  report = load_experiment("pix2pix_digits").main(["--quick", "--out", str(tmp_path),
                                                   "--tasks", "masked"])
  rows = report["tasks"]["masked"]
  assert set(rows) == {"input", "target", "pix2pix", "l1_only"}
  # The targets themselves: no L1, FID 0 (same features), the classifier's accuracy.
  assert rows["target"]["l1"] == 0.0 and abs(rows["target"]["fid_lenet"]) < 1e-6
  assert rows["target"]["classifier_accuracy"] > 0.9
  for variant in ("pix2pix", "l1_only"):
    row = rows[variant]
    # The script's L1 over the test split and the engine's exact evaluation agree
    # up to the dropout draw (different keys).
    assert abs(row["l1"]["mean"] - row["engine_l1"]["mean"]) < 0.05
    assert 0 <= row["classifier_accuracy"]["mean"] <= 1 and row["dropout_std"]["mean"] > 0
  assert json.loads((tmp_path / "results.json").read_text())["steps"] == 3
  assert (tmp_path / "grid_masked.png").stat().st_size > 0
  assert "| masked | pix2pix |" in (tmp_path / "results.md").read_text()
