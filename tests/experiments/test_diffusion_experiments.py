"""Each diffusion experiment script runs end to end in --quick mode."""

import json

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
      "ddpm_mnist_samples.png", "ddpm_mnist_chain.png"]),
    ("diffusion_guidance", ["guidance_grid.png", "guidance_w0.png", "guidance_w5.png"],
     ["ddpm_guidance_samples.png", "ddpm_guidance_scores.png"]),
    ("diffusion_latent", ["vae_prior_samples.png", "latent_diffusion_samples.png"],
     ["latent_diffusion_samples.png"]),
    ("diffusion_toy2d", ["ring8/density.png"], ["ddpm_toy2d_ring8.png"]),
])
def test_quick_mode_writes_its_outputs(tmp_path, name, files, figures):
  argv = ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir",
          str(tmp_path / "figures")]
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
  if name == "diffusion_guidance":
    assert set(saved["real_digits"]) == {"classifier_test_accuracy", "mean_pairwise_distance"}
    assert saved["real_digits"]["mean_pairwise_distance"] > 0
