"""RealNVP on 8x8 digits and on MNIST (the 10k test images): bits/dim, samples, interpolations.

  python experiments/realnvp_digits.py [--quick] [--out runs/realnvp_digits]
                                       [--datasets digits,mnist] [--evals K] [--figures]

For each dataset it trains the `realnvp` method (the multi-scale flow of
Dinh et al. 2017: checkerboard and channel-wise affine couplings with ResNet
networks, squeeze, factored-out latents, batch normalization; uniform
dequantization and the logit transform with α = 0.05, its log-Jacobian
counted) and writes to OUT/<name>/:
  samples_t1.0.png, samples_t0.7.png   64 samples at temperature 1 and 0.7
  interpolation.png                    8 test pairs, elliptic paths in z
  bits.json                            test bits/dim and nats per example
and OUT/summary.json with every number. `--evals K` evaluates on the whole
test split every steps // K steps and at the end, with a checkpoint at each:
the learning curve (`curve`: step, test bits/dim, nats) sits beside the
train-loss trend (`train_curve`: the logged window means), and a run stopped
late still leaves its numbers in OUT/<name>/run/metrics.jsonl.

Data: `digits` (scikit-learn's 1,797 8x8 images on 17 levels; 1,438 train /
359 test) and `mnist` (`idx:../shared/data/mnist-t10k`: MNIST's 10,000 *test*
images, which jaxgen splits once and for all into 8,000 training and 2,000
test images, stratified, fixed seed — as benchmarks/vae_mnist_nll.py does).
Both are 8-bit-like grey levels, dequantized on the device with one uniform
draw per value per step (training) and per example (evaluation, from its
index). The numbers are bits/dim of the dequantized data in integer units,
which bound the discrete −log₂ P(x)/D (Theis et al. 2016), on the whole test
split. `--quick`: tiny models, a few steps, MNIST resized to 8x8 — a smoke
test of the script, not a result. `--figures` also writes small copies to
docs/figures/ (realnvp_<name>_samples.png, _temperature.png: one column per
temperature 0, 0.25, 0.5, 0.7, 0.85, 1 with the same noise in a row,
_interpolation.png) and the summary to benchmarks/results/realnvp_digits.json.
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

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families import realnvp  # noqa: E402
from jaxgen.viz import grid, latent  # noqa: E402

FIGURES = pathlib.Path(REPO).resolve() / "docs" / "figures"
RESULTS = pathlib.Path(REPO).resolve() / "benchmarks" / "results" / "realnvp_digits.json"
TEMPERATURES = (0.0, 0.25, 0.5, 0.7, 0.85, 1.0)
MNIST = "idx:" + os.path.normpath(os.path.join(REPO, "..", "shared", "data", "mnist-t10k"))
DATASETS = {"digits": "digits", "mnist": MNIST}


def config_for(name: str, args: argparse.Namespace):
  """The experiment's config for one dataset."""
  config = jaxgen.get_config("realnvp", DATASETS[name])
  steps = args.steps if name == "digits" else args.mnist_steps
  every = steps // args.evals if args.evals > 1 else 0  # 0: only the final evaluation
  overrides = [f"train.steps={steps}", f"train.eval_every={every}", "train.num_samples=0",
               f"train.checkpoint_every={every or steps}",
               f"train.log_every={max(1, steps // 50)}",
               f"train.seed={args.seed}", f"data.batch_size={args.batch_size}",
               f"model.features={args.features}", f"model.blocks={args.blocks}",
               f"model.normalization={args.normalization}",
               f"train.progress={not args.quick}"]
  if name == "mnist":
    overrides.append(f"model.num_scales={1 if args.quick else 3}")
  if args.quick:
    overrides += ["model.features=4", "model.blocks=0", "data.batch_size=16"]
    if name == "mnist":
      overrides += ["data.image_size=8", "data.max_examples=64"]
  config_lib.apply_overrides(config, overrides)
  return config


