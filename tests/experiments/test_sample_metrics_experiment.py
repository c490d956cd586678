"""experiments/sample_metrics_digits.py: its MNIST settings are those of the
experiments it cites, its table and figures name the feature network, and the
VAE sample figure of --data mnist is drawn from a trained run (digits here: the
tests never read MNIST)."""

import json

import numpy as np
import pytest

import jaxgen
from tests.helpers import load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def script():
  return load_experiment("sample_metrics_digits")


def test_defaults_per_data_and_mnist_configs_follow_their_experiments(script):
  digits = script.parse_args([])
  assert (digits.data, digits.out) == ("digits", "runs/sample_metrics")
  assert (digits.gan_steps, digits.ddpm_steps, digits.vae_steps) == (1500, 300, 5000)
  args = script.parse_args(["--data", "mnist", "--vae-steps", "7"])
  assert args.out == "runs/sample_metrics_mnist"
  assert (args.gan_steps, args.ddpm_steps) == (script.MNIST_STEPS["gan"],
                                              script.MNIST_STEPS["ddpm"])
  runs = script.configs(args)   # configs only: no data is read
  gan, ddpm, vae = (runs[name][0] for name in ("dcgan", "ddpm", "vae"))
  for config in (gan, ddpm, vae):
    assert config.data.name == "idx:../shared/data/mnist-t10k"
  # gan_dcgan_digits.py's MNIST widths, diffusion_digits.py's MNIST U-Net,
  # benchmarks/vae_mnist_nll.py's MLP VAE.
  assert tuple(gan.model.generator_channels) == (64, 32)
  assert tuple(gan.model.discriminator_channels) == (32, 64)
  assert (ddpm.model.channels, tuple(ddpm.model.channel_mults)) == (16, (1, 2, 2))
  assert tuple(ddpm.model.attention_resolutions) == (7,)
  assert (vae.model.architecture, tuple(vae.model.hidden), vae.model.latent_dim,
          vae.model.activation, vae.data.binarize) == ("mlp", (200, 200), 50, "tanh",
                                                       "dynamic")
  assert (gan.train.steps, ddpm.train.steps, vae.train.steps) == (
      args.gan_steps, args.ddpm_steps, 7)
  ddim = args.ddpm_sample_steps
  assert runs["ddpm"][1] == {f"ddpm (ddim {ddim})": [f"model.sample_steps={ddim}"]}


def test_table_and_figure_use_the_networks_names(script, tmp_path, monkeypatch):
  def row(fid, precision):
    net = "lenet_mnist"
    return {"metrics": {f"fid_{net}": fid, f"kid_{net}": 84.928, f"kid_{net}_std": 6.8226,
                        f"is_{net}": 8.5, f"pr_{net}_precision": precision,
                        f"pr_{net}_recall": 0.75}, "steps": 10}
  results = {"dcgan": row(12.345, 0.5), "real test images": {**row(0.5, 0.9), "samples": 2000}}
  lines = script.table(results, 1000, "lenet_mnist").splitlines()
  assert "| KID-LeNet ↓ |" in lines[0]   # the MNIST LeNet's KIDs are not scaled
  assert lines[2] == "| dcgan | 10 | 1000 | 12.35 | 84.93 ± 6.82 | 8.50 | 0.500 | 0.750 |"
  assert lines[3].startswith("| real test images | 10 | 2000 | 0.50 |")
  with pytest.raises(KeyError, match="fid_lenet_digits"):
    script.table(results, 1000)   # the digits network's names are not these
  monkeypatch.setattr(script, "FIGURES", tmp_path)
  path = script.figure(json.loads(json.dumps(results)), "mnist")
  assert path == tmp_path / "sample_metrics_mnist.png"
  assert path.read_bytes()[:8] == PNG and path.stat().st_size < 100 * 2**10


def test_vae_samples_figure_shows_draws_and_means_of_the_run(script, tmp_path):
  config = load_experiment("vae_digits").get_config()
  config.model.hidden, config.model.eval_importance_samples = (8,), 2
  config.train.steps, config.train.eval_every, config.train.sample_every = 2, 0, 0
  config.train.final_eval, config.train.progress = False, False
  jaxgen.fit(config, workdir=tmp_path / "vae")
  path, shown = script.vae_samples(tmp_path / "vae", tmp_path / "vae_samples.png", num=8)
  assert path.read_bytes()[:8] == PNG
  # What the figure shows: binary draws and grey decoder means (sample key 0).
  assert shown["sample"].shape == shown["mean"].shape == (8, 8, 8, 1)
  assert set(np.unique(shown["sample"])) <= {0.0, 1.0}
  assert not np.all(np.isin(shown["mean"], (0.0, 1.0)))
  assert np.all((shown["mean"] > 0) & (shown["mean"] < 1))
