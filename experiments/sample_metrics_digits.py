"""FID-LeNet, KID, IS and precision/recall of a DCGAN, a DDPM and a VAE on digits or MNIST.

Run:  nice -n 10 python experiments/sample_metrics_digits.py [--data digits|mnist]
          [--out runs/sample_metrics] [--num 1000] [--gan-steps 1500]
          [--ddpm-steps 300] [--vae-steps 5000] [--ddpm-sample-steps 20] [--reuse]
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

`--data mnist` runs the same protocol on `idx:../shared/data/mnist-t10k`, the
fixed 8,000/2,000 split of MNIST's *test* file (not the 60k training set), into
runs/sample_metrics_mnist by default: the DCGAN with the MNIST settings of
gan_dcgan_digits.py (half the paper's widths), the DDPM with those of
diffusion_digits.py (the 16-channel U-Net), and the MLP VAE of
benchmarks/vae_mnist_nll.py (Burda et al.'s 784-200-200-50, tanh, Bernoulli,
dynamic binarization), each for its MNIST_STEPS (or the --*-steps given);
features and metric names are those of the shipped `lenet_mnist`; the
reference is the 8,000 training images and the "real test images" row the
2,000 held out. With --figures it writes docs/figures/sample_metrics_mnist.png
and vae_mnist_samples.png (32 Bernoulli draws beside 32 decoder means of the
VAE evaluated here).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jaxgen  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen import config as config_lib  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen import data as data_lib  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen.metrics import sample_metrics  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen.viz import panels  # noqa: E402 pylint: disable=wrong-import-position


METRICS = "fid,kid,is,pr"
FIGURES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "figures"
MNIST = "idx:../shared/data/mnist-t10k"
# Per --data: the dataset, its shipped feature network, the default output
# folder and the default training steps (CPU budgets; see the docstring).
DATA = {"digits": "digits", "mnist": MNIST}
NETWORK = {"digits": "lenet_digits", "mnist": "lenet_mnist"}
OUT = {"digits": "runs/sample_metrics", "mnist": "runs/sample_metrics_mnist"}
# KID in the tables: x10^3 for the digits LeNet, as measured (no scale) for the
# MNIST LeNet, whose unnormalized features give KIDs of tens to hundreds.
KID_SCALE = {"lenet_digits": 1e3, "lenet_mnist": 1.0}
DIGITS_STEPS = {"gan": 1500, "ddpm": 300, "vae": 5000}
MNIST_STEPS = {"gan": 5000, "ddpm": 1500, "vae": 20000}


def figure_path(data: str) -> pathlib.Path:
  """docs/figures/sample_metrics_<data>.png."""
  return FIGURES / f"sample_metrics_{data}.png"


def load_experiment(name: str):
  """Another experiment script (experiments/NAME.py) as a module: its configs."""
  path = pathlib.Path(__file__).resolve().parent / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


def vae_mnist_config(steps: int):
  """The MLP VAE of benchmarks/vae_mnist_nll.py (Burda et al. 2016), for `steps`."""
  from benchmarks import vae_mnist_nll  # pylint: disable=import-outside-toplevel
  return vae_mnist_nll.config_for(
      "vae", argparse.Namespace(batch_size=100, steps=steps, seed=0))


def configs(args) -> dict[str, tuple[object, dict[str, list[str]]]]:
  """{model: (training config, {row name: evaluation-time overrides})}."""
  gan = load_experiment("gan_dcgan_digits").train_config(args.data, args.gan_steps, args.quick)
  gan.train.sample_every = 0
  ddpm = load_experiment("diffusion_digits").get_config(DATA[args.data], args.quick,
                                                        args.ddpm_steps)
  if args.data == "digits":
    vae = load_experiment("vae_digits").get_config()
  else:
    vae = vae_mnist_config(args.vae_steps)
    if args.quick:
      vae.model.hidden, vae.model.latent_dim = (16,), 4
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


def real_row(data: str, num_reference: int, max_examples: int = 0) -> dict:
  """The held-out test images against the training-split reference (grey).

  `max_examples`: the DCGAN's data.max_examples (set by --quick), so that the
  reference is the one its row used.
  """
  options = sample_metrics.MetricOptions(kid_subset_size=1000)
  network = sample_metrics.load_network(NETWORK[data], options)
  dataset = data_lib.load_dataset(DATA[data], max_examples=max_examples)
  train, _ = data_lib.eval_arrays(dataset, "train")
  test, _ = data_lib.eval_arrays(dataset, "test")
  assert len(train) == num_reference
  value_range = tuple(dataset.spec.value_range)
  values, protocol = sample_metrics.compare_images(
      train, test, METRICS.split(","), network, options,
      value_ranges=(value_range, value_range), seed=0)
  return {"metrics": values, "samples": len(test), "protocol": protocol}


def parse_args(argv=None) -> argparse.Namespace:
  """The command line; the steps and --out default per --data."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="digits", choices=tuple(DATA),
                      help="digits (sklearn 8x8) or mnist (idx:../shared/data/mnist-t10k)")
  parser.add_argument("--out", default=None, help="default runs/sample_metrics[_mnist]")
  parser.add_argument("--num", type=int, default=1000)
  for model in ("gan", "ddpm", "vae"):
    parser.add_argument(f"--{model}-steps", type=int, default=None,
                        help=f"digits {DIGITS_STEPS[model]}, mnist {MNIST_STEPS[model]}")
  parser.add_argument("--figures", action="store_true")
  parser.add_argument("--replot", action="store_true",
                      help="only redraw the figure and results.md from OUT/results.json")
  parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
  parser.add_argument("--reuse", action="store_true",
                      help="keep a run in --out that already has its last checkpoint")
  parser.add_argument("--ddpm-sample-steps", type=int, default=20,
                      help="DDIM steps of the DDPM samples")
  parser.add_argument("--eval-only", action="store_true",
                      help="evaluate the runs already in --out (no training)")
  args = parser.parse_args(argv)
  steps = DIGITS_STEPS if args.data == "digits" else MNIST_STEPS
  for model in ("gan", "ddpm", "vae"):
    if getattr(args, f"{model}_steps") is None:
      setattr(args, f"{model}_steps", steps[model])
  args.out = args.out or OUT[args.data]
  if args.quick:
    args.gan_steps = args.ddpm_steps = args.vae_steps = 4
    args.num = min(args.num, 100)
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  network = NETWORK[args.data]
  if args.replot:
    results = json.loads((pathlib.Path(args.out) / "results.json").read_text())
    (pathlib.Path(args.out) / "results.md").write_text(table(results, args.num, network) + "\n")
    figure(results, args.data)
    return 0
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
      started = time.time()
      evaluated = jaxgen.evaluate(workdir, metrics=METRICS, num=args.num, seed=0,
                                  overrides=eval_overrides, progress=not args.quick)
      results[row] = {"metrics": evaluated["metrics"], "steps": config.train.steps,
                      "train_seconds_under_load": seconds.get(name),
                      "eval_seconds_under_load": round(time.time() - started, 1),
                      "eval_overrides": eval_overrides,
                      "protocol": evaluated["protocol"][network],
                      "eval_file": str(evaluated["path"])}
      print(row, json.dumps(evaluated["metrics"]), flush=True)
  reference = results["dcgan"]["protocol"]["reference"]["examples"]
  results["real test images"] = real_row(args.data, reference,
                                         runs["dcgan"][0].data.max_examples)
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
  (out / "results.md").write_text(table(results, args.num, network) + "\n")
  print(table(results, args.num, network))
  if args.figures:
    figure(results, args.data)
    if args.data == "mnist":
      vae_samples(out / "vae", FIGURES / "vae_mnist_samples.png")
  return 0