def run_one(name: str, args: argparse.Namespace, out: pathlib.Path) -> dict:
  """Trains on one dataset, writes its figures, returns its summary entry."""
  config = config_for(name, args)
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=out / name / "run", overwrite=True)
  seconds = time.perf_counter() - started
  method, state = result.method, result.state
  key = jax.random.PRNGKey(args.seed)
  draw = jax.jit(lambda s, k, t: method.sample(s, k, 64, temperature=t))
  by_temperature = {t: np.asarray(draw(state, key, t)) for t in TEMPERATURES}
  for temperature in (1.0, 0.7):
    grid.save_image_grid(out / name / f"samples_t{temperature}.png",
                         by_temperature[temperature], columns=8)
  test = next(data_lib.eval_batches(data_lib.from_config(config.data), split="test",
                                    batch_size=16))
  path = realnvp.interpolate(realnvp.model_of(method), state, test["x"][:8],
                             test["x"][8:16], 8, path="elliptic")
  latent.save_rows(out / name / "interpolation.png", np.asarray(path))
  if args.figures:
    # The same key at every temperature: a row is one noise vector, scaled.
    rows = np.stack([by_temperature[t][:6] for t in TEMPERATURES], axis=1)
    scale = 4 if name == "digits" else 2
    grid.save_image_grid(FIGURES / f"realnvp_{name}_samples.png", by_temperature[0.7],
                         columns=8, scale=scale)
    latent.save_rows(FIGURES / f"realnvp_{name}_temperature.png", rows)
    latent.save_rows(FIGURES / f"realnvp_{name}_interpolation.png", np.asarray(path))
  evaluation = result.metrics["eval"] or {}
  # The data as the docs write it (relative to the repository root), never this
  # machine's absolute path.
  recorded = "idx:../shared/data/mnist-t10k" if name == "mnist" else DATASETS[name]
  entry = {"data": recorded, "steps": config.train.steps, "train_seconds": seconds,
           "epochs": config.train.steps * config.data.batch_size / result.spec.num_train,
           "test_bits_per_dim": evaluation.get("bits_per_dim"),
           "test_nll_nats": evaluation.get("nll"),
           "num_test": result.spec.num_test, "shape": list(result.spec.shape),
           **curves(result.history)}
  (out / name / "bits.json").write_text(json.dumps(entry, indent=2, default=float) + "\n")
  return entry


def curves(history: list[dict]) -> dict:
  """The test evaluations and the train-loss window means of a run's metrics.jsonl."""
  test = [{"step": r["step"], "test_bits_per_dim": r["bits_per_dim"], "test_nll_nats": r["nll"]}
          for r in history if r.get("split") == "test"]
  train = [{"step": r["step"], "loss": r["loss"], "bits_per_dim": r["bits_per_dim"],
            "seconds": r["time"]} for r in history if r.get("split") == "train" and "loss" in r]
  return {"curve": test, "train_curve": train}


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/realnvp_digits")
  parser.add_argument("--datasets", default="digits,mnist")
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--mnist-steps", type=int, default=20000)
  parser.add_argument("--batch-size", type=int, default=64)   # Dinh et al.: 64
  parser.add_argument("--features", type=int, default=32)
  parser.add_argument("--blocks", type=int, default=4)
  parser.add_argument("--normalization", default="batch")
  parser.add_argument("--evals", type=int, default=1,
                      help="test-split evaluations along the run, evenly spaced (1: at the end)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also write docs/figures/ PNGs and benchmarks/results/ JSON")
  args = parser.parse_args(argv)
  if args.quick:
    args.steps = args.mnist_steps = 3
  if args.evals < 1:
    parser.error(f"--evals must be at least 1, got {args.evals}")
  names = args.datasets.split(",")
  unknown = set(names) - set(DATASETS)
  if unknown:
    parser.error(f"unknown datasets {sorted(unknown)}; valid: {', '.join(DATASETS)}")
  out = pathlib.Path(args.out)
  summary: dict = {"quick": args.quick, "protocol": {
      "model": f"realnvp multiscale, ResNet {args.blocks} blocks x {args.features}, "
               f"{args.normalization} normalization",
      "optimizer": f"adam 1e-3, batch {args.batch_size}, L2 5e-5", "seed": args.seed,
      "units": "bits/dim of the dequantized data in integer units (whole test split)"},
      "datasets": {}}
  for name in names:
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
