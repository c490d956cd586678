"""experiments/srgan_digits.py runs end to end in --quick mode (digits only; tests never
read MNIST)."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_srgan_digits_quick(tmp_path):
  report = load_experiment("srgan_digits").main(
      ["--quick", "--data", "digits", "--models", "srresnet,srgan", "--out", str(tmp_path)])
  record = report["digits"]
  assert record["scale"] == 2 and record["test_images"] > 0
  assert set(record["summary"]) == {"srresnet", "srgan"}
  for values in [*record["fixed"].values(), *(r[0] for r in record["per_seed"].values())]:
    assert 0 <= values["lenet_accuracy"] <= 1 and values["fid_lenet"] >= 0
    assert -1 <= values["ssim"] <= 1
  # Real images: perfect PSNR/SSIM and the LeNet's own accuracy; bicubic is finite.
  assert record["fixed"]["high_res"]["ssim"] == pytest.approx(1.0)
  assert record["fixed"]["high_res"]["lenet_accuracy"] > 0.9
  assert 5 < record["fixed"]["bicubic"]["psnr"] < 40
  assert json.loads((tmp_path / "results.json").read_text())["digits"]["seeds"] == [0]
  assert "SRResNet" in (tmp_path / "results.md").read_text()
  assert (tmp_path / "grid_digits.png").stat().st_size > 0
