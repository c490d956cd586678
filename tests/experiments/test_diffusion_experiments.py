"""Each diffusion experiment script runs end to end in --quick mode."""

import json
import pathlib

import pytest

from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("name,files,figures", [
    ("diffusion_digits", ["digits/samples_ddim50.png", "digits/samples_ddpm1000.png",
                          "digits/training_curve.png", "digits/bound.json",
                          "digits/chain.png", "digits/samplers.png",
                          "mnist/samples_ddim50.png", "mnist/bound.json", "mnist/chain.png"],
     ["ddpm_digits_samples.png", "ddpm_digits_chain.png", "ddpm_digits_samplers.png",
      "ddpm_digits_sampler_metrics.png", "ddpm_mnist_samples.png", "ddpm_mnist_chain.png"]),
    ("diffusion_guidance", ["guidance_grid.png", "guidance_w0.png", "guidance_w5.png"],
     ["ddpm_guidance_samples.png", "ddpm_guidance_scores.png"]),
    ("diffusion_latent", ["vae_prior_samples.png", "latent_diffusion_samples.png"],
     ["latent_diffusion_samples.png"]),
    ("diffusion_toy2d", ["ring8/density.png"], ["ddpm_toy2d_ring8.png"]),
])
def test_quick_mode_writes_its_outputs(tmp_path, name, files, figures):
  argv = ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir",
          str(tmp_path / "figures")]
  if name == "diffusion_digits":
    # Two of the four pairs (T = 50 here), to keep the test short.
    argv += ["--sampler-metrics", "12", "--sampler-metrics-rows", "ddpm50,ddim10"]
  summary = load_experiment(name).main(argv)
  assert summary["quick"] is True
  for file in files + ["summary.json"]:
    assert (tmp_path / file).is_file(), file
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["quick"] is True
  # --figures writes exactly these, small enough for docs/figures.
  written = sorted(p.name for p in (tmp_path / "figures").iterdir())
  assert written == sorted(figures)
  for file in figures:
    assert (tmp_path / "figures" / file).read_bytes()[:8] == PNG
    assert (tmp_path / "figures" / file).stat().st_size < 200 * 2**10, file
  if name == "diffusion_digits":
    samplers = saved["digits"]["samplers"]
    assert samplers["steps"] == [50, 10]  # --quick: T = 50
    # Ten steps are other samples than all fifty, for both samplers.
    assert samplers["ddpm10"]["rms_to_all_steps"] > 0.0
    assert samplers["ddim10"]["rms_to_all_steps"] > 0.0
    _check_sampler_metrics(saved["digits"]["sampler_metrics"], tmp_path / "digits")
  if name == "diffusion_guidance":
    assert set(saved["real_digits"]) == {"classifier_test_accuracy", "mean_pairwise_distance"}
    assert saved["real_digits"]["mean_pairwise_distance"] > 0


def _check_sampler_metrics(report, folder):
  """--sampler-metrics: a row per asked sampler and step count, each from its own sampler."""
  assert sorted(report["rows"]) == ["ddim10", "ddpm50"]
  assert json.loads((folder / "sampler_metrics.json").read_text()) == report
  real = report["real_test_digits"]
  assert real["samples"] == 359 and real["reference"] == 1438
  for name, row in report["rows"].items():
    m = row["metrics"]
    assert 0.0 <= m["pr_lenet_digits_precision"] <= 1.0
    assert 0.0 <= m["pr_lenet_digits_recall"] <= 1.0
    # Three steps of training: far from the real digits, which the same reference
    # finds close (the floor row).
    assert m["fid_lenet_digits"] > 5 * real["metrics"]["fid_lenet_digits"] > 0, name
    # The evaluation really used this sampler and step count.
    saved = json.loads(pathlib.Path(row["eval_file"]).read_text())
    settings = saved["protocol"]["lenet_digits"]["sampler_settings"]
    assert (settings["sampler"], settings["sample_steps"]) == (row["sampler"], row["steps"])
    assert saved["protocol"]["lenet_digits"]["generated"] == 12
  table = (folder / "sampler_metrics.md").read_text()
  assert table.count("\n") == 2 + 2 + 1 and "real test digits" in table


@pytest.mark.parametrize("argv", [["--sampler-metrics", "5"],
                                  ["--sampler-metrics", "100", "--datasets", "mnist"],
                                  ["--sampler-metrics", "100", "--sampler-metrics-only"]])
def test_sampler_metrics_flag_is_checked_before_anything_runs(tmp_path, argv):
  with pytest.raises(SystemExit) as error:
    load_experiment("diffusion_digits").main(["--out", str(tmp_path / "out")] + argv)
  assert error.value.code == 2
  assert not (tmp_path / "out").exists()
