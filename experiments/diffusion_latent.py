"""Latent diffusion on digits: a VAE first, then DDPM in its code space.

  python experiments/diffusion_latent.py [--quick] [--out runs/diffusion_latent] [--figures]

1. Trains a jaxgen `vae` (MLP, Gaussian decoder on grey digits in [0, 1]).
2. Trains `latent_diffusion` (the MLP denoiser) on the VAE's posterior means,
   scaled to unit variance (Rombach et al. 2022).
3. Compares, in the 8-d code space, the test codes with codes drawn from the
   VAE prior N(0, I) and from the latent diffusion: the squared MMD with an
   RBF kernel (bandwidth: the median distance among test codes). A VAE's
   aggregate posterior is not its prior, so prior draws decode to blurry
   mixtures of digits; the diffusion learns the aggregate posterior itself.
   The codes of real training digits against the test codes give the floor
   (the two samples differ only by chance).
Writes vae_prior_samples.png, latent_diffusion_samples.png, samples.png (the
two side by side, titled with their MMD) and summary.json (the VAE's
reconstructions are in vae/reconstructions.png). `--figures` also copies
samples.png into docs/figures/ (`--figures-dir`) as latent_diffusion_samples.png.
`--quick`: tiny models, a few steps (a smoke test, not a result).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.viz import grid, panels  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
  """Unbiased squared MMD with k(a, b) = exp(−|a − b|² / (2 h²))."""
  def kernel(a, b):
    d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * bandwidth**2))
  kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
  n, m = len(x), len(y)
  return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
               + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def _common(quick: bool, steps: int) -> list[str]:
  return ["data.batch_size=32" if quick else "data.batch_size=128", "train.eval_every=0",
          "train.num_samples=0" if quick else "train.num_samples=64",
          f"train.steps={steps}", f"train.sample_every={steps}",
          f"train.checkpoint_every={steps}", f"train.log_every={max(1, steps // 60)}"]


def vae_config(quick: bool, latent_dim: int = 8, steps: int = 4000) -> ml_collections.ConfigDict:
  """The VAE: MLP, Gaussian decoder (σ = 0.1) on grey digits in [0, 1]."""
  config = jaxgen.get_config("vae")
  config_lib.apply_overrides(config, _common(quick, steps) + [
      "model.likelihood=gaussian", "model.scale=0.1", "data.binarize=none",
      f"model.latent_dim={latent_dim}"] + (["model.hidden=(32,)"] if quick else []))
  return config


def latent_config(quick: bool, autoencoder_workdir: str | pathlib.Path,
                  steps: int = 6000) -> ml_collections.ConfigDict:
  """Latent diffusion with the MLP denoiser in the VAE's code space."""
  config = jaxgen.get_config("latent_diffusion")
  config_lib.apply_overrides(config, _common(quick, steps) + [
      f"model.autoencoder_workdir={autoencoder_workdir}"]
      + (["model.hidden=32", "model.depth=1", "model.timesteps=50",
          "model.sample_steps=10"] if quick else []))
  return config


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/diffusion_latent")
  parser.add_argument("--vae-steps", type=int, default=4000)
  parser.add_argument("--steps", type=int, default=6000)
  parser.add_argument("--latent-dim", type=int, default=8)
  parser.add_argument("--num-samples", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also copy samples.png into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  args = parser.parse_args(argv)
  if args.quick:
    args.vae_steps, args.steps, args.num_samples = 3, 3, 64
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  vae_cfg = vae_config(args.quick, args.latent_dim, args.vae_steps)
  started = time.perf_counter()
  vae = jaxgen.fit(vae_cfg, workdir=out / "vae", overwrite=True)
  vae_seconds = time.perf_counter() - started
  config = latent_config(args.quick, out / "vae", args.steps)
  started = time.perf_counter()
  latent = jaxgen.fit(config, workdir=out / "latent", overwrite=True)
  latent_seconds = time.perf_counter() - started

  # Codes of the test digits, of the prior, and of the diffusion (unscaled).
  dataset = data_lib.from_config(vae_cfg.data)
  test = np.concatenate([b["x"][b["mask"] > 0] for b in
                         data_lib.eval_batches(dataset, split="test", batch_size=512)])
  test_codes = np.asarray(jax.jit(lambda s, x: vae.method.encode(s, x)[0])(vae.state, test))
  key = jax.random.PRNGKey(args.seed)
  prior_codes = np.asarray(jax.random.normal(key, (args.num_samples, args.latent_dim)))
  scale = float(latent.state.model_state["latent_scale"])
  # `sample` returns decoded images; their codes are read back with the encoder.
  images = np.asarray(jax.jit(lambda s, k: latent.method.sample(s, k, args.num_samples))(
      latent.state, key))
  codes = np.asarray(jax.jit(lambda s, x: vae.method.encode(s, x)[0])(vae.state, images))
  prior_images = np.asarray(jax.jit(lambda s, z: vae.method.decode(s, z))(
      vae.state, jnp.asarray(prior_codes)))
  recoded_prior = np.asarray(jax.jit(lambda s, x: vae.method.encode(s, x)[0])(
      vae.state, prior_images))
  train = np.concatenate([b["x"][b["mask"] > 0] for b in
                          data_lib.eval_batches(dataset, split="train", batch_size=512)])
  train_codes = np.asarray(jax.jit(lambda s, x: vae.method.encode(s, x)[0])(
      vae.state, train[:args.num_samples]))
  d = np.linalg.norm(test_codes[:, None] - test_codes[None], axis=-1)
  bandwidth = float(np.median(d[np.triu_indices(len(d), 1)]))
  # Both sample sets are compared after a decode-encode round trip, so the
  # autoencoder's own round-trip error affects them alike.
  scores = {
      "mmd2_prior_vs_test_codes": mmd2(recoded_prior, test_codes, bandwidth),
      "mmd2_latent_diffusion_vs_test_codes": mmd2(codes, test_codes, bandwidth),
      "mmd2_raw_prior_vs_test_codes": mmd2(prior_codes, test_codes, bandwidth),
      # The floor: codes of real training digits against the test codes.
      "mmd2_train_codes_vs_test_codes": mmd2(train_codes, test_codes, bandwidth),
      "bandwidth": bandwidth,
  }
  n = min(64, args.num_samples)
  value_range = latent.spec.value_range
  grid.save_image_grid(out / "vae_prior_samples.png", prior_images[:n], columns=8,
                       value_range=value_range)
  grid.save_image_grid(out / "latent_diffusion_samples.png", images[:n], columns=8,
                       value_range=value_range)
  shown = min(32, n)
  panels.save_panels(out / "samples.png", [
      (f"VAE prior N(0, I), decoded: MMD² {scores['mmd2_prior_vs_test_codes']:.4f}",
       prior_images[:shown]),
      (f"latent diffusion, decoded: MMD² {scores['mmd2_latent_diffusion_vs_test_codes']:.4f}",
       images[:shown])], columns=8, value_range=value_range)
  if args.figures:
    pathlib.Path(args.figures_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "samples.png",
                    pathlib.Path(args.figures_dir) / "latent_diffusion_samples.png")
  summary = {
      "vae_steps": args.vae_steps, "latent_steps": args.steps,
      "latent_dim": args.latent_dim, "latent_scale": scale,
      "num_samples": args.num_samples, "num_test_codes": len(test_codes),
      "scores": scores,
      "vae_test_elbo": (vae.metrics["eval"] or {}).get("elbo"),
      "latent_bound_bits_per_latent_dim":
          (latent.metrics["eval"] or {}).get("nll_bound_bits_per_dim"),
      "train_seconds": {"vae": vae_seconds, "latent_diffusion": latent_seconds},
      "quick": args.quick,
  }
  (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  print(json.dumps(scores, indent=2))
  print(f"wrote {out / 'summary.json'}")
  return summary


if __name__ == "__main__":
  main()
