"""experiments/projection_digits.py runs end to end in --quick mode."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_projection_digits_quick(tmp_path):
  record = load_experiment("projection_digits").main(["--quick", "--out", str(tmp_path)])
  steps = record["options"]["steps"]
  curves = record["curves_at"]
  assert sorted(map(int, curves)) == [0, steps]
  for row in curves.values():
    # The first r restarts of the run with more are the run with r: never worse.
    assert row["random, 2 restarts"] <= row["random, 1 restart"]
    assert row["encoder + 1 random"] <= row["encoder + 0 random"]
  table = record["table"]
  # The table's final pixel error is the curve's last point (same projection).
  np.testing.assert_allclose(table["test, 2 random"]["pixel_mse"],
                             curves[str(steps)]["random, 2 restarts"], rtol=1e-5)
  assert all(0.0 <= row["lenet_accuracy"] <= 1.0 for row in table.values())
  edit = record["edit"]
  assert edit["pairs"] > 0 and len(edit["classified_b_by_amount"]) == len(edit["amounts"])
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["table"] == table
  assert "pixel MSE" in (tmp_path / "results.md").read_text()
