"""pix2pix on digits: edges -> digit and masked -> completed digit, against the L1-only generator.

Run:  python experiments/pix2pix_digits.py [--quick] [--out runs/pix2pix_digits]
          [--data digits|mnist] [--steps N] [--seeds 0,1] [--figures]

For each task (data.pair = 'edges': the Sobel edge map of the digit;
'masked': its bottom half replaced by mid-grey) trains `pix2pix` (U-Net G with
dropout noise, PatchGAN D, adversarial + 100·L1; Isola et al. 2017) and the
paper's ablation, the L1-only generator (model.adversarial_weight=0), with the
same seeds, steps and data, and measures on the whole test split (digits: the
fixed 1,438/359 split; MNIST: the fixed 8,000/2,000 split of the t10k file):

  l1                  mean |G(source) - x| per pixel, data in [-1, 1] (the
                      engine's exact per-example evaluation, dropout on)
  classifier_accuracy the shipped LeNet's accuracy on G(source) against the
                      target's label (jaxgen.metrics.lenet)
  fid_lenet           FID of LeNet features of G(source) against the targets'
  dropout_std         per-pixel std over 8 dropout draws of G(source), averaged
                      (the paper reports that dropout gives little variety)

plus the same numbers for the inputs themselves (the sources as outputs) and
the targets (the classifier's ceiling). Writes results.json / results.md and
grid_<task>.png (rows: input, L1-only, pix2pix, target; 12 test digits) under
--out; with --figures also docs/figures/pix2pix_<data>_<task>.png and
benchmarks/results/pix2pix_<data>.json.
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.metrics import fid as fid_lib  # noqa: E402
from jaxgen.metrics import lenet  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST = "idx:../shared/data/mnist-t10k"
TASKS = ("edges", "masked")
VARIANTS = {"pix2pix": 1.0, "l1_only": 0.0}   # model.adversarial_weight


def test_arrays(config) -> dict[str, np.ndarray]:
  """The test split's sources, targets and labels, in the fixed order."""
  dataset = data_lib.from_config(config.data)
  parts: dict[str, list[np.ndarray]] = {"source": [], "x": [], "label": []}
  for batch in data_lib.eval_batches(dataset, "test", batch_size=500):
    keep = batch["mask"] > 0
    for key in parts:
      parts[key].append(batch[key][keep])
  return {k: np.concatenate(v) for k, v in parts.items()}


def image_metrics(images, test, classifier, value_range, reference_features):
  """Test-split metrics of one set of output images (aligned with `test`)."""
  out = lenet.outputs(classifier, images, value_range=value_range)
  return {"l1": float(np.mean(np.abs(images - test["x"]))),
          "classifier_accuracy": float(np.mean(out["logits"].argmax(-1) == test["label"])),
          "fid_lenet": float(fid_lib.fid_from_features(out["features"], reference_features))}


def run_one(config, test, classifier, reference_features, seed, quick):
  """Trains one (task, variant, seed) and measures it on the test split."""
  config.train.seed = seed
  started = time.perf_counter()
  result = jaxgen.fit(config)
  seconds = time.perf_counter() - started
  method, state, spec = result.method, result.state, result.spec
  num = len(test["x"])
  translate = jax.jit(lambda s, k, src: method.sample(s, k, num, source=src))
  outputs = np.asarray(translate(state, jax.random.PRNGKey(100 + seed), test["source"]))
  draws = np.stack([np.asarray(translate(state, jax.random.PRNGKey(200 + d), test["source"]))
                    for d in range(2 if quick else 8)])
  record = image_metrics(outputs, test, classifier, spec.value_range, reference_features)
  engine_eval = result.metrics["eval"] or {}
  record.update(engine_l1=float(engine_eval["l1"]),
                engine_classifier_accuracy=float(engine_eval["classifier_accuracy"]),
                dropout_std=float(draws.std(0).mean()), train_seconds=seconds,
                train_l1_last=float(result.metrics["train"]["l1"]))
  return record, outputs


def summary(values):
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1
          else 0.0, "per_seed": values.tolist()}


