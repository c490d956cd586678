"""benchmarks/likelihood_throughput.py: a quick run's JSON has every rate and share of peak."""

import json

import pytest

from benchmarks import likelihood_throughput


@pytest.mark.slow  # compiles two tiny models' train steps and samplers
def test_quick_run_reports_rates_and_shares_of_peak(tmp_path):
  # RealNVP's row runs the same code path and is left out here: compiling even
  # a tiny multi-scale flow takes most of a minute on a CPU.
  out = tmp_path / "likelihood_throughput.json"
  likelihood_throughput.main(["--quick", "--models", "pixelcnn,gated", "--out", str(out)])
  report = json.loads(out.read_text())
  assert report["peak"]["peak_flops_per_second"] > 0
  assert set(report["models"]) == {"pixelcnn-digits8", "gated-digits8"}
  for name, entry in report["models"].items():
    for phase in ("train", "sample"):
      numbers = entry[phase]
      assert numbers["flops"] if phase == "sample" else numbers["flops_per_step"], name
      assert 0 < numbers["share_of_peak"] < 1.5, (name, phase)  # a share, not a raw count
    assert entry["train"]["steps_per_second"] > 0 and entry["sample"]["images_per_second"] > 0
    assert entry["parameters"] > 0
  # PixelCNN sampling counts H·W·C = 64 network passes: more FLOPs than a train
  # step's forward and backward on the same batch size (4 sampled vs 8 trained).
  pixel = report["models"]["pixelcnn-digits8"]
  assert pixel["sample"]["flops"] > pixel["train"]["flops_per_step"]
  assert pixel["sample"]["flops_counted_as"].startswith("H*W*C")
