"""experiments/pixelcnn_mnist.py runs end to end at tiny size (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_reports_exact_nlls_samples_and_completions(tmp_path):
  module = load_experiment("pixelcnn_mnist")
  report = module.main(["--quick", "--out", str(tmp_path)])
  assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(report))
  assert set(report["runs"]) == {"pixelcnn", "gated"}
  for architecture, run in report["runs"].items():
    assert run["image_shape"] == [8, 8, 1] and run["num_test_images"] == 2000
    assert run["test_nll_nats"] == pytest.approx(
        run["test_nll_bits_per_dim"] * 64 * np.log(2), rel=1e-5)
    assert run["completion"]["observed_pixels_kept"]
    for name in ("samples.png", "completion.png"):
      assert (tmp_path / architecture / name).read_bytes()[:8] == PNG
  assert report["runs"]["pixelcnn"]["published_nll_nats"] == 81.30
