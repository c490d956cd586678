"""experiments/pggan_digits.py runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
def test_pggan_digits_quick(tmp_path):
  figures = tmp_path / "figures"
  report = load_experiment("pggan_digits").main(
      ["--quick", "--out", str(tmp_path), "--seeds", "0,1", "--figures",
       "--figures-dir", str(figures)])
  summary = report["summary"]
  for name in ("pggan", "dcgan"):
    scores = summary[name]["classifier_score"]
    assert len(scores["per_seed"]) == 2 and all(1.0 <= s <= 10.0 for s in scores["per_seed"])
    # FID-LeNet through jaxgen.metrics: positive, and 1,000 samples of a 12-step
    # GAN are much farther from the digits than the real test digits are.
    assert all(f > 5 * report["real_test_images"]["fid_lenet"]
               for f in summary[name]["fid_lenet"]["per_seed"])
    for run in report["runs"]:
      assert run[name]["feature_network"] == "lenet_digits"
      assert 0.0 <= run[name]["precision"] <= 1.0 and 0.0 <= run[name]["recall"] <= 1.0
  assert 0 < report["real_test_images"]["fid_lenet"] < 20
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
  # The report again from the seeds' saved records, without training.
  again = load_experiment("pggan_digits").main(
      ["--quick", "--out", str(tmp_path), "--seeds", "0,1", "--from-records"])
  assert again["summary"] == summary and again["runs"] == json.loads(json.dumps(report["runs"]))
  for name in ("growing", "samples_pggan", "samples_dcgan"):   # small docs copies
    size = (figures / f"pggan_digits_{name}.png").stat().st_size
    assert 0 < size < 100 * 2**10, (name, size)


def test_pggan_mnist_configs_match_the_dcgan_per_level():
  """MNIST (4 resolutions): pggan gets one width per resolution, the DCGAN's
  7x7/14x14 levels pggan's 8x8/16x16 widths; same batch, steps, latent size.
  Builds configs only (no data is read)."""
  experiment = load_experiment("pggan_digits")
  pggan, dcgan = experiment.configs("mnist", 500, False, 2560, 2560, (32, 32, 16, 8))
  assert tuple(pggan.model.channels) == (32, 32, 16, 8)
  assert tuple(dcgan.model.generator_channels) == (32, 16)
  assert tuple(dcgan.model.discriminator_channels) == (16, 32)
  assert pggan.data.batch_size == dcgan.data.batch_size == 64
  assert pggan.train.steps == dcgan.train.steps == 500
  assert pggan.model.latent_dim == dcgan.model.latent_dim
  assert (pggan.model.fade_images, pggan.model.stable_images) == (2560, 2560)
  quick, _ = experiment.configs("mnist", 12, True)
  assert len(quick.model.channels) == 4       # 4x4 .. 32x32 (the --quick fix)
  with pytest.raises(SystemExit) as error:    # 2 widths are digits' count, not MNIST's
    experiment.main(["--data", "mnist", "--channels", "32,16"])
  assert error.value.code == 2
