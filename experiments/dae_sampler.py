"""The denoising autoencoder as a generative model (Bengio et al. 2013): Markov-chain
samples on digits and ring8, and mode coverage of the chain against the code-moment sampler.

Run:  python experiments/dae_sampler.py [--quick] [--out runs/dae_sampler] [--figures]

Protocol:
* ring8 (`toy2d:ring8`: 8 Gaussians, std 0.02, radius 2; 10,000 training
  points, generate_seed 0): `dae` with an MLP (128, 128), code size 2, squared
  error, Gaussian corruption of std `noise` (0.1 and 0.3), batch 256, Adam
  1e-3 with cosine decay (a constant rate leaves r(x~) biased by the last
  steps' noise, and the chain amplifies a bias), 3,000 steps, 3 seeds trained in one program (`train.seeds`); once
  plain, once with walk-back (`model.walkback_steps=3`, continue probability
  0.5). The chain's reconstruction distribution is N(r(x~), s² I), s² the
  running mean squared denoising error (its ML estimate).
* Samplers, 2,500 samples per seed: `code_moments` (decode codes drawn from a
  Gaussian fitted to the training codes); `chain` with one chain per sample
  started from uniform noise over the data's range, kept after 200
  transitions ("independent"); and 10 chains of 250 samples each, 200
  transitions of burn-in, then every 10th ("10 long chains": shows mixing).
* Mode coverage: PacGAN/VEEGAN's protocol (`jaxgen.metrics.mode_coverage`): a
  sample is high quality within 3 std (0.06) of its nearest mode; a mode is
  covered with at least 20 high-quality samples. Mean ± std over the 3 seeds.
* digits (8x8, grey in [0, 1]): the default `dae` (MLP (256, 128), code 32,
  cross-entropy, masking noise 0.25), 3,000 steps, batch 128, seed 0; 8 chains
  of the chain sampler (start: noise, burn-in 1, then every 5th transition,
  shown as E[X | x~] of the kept transition), beside code-moment samples.

Writes results.json, results.md, ring8.png and digits_chains.png to --out;
with --figures also small copies in docs/figures/ (dae_ring8.png,
dae_digits_chains.png), the ones docs/autoencoders.md shows.
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
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import registry, viz  # noqa: E402
from jaxgen.metrics.mode_coverage import mode_coverage  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
SAMPLERS = {   # name: sampling-time overrides
    "code moments": ["model.sampler=code_moments"],
    "chain, independent": ["model.sampler=chain", "model.chain_burn_in=200",
                           "model.chain_count=0"],
    "chain, 10 long chains": ["model.sampler=chain", "model.chain_burn_in=200",
                              "model.chain_thinning=10", "model.chain_count=10"],
}


def ring_config(noise: float, walkback: int, steps: int, seeds: int):
  config = jaxgen.get_config("dae", "toy2d:ring8")
  config_lib.apply_overrides(config, [
      "model.hidden=(128, 128)", "model.code_dim=2", "model.loss=mse",
      "model.corruption=gaussian", f"model.noise_std={noise}",
      f"model.walkback_steps={walkback}", "model.walkback_probability=0.5",
      "data.batch_size=256", "optim.learning_rate=0.001", "optim.schedule=cosine",
      "train.progress=False",
      "train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0",
      "train.final_eval=False", "train.num_samples=0", f"train.log_every={steps}"])
  config.train.steps = steps
  config.train.seeds = tuple(range(seeds))
  return config


def sampler_fn(config, spec, overrides: list[str], num: int):
  """A jitted `sample(state, key)` of the method rebuilt with sampling-time overrides."""
  config = config_lib.from_dict(config_lib.to_dict(config))
  config_lib.apply_overrides(config, overrides)
  method = registry.get("dae").make(config, spec)
  return jax.jit(lambda state, key: method.sample(state, key, num))


def ring_study(noise: float, walkback: int, steps: int, seeds: int, num: int) -> dict:
  """Trains `seeds` replicas, samples each with every sampler, counts modes."""
  config = ring_config(noise, walkback, steps, seeds)
  result = jaxgen.fit(config)
  spec = result.spec
  rows, examples = {}, {}
  for name, overrides in SAMPLERS.items():
    if walkback and name == "code moments":
      continue   # walk-back changes only what the chain sees
    fn = sampler_fn(config, spec, overrides, num)
    covered, quality = [], []
    for replica in range(seeds):
      state = jax.tree.map(lambda v: v[replica], result.state)  # noqa: B023
      samples = np.asarray(fn(state, jax.random.PRNGKey(100 + replica)))
      coverage = mode_coverage(samples, spec.modes, spec.mode_std)
      covered.append(coverage["modes_covered"])
      quality.append(coverage["high_quality_share"])
      if replica == 0:
        examples[name] = samples
    rows[name] = {"modes_covered": covered, "high_quality_share": quality,
                  "modes_mean": float(np.mean(covered)), "modes_std": float(np.std(covered)),
                  "quality_mean": float(np.mean(quality)),
                  "quality_std": float(np.std(quality))}
  noise_std = np.sqrt(np.asarray(result.state.model_state["reconstruction_mse"]))
  return {"noise": noise, "walkback_steps": walkback, "samplers": rows,
          "reconstruction_std": noise_std.tolist(), "examples": examples}


def plot_ring(path: pathlib.Path, studies: list[dict], reference: np.ndarray,
              modes: np.ndarray) -> None:
  panels = [(s, name) for s in studies for name in s["examples"]]
  columns = 3
  rows = -(-len(panels) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
  for ax in axes.flat:
    ax.set_axis_off()
  for ax, (study, name) in zip(axes.flat, panels):
    samples = study["examples"][name]
    ax.set_axis_on()
    ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.75")
    if name.startswith("chain, 10"):
      # Each chain's kept samples in order: does it move between modes?
      for chain in samples.reshape(10, -1, 2)[:4]:
        ax.plot(chain[:, 0], chain[:, 1], lw=0.4, alpha=0.8)
    else:
      ax.scatter(samples[:, 0], samples[:, 1], s=1, c="tab:blue", alpha=0.5)
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="tab:red", s=12)
    walk = ", walk-back" if study["walkback_steps"] else ""
    ax.set_title(f"noise {study['noise']:g}{walk}\n{name}", fontsize=7)
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(-2.6, 2.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(path, dpi=70)
  plt.close(fig)


def digits_chains(path: pathlib.Path, steps: int) -> dict:
  """Trains the default dae on digits; writes 8 chains (rows) beside code-moment samples."""
  config = jaxgen.get_config("dae", "digits")
  config_lib.apply_overrides(config, [
      "train.progress=False", "train.eval_every=0", "train.sample_every=0",
      "train.checkpoint_every=0", "train.num_samples=0", "train.final_eval=True"])
  config.train.steps = steps
  result = jaxgen.fit(config)
  chains, per_chain = 8, 10
  chain = sampler_fn(config, result.spec, [
      "model.sampler=chain", "model.chain_burn_in=1", "model.chain_thinning=5",
      f"model.chain_count={chains}", "model.chain_output=mean"], chains * per_chain)
  moments = sampler_fn(config, result.spec, ["model.sampler=code_moments"], per_chain)
  images = np.concatenate([np.asarray(chain(result.state, jax.random.PRNGKey(0))),
                           np.asarray(moments(result.state, jax.random.PRNGKey(1)))])
  viz.save_image_grid(path, images.reshape((-1,) + tuple(result.spec.shape)),
                      columns=per_chain, scale=4)
  return {"test_mse": result.metrics["eval"]["mse"],
          "test_denoising_mse": result.metrics["eval"]["denoising_mse"],
          "chains": chains, "samples_per_chain": per_chain}



def markdown(report: dict) -> str:
  lines = [f"ring8: {report['seeds']} seeds, {report['num_samples']} samples per seed and "
           "sampler; modes covered (of 8) and high-quality share, mean ± std over seeds.", "",
           "| corruption std | training | sampler | modes covered | high-quality share |",
           "|---:|---|---|---:|---:|"]
  for study in report["ring8"]:
    training = "walk-back (3, p = 0.5)" if study["walkback_steps"] else "plain"
    for name, row in study["samplers"].items():
      lines.append(f"| {study['noise']:g} | {training} | {name} | "
                   f"{row['modes_mean']:.1f} ± {row['modes_std']:.1f} | "
                   f"{row['quality_mean']:.2f} ± {row['quality_std']:.2f} |")
  digits = report["digits"]
  lines += ["", f"digits: test mse {digits['test_mse']:.4f}, denoising mse "
                f"{digits['test_denoising_mse']:.4f}"]
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny: 60 steps, 2 seeds")
  parser.add_argument("--out", default="runs/dae_sampler")
  parser.add_argument("--figures", action="store_true",
                      help="also copy the figures into docs/figures/")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  steps, seeds, num = (60, 2, 500) if args.quick else (3000, 3, 2500)
  noises = (0.1,) if args.quick else (0.1, 0.3)
  started = time.perf_counter()
  studies = []
  for noise, walkback in tqdm([(n, w) for n in noises for w in (0, 3)], desc="ring8 studies"):
    studies.append(ring_study(noise, walkback, steps, seeds, num))
  dataset = data_lib.from_config(jaxgen.get_config("dae", "toy2d:ring8").data)
  reference, _ = data_lib.eval_arrays(dataset, "test")
  plot_ring(out / "ring8.png", studies, reference, dataset.spec.modes)
  digits = digits_chains(out / "digits_chains.png", steps)
  report = {"quick": args.quick, "steps": steps, "seeds": seeds, "num_samples": num,
            "ring8": [{k: v for k, v in s.items() if k != "examples"} for s in studies],
            "digits": digits, "seconds": time.perf_counter() - started}
  (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  (out / "results.md").write_text(markdown(report))
  if args.figures:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in ("ring8", "digits_chains"):
      shutil.copy(out / f"{name}.png", FIGURES / f"dae_{name}.png")
      shrink_png(FIGURES / f"dae_{name}.png")
  print(markdown(report))
  return report


if __name__ == "__main__":
  main()