def table(results: dict, num: int, network: str = "lenet_digits") -> str:
  """The results as a markdown table; metric names are those of `network`."""
  scale = KID_SCALE[network]
  kid = "KID-LeNet ×10³" if scale == 1e3 else "KID-LeNet"
  lines = [f"| model | steps | samples | FID-LeNet ↓ | {kid} ↓ | IS-LeNet ↑ | "
           "precision ↑ | recall ↑ |", "|---|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    m = r["metrics"]
    lines.append(
        f"| {name} | {r.get('steps', '–')} | {r.get('samples', num)} | "
        f"{m[f'fid_{network}']:.2f} | {scale * m[f'kid_{network}']:.2f} ± "
        f"{scale * m[f'kid_{network}_std']:.2f} | {m[f'is_{network}']:.2f} | "
        f"{m[f'pr_{network}_precision']:.3f} | {m[f'pr_{network}_recall']:.3f} |")
  return "\n".join(lines)


def figure(results: dict, data: str = "digits") -> pathlib.Path:
  """Bars of FID, precision and recall per row: docs/figures/sample_metrics_<data>.png."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  network = NETWORK[data]
  names = list(results)
  fig, axes = plt.subplots(1, 3, figsize=(9, 3.0), dpi=80)
  for ax, (key, label) in zip(axes, [(f"fid_{network}", "FID-LeNet (lower is better)"),
                                     (f"pr_{network}_precision", "precision"),
                                     (f"pr_{network}_recall", "recall")]):
    ax.bar(range(len(names)), [results[n]["metrics"][key] for n in names],
           color=[f"C{i}" for i in range(len(names))])
    ax.set_xticks(range(len(names)), [n.replace(" test images", "").replace(" (", "\n(")
                                      for n in names], fontsize=6, rotation=30)
    ax.set_title(label, fontsize=9)
  if data != "digits":
    fig.suptitle(f"{network}: MNIST (8,000/2,000 split of the t10k file)", fontsize=9)
  fig.tight_layout()
  path = figure_path(data)
  path.parent.mkdir(parents=True, exist_ok=True)
  if data == "digits":
    fig.savefig(path)   # unchanged from the first digits run
  else:
    panels.save_figure(fig, path)
  plt.close(fig)
  print(f"wrote {path}")
  return path


def vae_samples(workdir: pathlib.Path, path: pathlib.Path,
                num: int = 32) -> tuple[pathlib.Path, dict[str, np.ndarray]]:
  """Bernoulli draws beside decoder means of the VAE in `workdir` (sample key 0).

  Returns the PNG's path and the images shown, by sample mode.
  """
  run = jaxgen.load(workdir)
  shown = {mode: jaxgen.sample(run, num=num, seed=0, overrides=[f"model.sample_mode={mode}"],
                               progress=False) for mode in ("sample", "mean")}
  titles = {"sample": "Bernoulli draws", "mean": "decoder means"}
  written = panels.save_panels(
      path, [(f"{titles[mode]}, step {run.step}", images) for mode, images in shown.items()],
      columns=8, value_range=run.spec.value_range, pixels_per_unit=2)
  print(f"wrote {written}")
  return written, shown


if __name__ == "__main__":
  sys.exit(main())
