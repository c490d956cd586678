"""FID-LeNet, KID, IS and precision/recall of a DCGAN, a DDPM and a VAE on digits.

Run:  nice -n 10 python experiments/sample_metrics_digits.py [--out runs/sample_metrics]
          [--num 1000] [--gan-steps 1500] [--ddpm-steps 300] [--vae-steps 5000]
          [--ddpm-sample-steps 20] [--reuse]
          [--figures] [--quick]

Trains each model on sklearn digits (the fixed 1,438/359 split) with the
settings of its own experiment script (gan_dcgan_digits.py, diffusion_digits.py,
vae_digits.py), shortened to the step counts above, then evaluates it with
`jaxgen.evaluate(run, metrics="fid,kid,is,pr", num=N, seed=0)`: N samples
against the 1,438 training images through the shipped digits LeNet
(`lenet_digits`). The DDPM samples with DDIM in 20 steps (`model.sample_steps=20`):
a budget for a loaded 2-core CPU, as are the short trainings.
A "real test images" row compares the 359 held-out digits with the same
reference (FID and KID grow as the sample shrinks, so it is a floor at N=359,
not at N). Writes OUT/results.json and OUT/results.md, and with --figures
docs/figures/sample_metrics_digits.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
import time


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jaxgen  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen import config as config_lib  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen import data as data_lib  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen.metrics import sample_metrics  # noqa: E402 pylint: disable=wrong-import-position


METRICS = "fid,kid,is,pr"
FIGURE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "figures" / \
    "sample_metrics_digits.png"


def load_experiment(name: str):
  """Another experiment script (experiments/NAME.py) as a module: its configs."""
  path = pathlib.Path(__file__).resolve().parent / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


def configs(args) -> dict[str, tuple[object, dict[str, list[str]]]]:
  """{model: (training config, {row name: evaluation-time overrides})}."""
  gan = load_experiment("gan_dcgan_digits").train_config("digits", args.gan_steps, args.quick)
  gan.train.sample_every = 0
  ddpm = load_experiment("diffusion_digits").get_config("digits", args.quick,
                                                        args.ddpm_steps)
  vae = load_experiment("vae_digits").get_config()
  config_lib.apply_overrides(vae, [f"train.steps={args.vae_steps}", "train.eval_every=0",
                                   "train.final_eval=False"])
  for config in (gan, ddpm, vae):
    config.train.progress = not args.quick
  # The VAE models dynamically binarized digits, so its reference split is
  # binarized too: its Bernoulli draws are its samples; the decoder means
  # (grey) are shown for comparison.
  ddim = args.ddpm_sample_steps
  return {"dcgan": (gan, {"dcgan": []}),
          "ddpm": (ddpm, {f"ddpm (ddim {ddim})": [f"model.sample_steps={ddim}"]}),
          "vae": (vae, {"vae (Bernoulli draws)": ["model.sample_mode=sample"],
                        "vae (decoder means)": ["model.sample_mode=mean"]})}


def _trained(workdir: pathlib.Path, steps: int) -> bool:
  """Whether `workdir` holds a run whose newest checkpoint is at `steps`."""
  try:
    return jaxgen.load(workdir).step == steps
  except jaxgen.errors.UserError:
    return False


def real_row(num_reference: int) -> dict:
  """The held-out test digits against the training-split reference."""
  options = sample_metrics.MetricOptions(kid_subset_size=1000)
  network = sample_metrics.load_network("lenet_digits", options)
  dataset = data_lib.load_dataset("digits")
  train, _ = data_lib.eval_arrays(dataset, "train")
  test, _ = data_lib.eval_arrays(dataset, "test")
  assert len(train) == num_reference
  values, protocol = sample_metrics.compare_images(
      train, test, METRICS.split(","), network, options,
      value_ranges=((0.0, 1.0), (0.0, 1.0)), seed=0)
  return {"metrics": values, "samples": len(test), "protocol": protocol}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/sample_metrics")
  parser.add_argument("--num", type=int, default=1000)
  parser.add_argument("--gan-steps", type=int, default=1500)
  parser.add_argument("--ddpm-steps", type=int, default=300)
  parser.add_argument("--vae-steps", type=int, default=5000)
  parser.add_argument("--figures", action="store_true")
  parser.add_argument("--replot", action="store_true",
                      help="only redraw the figure from OUT/results.json")
  parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
  parser.add_argument("--reuse", action="store_true",
                      help="keep a run in --out that already has its last checkpoint")
  parser.add_argument("--ddpm-sample-steps", type=int, default=20,
                      help="DDIM steps of the DDPM samples")
  parser.add_argument("--eval-only", action="store_true",
                      help="evaluate the runs already in --out (no training)")
  args = parser.parse_args(argv)
  if args.replot:
    figure(json.loads((pathlib.Path(args.out) / "results.json").read_text()))
    return 0
  if args.quick:
    args.gan_steps = args.ddpm_steps = args.vae_steps = 4
    args.num = min(args.num, 100)
  out = pathlib.Path(args.out)
  results = {}
  runs = configs(args)
  seconds = {}
  for name, (config, _) in runs.items():   # train all first, then evaluate
    if args.eval_only or (args.reuse and _trained(out / name, config.train.steps)):
      continue
    start = time.time()
    jaxgen.fit(config, workdir=out / name, overwrite=True)
    seconds[name] = round(time.time() - start, 1)
  for name, (config, rows) in runs.items():
    workdir = out / name
    for row, eval_overrides in rows.items():
      evaluated = jaxgen.evaluate(workdir, metrics=METRICS, num=args.num, seed=0,
                                  overrides=eval_overrides, progress=not args.quick)
      results[row] = {"metrics": evaluated["metrics"], "steps": config.train.steps,
                      "train_seconds_under_load": seconds.get(name),
                      "eval_overrides": eval_overrides,
                      "protocol": evaluated["protocol"]["lenet_digits"],
                      "eval_file": str(evaluated["path"])}
      print(row, json.dumps(evaluated["metrics"]))
  reference = results["dcgan"]["protocol"]["reference"]["examples"]
  results["real test images"] = real_row(reference)
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
  (out / "results.md").write_text(table(results, args.num) + "\n")
  print(table(results, args.num))
  if args.figures:
    figure(results)
  return 0


def table(results: dict, num: int) -> str:
  lines = ["| model | steps | samples | FID-LeNet ↓ | KID-LeNet ×10³ ↓ | IS-LeNet ↑ | "
           "precision ↑ | recall ↑ |", "|---|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    m = r["metrics"]
    lines.append(
        f"| {name} | {r.get('steps', '–')} | {r.get('samples', num)} | "
        f"{m['fid_lenet_digits']:.2f} | {1e3 * m['kid_lenet_digits']:.2f} ± "
        f"{1e3 * m['kid_lenet_digits_std']:.2f} | {m['is_lenet_digits']:.2f} | "
        f"{m['pr_lenet_digits_precision']:.3f} | {m['pr_lenet_digits_recall']:.3f} |")
  return "\n".join(lines)


def figure(results: dict) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  names = list(results)
  fig, axes = plt.subplots(1, 3, figsize=(9, 3.0), dpi=80)
  for ax, (key, label) in zip(axes, [("fid_lenet_digits", "FID-LeNet (lower is better)"),
                                     ("pr_lenet_digits_precision", "precision"),
                                     ("pr_lenet_digits_recall", "recall")]):
    ax.bar(range(len(names)), [results[n]["metrics"][key] for n in names],
           color=[f"C{i}" for i in range(len(names))])
    ax.set_xticks(range(len(names)), [n.replace(" test images", "").replace(" (", "\n(")
                                      for n in names], fontsize=6, rotation=30)
    ax.set_title(label, fontsize=9)
  fig.tight_layout()
  FIGURE.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(FIGURE)
  print(f"wrote {FIGURE}")


if __name__ == "__main__":
  sys.exit(main())
