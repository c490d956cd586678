"""experiments/gmm_toy2d.py runs end to end at tiny size (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_draws_ellipses_and_picks_k_by_bic(tmp_path):
  module = load_experiment("gmm_toy2d")
  report = module.main(["--quick", "--out", str(tmp_path)])
  assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(report))
  for name in ("ellipses_grid25.png", "ellipses_moons.png", "bic.png"):
    assert (tmp_path / name).read_bytes()[:8] == PNG
  grid = report["datasets"]["toy2d:grid25"]
  # 25 well-separated modes: BIC prefers K = 25 over K = 10.
  assert grid["bic_choice"] == 25
  # Exact EM: the training log-likelihood never falls (float32 slack).
  curve = np.asarray(grid["train_log_likelihood_per_iteration"])
  assert np.all(np.diff(curve) >= -1e-4) and curve[-1] > curve[0]
  for rows in (d["bic"] for d in report["datasets"].values()):
    for row in rows:
      assert row["bic"] == pytest.approx(min(row["bic_restarts"]))
      assert row["bic"] - row["aic"] == pytest.approx(
          row["num_params"] * (np.log(report["examples"]) - 2), rel=1e-4)
