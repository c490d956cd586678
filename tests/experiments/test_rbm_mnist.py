"""experiments/rbm_mnist.py runs end to end at tiny size on digits (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_reports_ais_log_likelihoods_and_figures(tmp_path):
  module = load_experiment("rbm_mnist")
  report = module.main(["--quick", "--out", str(tmp_path), "--figures",
                        "--figures-dir", str(tmp_path / "figures"), "--runs", "rbm_pcd"])
  assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(report))
  assert report["data"] == "digits (quick)"
  run = report["runs"]["rbm_pcd"]
  assert -64 * np.log(2) < run["test_log_likelihood"] < 0, run
  assert run["log_z_minus_3se"] <= run["log_z"] <= run["log_z_plus_3se"]
  assert run["num_test_images"] == 359 and run["published"] is None
  assert run["ais"]["temperatures"] == 60 and run["ais"]["runs"] == 16
  for name in ("rbm_mnist_filters.png", "rbm_mnist_samples.png"):
    assert (tmp_path / "figures" / name).read_bytes()[:8] == PNG
