"""Each diffusion experiment script runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name,files", [
    ("diffusion_digits", ["digits/samples_ddim50.png", "digits/samples_ddpm1000.png",
                          "digits/training_curve.png", "digits/bound.json",
                          "mnist/samples_ddim50.png", "mnist/bound.json"]),
    ("diffusion_guidance", ["guidance_grid.png", "guidance_w0.png", "guidance_w5.png"]),
    ("diffusion_latent", ["vae_prior_samples.png", "latent_diffusion_samples.png"]),
    ("diffusion_toy2d", ["ring8/density.png"]),
])
def test_quick_mode_writes_its_outputs(tmp_path, name, files):
  summary = load_experiment(name).main(["--quick", "--out", str(tmp_path)])
  assert summary["quick"] is True
  for file in files + ["summary.json"]:
    assert (tmp_path / file).is_file(), file
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["quick"] is True
