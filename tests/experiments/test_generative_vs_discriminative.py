"""experiments/generative_vs_discriminative.py runs end to end at tiny size (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


def test_crossing_interpolates_in_log_m():
  module = load_experiment("generative_vs_discriminative")
  # NB better at 10 (gap +0.1), LR better at 40 (gap -0.1): halfway in log m is 20.
  assert module.crossing([10, 40], [0.2, 0.3], [0.3, 0.2]) == pytest.approx(20.0)
  assert module.crossing([10, 40], [0.3, 0.3], [0.2, 0.2]) is None


@pytest.mark.slow
def test_quick_run_writes_curves_for_three_datasets(tmp_path):
  module = load_experiment("generative_vs_discriminative")
  report = module.main(["--quick", "--out", str(tmp_path)])
  assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(report))
  assert (tmp_path / "learning_curves.png").read_bytes()[:8] == PNG
  assert [d["dataset"] for d in report["datasets"]] == ["digits", "breast_cancer", "wine"]
  for dataset in report["datasets"]:
    assert [r["m"] for r in dataset["rows"]] == list(module.QUICK_SIZES[dataset["dataset"]])
    for row in dataset["rows"]:
      for name in module.CLASSIFIERS:
        errors = row[name]["errors"]
        assert len(errors) == 2 and all(0.0 <= e <= 1.0 for e in errors)
        assert row[name]["mean"] == pytest.approx(np.mean(errors))
    # More data helps every classifier here (the test errors fall with m).
    for name in module.CLASSIFIERS:
      assert dataset["rows"][-1][name]["mean"] <= dataset["rows"][0][name]["mean"] + 0.02
  with np.load(tmp_path / "data" / "wine.npz") as arrays:
    assert len(arrays["x_train"]) + len(arrays["x_test"]) == 178
    np.testing.assert_allclose(arrays["x_train"].mean(0), 0.0, atol=1e-5)
  assert "| m |" in (tmp_path / "results.md").read_text()
