"""DDPM on 2-D toy mixtures: density plots of samples against the data.

  python experiments/diffusion_toy2d.py [--quick] [--out runs/diffusion_toy2d]
      [--datasets ring8,grid25,...] [--figures]

Trains the `ddpm` method with the MLP denoiser on each dataset in --datasets
and writes OUT/<dataset>/density.png: 2-D histograms (log density) of the
test data, of DDIM-50 samples and of 1000-step ancestral DDPM samples, on the
same bins. summary.json holds, per dataset and sampler, the mode coverage of
the samples (modes with ≥ 20 samples within 3σ; Lin et al. 2018), the share
of such high-quality samples, and the bound in nats per example on the test
split (all T terms; a density of the continuous data, in its own units).
`--figures` also copies each density.png into docs/figures/ (`--figures-dir`)
as ddpm_toy2d_<dataset>.png, with a palette (tens of KB).
`--quick`: one dataset, a tiny model, a few steps (a smoke test, not a result).
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
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.metrics import mode_coverage  # noqa: E402
from jaxgen.viz import panels as panels_lib  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def density_plot(path: pathlib.Path, panels: dict[str, np.ndarray], title: str) -> None:
  """Side-by-side log-density histograms on shared bins."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from matplotlib.colors import LogNorm  # pylint: disable=import-outside-toplevel
  reference = next(iter(panels.values()))
  lo, hi = reference.min(0), reference.max(0)
  pad = 0.15 * (hi - lo)
  bins = [np.linspace(lo[i] - pad[i], hi[i] + pad[i], 120) for i in range(2)]
  fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), dpi=110)
  for ax, (name, points) in zip(np.atleast_1d(axes), panels.items()):
    ax.hist2d(points[:, 0], points[:, 1], bins=bins, norm=LogNorm(), cmap="viridis")
    ax.set_title(f"{name} (n={len(points)})", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/diffusion_toy2d")
  parser.add_argument("--datasets", default="ring8,grid25,swissroll,checkerboard")
  parser.add_argument("--steps", type=int, default=10000)
  parser.add_argument("--num-samples", type=int, default=10000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also copy each density.png into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  args = parser.parse_args(argv)
  if args.quick:
    args.datasets, args.steps, args.num_samples = "ring8", 3, 500
  out = pathlib.Path(args.out)
  summary: dict = {"quick": args.quick, "steps": args.steps, "datasets": {}}
  for name in args.datasets.split(","):
    data = f"toy2d:{name}"
    config = jaxgen.get_config("ddpm", data)
    overrides = [f"train.steps={args.steps}", "train.eval_every=0",
                 f"train.sample_every={args.steps}", f"train.checkpoint_every={args.steps}",
                 f"train.log_every={max(1, args.steps // 50)}", "data.batch_size=256"]
    if args.quick:
      overrides += ["model.hidden=32", "model.depth=1", "model.timesteps=50",
                    "model.sample_steps=10", "data.batch_size=64", "data.num_examples=2000",
                    "train.coverage_samples=200"]
    config_lib.apply_overrides(config, overrides)
    started = time.perf_counter()
    result = jaxgen.fit(config, workdir=out / name / "run", overwrite=True)
    seconds = time.perf_counter() - started
    spec = result.spec
    dataset = data_lib.from_config(config.data)
    test = np.concatenate([b["x"][b["mask"] > 0] for b in data_lib.eval_batches(
        dataset, split="test", batch_size=min(args.num_samples, spec.num_test))])
    test = test[:args.num_samples]
    key = jax.random.PRNGKey(args.seed)
    timesteps = config.model.timesteps
    ddim = jax.jit(lambda s, k: result.method.sample(  # noqa: B023
        s, k, args.num_samples, sampler="ddim", steps=min(50, timesteps)))
    samples = {
        "DDIM 50": np.asarray(ddim(result.state, key)),
        # Eagerly: compiled chunks with a progress bar over the T steps.
        f"DDPM {timesteps}": np.asarray(result.method.sample(
            result.state, key, args.num_samples, sampler="ddpm", steps=timesteps,
            progress=not args.quick)),
    }
    density_plot(out / name / "density.png", {"data (test)": test, **samples},
                 f"DDPM on {data}, {args.steps} steps")
    if args.figures:
      figure = pathlib.Path(args.figures_dir) / f"ddpm_toy2d_{name}.png"
      figure.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(out / name / "density.png", figure)
      panels_lib.shrink_png(figure)
    entry = {"train_seconds": seconds,
             "bound_nats_per_example": None, "bound_bits_per_dim": None}
    evaluation = result.metrics["eval"] or {}
    if "nll_bound_bits_per_dim" in evaluation:
      entry["bound_bits_per_dim"] = evaluation["nll_bound_bits_per_dim"]
      entry["bound_nats_per_example"] = evaluation["nll_bound_bits_per_dim"] * 2 * np.log(2)
    if spec.modes is not None:
      for label, points in samples.items():
        coverage = mode_coverage(points, spec.modes, spec.mode_std)
        entry[label] = {k: np.asarray(v).tolist() for k, v in coverage.items()}
    summary["datasets"][name] = entry
    print(name, json.dumps(entry, default=float), flush=True)
  out.mkdir(parents=True, exist_ok=True)
  (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
  print(f"wrote {out / 'summary.json'}")
  return summary


if __name__ == "__main__":
  main()
