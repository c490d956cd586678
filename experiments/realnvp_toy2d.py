"""RealNVP on 2-D toy data: the exact density beside the data and samples.

  python experiments/realnvp_toy2d.py [--quick] [--out runs/realnvp_toy2d]
                                      [--datasets ring8,grid25,moons,checkerboard]
                                      [--figures]

Trains the `realnvp` method (MLP couplings, alternating masks, batch
normalization; `--couplings`, `--hidden`) on each dataset and writes
OUT/<dataset>/density.png: the model's exact density on a 300×300 grid over
the data's range (with a margin), a 2-D histogram of the test data, and one of
the model's samples. OUT/summary.json holds per dataset the test NLL in nats
per example (an exact density of the continuous data, in the data's units,
averaged over the 10,000 test points), the same in bits/dim, the grid's
quadrature of the density (≈ 1: the box holds the mass), mode coverage for
ring8/grid25 (modes with ≥ 20 of 2,500 samples within 3σ; Lin et al. 2018),
the steps and the training time. `--quick`: one dataset, a tiny model, a few
steps (a smoke test, not a result). `--figures` also writes a small copy of
each figure to docs/figures/realnvp_toy2d_<dataset>.png and the summary to
benchmarks/results/realnvp_toy2d.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families import realnvp  # noqa: E402
from jaxgen.families.realnvp import plots  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
RESULTS = REPO / "benchmarks" / "results" / "realnvp_toy2d.json"


def config_for(name: str, args: argparse.Namespace):
  """The experiment's config for toy2d:<name>."""
  config = jaxgen.get_config("realnvp", f"toy2d:{name}")
  overrides = [f"train.steps={args.steps}", "train.eval_every=0", "train.num_samples=0",
               f"train.checkpoint_every={args.steps}",
               f"train.log_every={max(1, args.steps // 50)}",
               f"train.seed={args.seed}", f"data.batch_size={args.batch_size}",
               f"model.couplings={args.couplings}", f"model.hidden={args.hidden}",
               f"optim.learning_rate={args.learning_rate}", "optim.schedule=cosine",
               f"train.progress={not args.quick}"]
  if args.quick:
    overrides += ["data.num_examples=2000", "train.coverage_samples=200"]
  config_lib.apply_overrides(config, overrides)
  return config


def run_one(name: str, args: argparse.Namespace, out: pathlib.Path) -> dict:
  """Trains on one dataset, writes its density figure, returns its summary entry."""
  config = config_for(name, args)
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=out / name / "run", overwrite=True)
  seconds = time.perf_counter() - started
  spec = result.spec
  dataset = data_lib.from_config(config.data)
  test = np.concatenate([b["x"][b["mask"] > 0] for b in data_lib.eval_batches(
      dataset, split="test", batch_size=min(args.num_samples, spec.num_test))])
  test = test[:args.num_samples]
  low, high = spec.value_range
  margin = 0.25 * (high - low)
  grid = plots.density_grid(realnvp.model_of(result.method), result.state,
                            low=(low - margin,) * 2, high=(high + margin,) * 2,
                            points=args.grid)
  samples = np.asarray(jax.jit(lambda s, k: result.method.sample(  # noqa: B023
      s, k, args.num_samples))(result.state, jax.random.PRNGKey(args.seed)))
  title = f"RealNVP on toy2d:{name}, {args.steps} steps"
  plots.density_figure(out / name / "density.png", grid, data=test, samples=samples,
                       title=title)
  if args.figures:
    FIGURES.mkdir(parents=True, exist_ok=True)
    plots.density_figure(FIGURES / f"realnvp_toy2d_{name}.png", grid, data=test,
                         samples=samples, title=title, dpi=60)
  evaluation = result.metrics["eval"] or {}
  entry = {"steps": args.steps, "train_seconds": seconds,
           "test_nll_nats": evaluation.get("nll"),
           "test_bits_per_dim": evaluation.get("bits_per_dim"),
           "grid_mass": grid.mass,
           "grid": {"low": low - margin, "high": high + margin, "points": args.grid}}
  for key in ("modes_covered", "high_quality_share"):
    if key in evaluation:
      entry[key] = evaluation[key]
  return entry


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/realnvp_toy2d")
  parser.add_argument("--datasets", default="ring8,grid25,moons,checkerboard")
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--couplings", type=int, default=8)
  parser.add_argument("--hidden", default="(256, 256)")
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--num-samples", type=int, default=10000)
  parser.add_argument("--grid", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also write docs/figures/ PNGs and benchmarks/results/ JSON")
  args = parser.parse_args(argv)
  if args.quick:
    args.datasets, args.steps, args.num_samples, args.grid = "moons", 3, 500, 60
    args.couplings, args.hidden, args.batch_size = 2, "(16,)", 64
  out = pathlib.Path(args.out)
  summary: dict = {"quick": args.quick, "protocol": {
      "model": f"realnvp, MLP couplings x{args.couplings}, hidden {args.hidden}, batch norm",
      "optimizer": f"adam {args.learning_rate:g}, cosine decay, batch {args.batch_size}",
      "seed": args.seed}, "datasets": {}}
  for name in args.datasets.split(","):
    summary["datasets"][name] = entry = run_one(name, args, out)
    entry["protocol"] = summary["protocol"]  # per dataset: runs are merged by --figures
    print(name, json.dumps(entry, default=float), flush=True)
  out.mkdir(parents=True, exist_ok=True)
  (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
  print(f"wrote {out / 'summary.json'}")
  if args.figures:
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update({k: v for k, v in summary.items() if k != "datasets"})
    merged.setdefault("datasets", {}).update(summary["datasets"])
    merged["machine"] = {"cpus": os.cpu_count(), "backend": jax.default_backend(),
                         "load_average_1min_end": os.getloadavg()[0]}
    RESULTS.write_text(json.dumps(merged, indent=2, default=float) + "\n")
  return summary


if __name__ == "__main__":
  main()