def make_config(args, task, weight, steps):
  config = jaxgen.get_config("pix2pix", MNIST if args.data == "mnist" else "digits")
  overrides = ["train.progress=False", "train.checkpoint_every=0", "train.sample_every=0",
               "train.eval_every=0", "train.num_samples=0", "train.log_every=100",
               f"data.pair={task}", f"model.adversarial_weight={weight}"]
  if args.quick:
    overrides += ["model.generator_channels=(8, 8, 8)", "model.discriminator_channels=(8, 8)",
                  "data.batch_size=16", "train.log_every=1"]
  config_lib.apply_overrides(config, overrides)
  config.train.steps = steps
  return config


def write_grid(path, test, outputs, value_range, count=12):
  rows = [test["source"][:count], outputs["l1_only"][:count], outputs["pix2pix"][:count],
          test["x"][:count]]
  return grid.save_image_grid(path, np.concatenate(rows), columns=count,
                              value_range=value_range, scale=4 if rows[0].shape[1] > 16 else 8)


def markdown(report) -> str:
  lines = [f"# pix2pix on {report['dataset']} ({report['steps']} steps, seeds "
           f"{report['seeds']})", "",
           "| task | outputs | test L1 ↓ | LeNet accuracy ↑ | FID-LeNet ↓ | dropout std |",
           "|---|---|---|---|---|---|"]
  for task, rows in report["tasks"].items():
    for name, row in rows.items():
      def cell(key):
        value = row.get(key)
        if isinstance(value, dict):
          return f"{value['mean']:.3f} ± {value['std']:.3f}"
        return "—" if value is None else f"{value:.3f}"
      lines.append(f"| {task} | {name} | {cell('l1')} | {cell('classifier_accuracy')} | "
                   f"{cell('fid_lenet')} | {cell('dropout_std')} |")
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/pix2pix_digits")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--data", default="digits", choices=("digits", "mnist"))
  parser.add_argument("--steps", type=int, default=0, help="default 3000 (quick: 3)")
  parser.add_argument("--seeds", default="", help="default 0,1 (quick: 0)")
  parser.add_argument("--tasks", default=",".join(TASKS))
  parser.add_argument("--figures", action="store_true",
                      help="also write docs/figures/ and benchmarks/results/")
  args = parser.parse_args(argv)
  # Every (task, seed) run compiles the same programs: keep them on disk (as the CLI does).
  from jaxgen import _compile_cache  # pylint: disable=import-outside-toplevel
  _compile_cache.enable()
  out = pathlib.Path(args.out)
  steps = args.steps or (3 if args.quick else 3000)
  seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1")).split(",")]
  classifier = lenet.load("mnist" if args.data == "mnist" else "digits")
  report = {"dataset": MNIST if args.data == "mnist" else "digits", "steps": steps,
            "seeds": seeds, "classifier": classifier.network,
            "split": ("fixed 8,000/2,000 split of MNIST's t10k file" if args.data == "mnist"
                      else "fixed 1,438/359 split of sklearn digits"), "tasks": {}}
  for task in args.tasks.split(","):
    base = make_config(args, task, 1.0, steps)
    test = test_arrays(base)
    value_range = tuple(base_spec_range(base))
    reference = lenet.features(classifier, test["x"], value_range=value_range)
    rows = {"input": image_metrics(test["source"], test, classifier, value_range, reference),
            "target": image_metrics(test["x"], test, classifier, value_range, reference)}
    first_outputs = {}
    for variant, weight in VARIANTS.items():
      records = []
      for seed in seeds:
        record, outputs = run_one(make_config(args, task, weight, steps), test, classifier,
                                  reference, seed, args.quick)
        records.append(record)
        first_outputs.setdefault(variant, outputs)
        print(f"{task} {variant} seed {seed}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in record.items()), flush=True)
      rows[variant] = {k: summary([r[k] for r in records]) for k in records[0]}
    report["tasks"][task] = rows
    write_grid(out / f"grid_{task}.png", test, first_outputs, value_range)
    if args.figures:
      write_grid(ROOT / "docs" / "figures" / f"pix2pix_{args.data}_{task}.png", test,
                 first_outputs, value_range)
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  (out / "results.md").write_text(markdown(report))
  if args.figures:
    (ROOT / "benchmarks" / "results" / f"pix2pix_{args.data}.json").write_text(
        json.dumps(report, indent=2) + "\n")
  print(markdown(report))
  return report


def base_spec_range(config) -> tuple[float, float]:
  """The value range of the data as the run sees it (data.scale='symmetric': [-1, 1])."""
  return data_lib.from_config(config.data).spec.value_range


if __name__ == "__main__":
  main()
