"""experiments/dae_sampler.py runs end to end at tiny size (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_measures_both_samplers_on_ring8(tmp_path):
  module = load_experiment("dae_sampler")
  report = module.main(["--quick", "--out", str(tmp_path)])
  assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(report))
  for name in ("ring8.png", "digits_chains.png"):
    assert (tmp_path / name).read_bytes()[:8] == PNG
  plain, walkback = report["ring8"]
  assert set(plain["samplers"]) == set(module.SAMPLERS)
  assert set(walkback["samplers"]) == set(module.SAMPLERS) - {"code moments"}
  for study in report["ring8"]:
    # The ML std of P(X | x~) fell from its start at 1 as the denoiser learned.
    assert all(0 < s < 1 for s in study["reconstruction_std"])
    for row in study["samplers"].values():
      assert len(row["modes_covered"]) == report["seeds"]
      assert all(0 <= m <= 8 for m in row["modes_covered"])
      assert row["modes_mean"] == pytest.approx(np.mean(row["modes_covered"]))
      assert all(0 <= q <= 1 for q in row["high_quality_share"])
  assert np.isfinite(report["digits"]["test_mse"])
  assert "| corruption std |" in (tmp_path / "results.md").read_text()
