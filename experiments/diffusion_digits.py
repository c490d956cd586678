"""DDPM on 8x8 digits and on MNIST (the 10k test images): samples, bits/dim, training curve.

  python experiments/diffusion_digits.py [--quick] [--out runs/diffusion_digits]
      [--datasets digits,digits_hybrid,mnist] [--figures] [--reuse]
      [--sampler-metrics N]

For each dataset it trains the `ddpm` method (ε-prediction, linear β over
T = 1000 steps, a small U-Net, EMA weights; `digits_hybrid`: the same on digits
with a learned variance and the hybrid loss of Nichol & Dhariwal 2021), then
writes to OUT/<name>/:
  samples_ddim50.png    DDIM (η = 0) with 50 steps, from the EMA weights
  samples_ddpm1000.png  ancestral sampling over all T steps
  training_curve.png    L_simple per logged window
  bound.json            the variational bound in bits/dim on test images (all
                        T terms; digits: the whole test split; MNIST: the first
                        --mnist-eval-examples test images, for time)
  samples.png           the two grids side by side, titled
  chain.png             the reverse chain of the 1000-step sampler: a row per
                        sample, x_T on the left, then the state after each
                        tenth of the steps, x_0 (the samples above) on the right
and, for digits only, samplers.png: DDPM (ancestral, σ² = β̃) beside DDIM
(η = 0) at all T, 50 and 10 steps, from the same key (so the same x_T for both
samplers and every step count). With `--sampler-metrics N` (digits only) the
same six sampler and step-count pairs are also scored by FID-LeNet, KID and
precision/recall on N samples each (`jaxgen.evaluate(run, metrics="fid,kid,pr",
num=N, seed)` with `model.sampler` and `model.sample_steps` as evaluation-time
overrides; reference: the 1,438 training digits through `lenet_digits`), with
the 359 held-out test digits against the same reference as a floor:
sampler_metrics.json (written after every row), sampler_metrics.md and
sampler_metrics.png (FID, precision and recall against the steps), and
summary.json's `digits.sampler_metrics`. OUT/summary.json holds every number. The run
directories (checkpoints, metrics.jsonl) are OUT/<name>/run; --datasets picks
which to run. `--figures` also copies the ones docs/diffusion.md shows
(DOC_FIGURES: digits' three, and sampler_metrics.png with --sampler-metrics;
mnist's samples and chain, digits_hybrid's samples) into docs/figures/
(`--figures-dir`) as ddpm_<name>_<file>. `--quick` trains tiny MLP models for a few steps with
T = 50, on MNIST resized to 8x8: a smoke test of the script, not a result.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from jaxgen.core import rng  # noqa: E402
from jaxgen.engine import logs  # noqa: E402
from jaxgen.viz import grid, panels  # noqa: E402

MNIST = "idx:../shared/data/mnist-t10k"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
# The pictures copied into docs/figures with --figures (as ddpm_<name>_<file>):
# those docs/diffusion.md shows.
DOC_FIGURES = {"digits": ("samples.png", "chain.png", "samplers.png"),
               "digits_hybrid": ("samples.png",),
               "mnist": ("samples.png", "chain.png")}
CHAIN_SNAPSHOTS = 10
SAMPLER_METRICS = "fid,kid,pr"
SAMPLER_NAMES = {"ddpm": "DDPM (ancestral)", "ddim": "DDIM (η = 0)"}


def get_config(data: str, quick: bool, steps: int,
               hybrid: bool = False) -> ml_collections.ConfigDict:
  """The DDPM config used for `data` (digits or MNIST); `hybrid`: learned variance."""
  config = jaxgen.get_config("ddpm", data)
  if quick:
    overrides = ["model.architecture=mlp", "model.hidden=32", "model.depth=1",
                 "model.timesteps=50", "model.sample_steps=10", "data.batch_size=32",
                 "train.num_samples=0"]
    if data != "digits":  # 8x8 like digits: the same compiled programs serve both
      overrides.append("data.image_size=8")
  elif data == "digits":
    # Ho et al.'s U-Net, narrowed for 8x8 images and two CPU cores.
    overrides = ["model.channels=32", "model.channel_mults=(1, 2)",
                 "model.num_res_blocks=1", "model.attention_resolutions=(4,)",
                 "data.batch_size=64", "optim.warmup_steps=200"]
    if hybrid:  # Nichol & Dhariwal: learned Σ trained by L_simple + λ L_vlb
      overrides += ["model.loss=hybrid", "model.variance=learned"]
  else:
    overrides = ["model.channels=16", "model.channel_mults=(1, 2, 2)",
                 "model.num_res_blocks=1", "model.attention_resolutions=(7,)",
                 "data.batch_size=32", "optim.warmup_steps=200"]
  config_lib.apply_overrides(config, overrides + [
      f"train.steps={steps}", "train.eval_every=0", f"train.sample_every={steps}",
      f"train.log_every={max(1, steps // 60)}", f"train.checkpoint_every={steps}",
      # The bound is computed below on the chosen test images.
      "train.final_eval=False"])
  return config


def bound_on_test(run: jaxgen.RunResult, num_examples: int, batch_size: int,
                  seed: int = 0) -> dict:
  """Mean per-example bound (bits/dim) on the first `num_examples` test images."""
  dataset = data_lib.from_config(run.config.data)
  evaluate = jax.jit(run.method.evaluate)
  key = jax.random.fold_in(jax.random.PRNGKey(seed), 0xE7A1)
  totals: dict[str, float] = {}
  count = 0
  started = time.perf_counter()
  for batch in data_lib.eval_batches(dataset, split="test", batch_size=batch_size):
    keep = min(batch_size, num_examples - count)
    if keep <= 0:
      break
    mask = np.asarray(batch.pop("mask"), np.float64)[:keep]
    # Per-example keys from the example's index: the numbers do not depend on
    # the batch size.
    keys = rng.index_keys(key, jnp.arange(count, count + len(batch["x"])))
    values = jax.device_get(evaluate(run.state, batch, keys))
    for name, per_example in values.items():
      totals[name] = totals.get(name, 0.0) + float(
          (np.asarray(per_example, np.float64)[:keep] * mask).sum())
    count += int(mask.sum())
  means = {k: v / count for k, v in totals.items()}
  return {**means, "num_examples": count, "seconds": time.perf_counter() - started,
          "protocol": {**run.method.eval_protocol,
                       "eval_key": f"fold_in(fold_in(PRNGKey({seed}), 0xE7A1), example index)"}}


def save_curve(path: pathlib.Path, history: list[dict], title: str) -> None:
  """L_simple against the step, from the run's logged training windows."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  train = [r for r in history if r.get("split") == "train" and "loss" in r]
  fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
  ax.plot([r["step"] for r in train], [r["loss"] for r in train])
  ax.set_xlabel("step")
  ax.set_ylabel("L_simple (ε-MSE)")
  ax.set_yscale("log")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def pixel_scale(spec) -> int:
  """Screen pixels per image pixel in the docs figures: 8x8 digits larger than MNIST."""
  return 6 if spec.shape[0] <= 8 else 2


def draw(result: jaxgen.RunResult, key: jax.Array, num: int, quick: bool,
         **kwargs) -> np.ndarray:
  """`result.method.sample(state, key, num, **kwargs)` as a numpy array."""
  if quick:  # one compiled program, no progress bar
    return np.asarray(jax.jit(lambda s, k: result.method.sample(s, k, num, **kwargs))(
        result.state, key))
  # Compiled chunks with a progress bar.
  return np.asarray(result.method.sample(result.state, key, num, progress=True, **kwargs))


def save_chain(path: pathlib.Path, chain: np.ndarray, timesteps: int, spec,
               rows: int = 8) -> pathlib.Path:
  """The reverse chain [k + 1, N, ...] as columns x_T ... x_0, one sample a row."""
  k = len(chain) - 1
  # The snapshots follow np.array_split of the T steps into k runs (`sample`).
  done = np.concatenate([[0], np.cumsum([len(p) for p in np.array_split(
      np.arange(timesteps), k)])])
  return panels.save_panels(
      path, [(f"t = {timesteps - d}", chain[i, :rows]) for i, d in enumerate(done)],
      columns=1, value_range=spec.value_range, pixels_per_unit=pixel_scale(spec))


def compare_samplers(result: jaxgen.RunResult, key: jax.Array, args: argparse.Namespace,
                     samples: dict[str, np.ndarray], path: pathlib.Path) -> dict:
  """DDPM beside DDIM (η = 0) at all T, 50 and 10 steps, from the same key.

  Returns, per sampler and step count, the sampling time and the RMS distance
  (per pixel, in the data's units) of each sample to the all-T sample of the
  same sampler and key: DDIM is deterministic given x_T, so its few-step
  samples approximate its all-T ones; DDPM's draw fresh noise at every step.
  """
  spec, timesteps = result.spec, result.config.model.timesteps
  steps = sorted({timesteps, min(50, timesteps), min(10, timesteps)}, reverse=True)
  known = {("ddim", min(50, timesteps)): samples["ddim50"],
           ("ddpm", timesteps): samples["ddpm1000"]}
  drawn, report = {}, {}
  for count in steps:
    for sampler in ("ddpm", "ddim"):
      started = time.perf_counter()
      x = known.get((sampler, count))
      if x is None:
        x = draw(result, key, args.num_samples, args.quick, sampler=sampler, steps=count)
      drawn[sampler, count] = x
      report[f"{sampler}{count}"] = {"seconds": time.perf_counter() - started}
  for (sampler, count), x in drawn.items():
    reference = drawn[sampler, timesteps].reshape(len(x), -1)
    report[f"{sampler}{count}"]["rms_to_all_steps"] = float(np.mean(np.sqrt(np.mean(
        (x.reshape(len(x), -1) - reference) ** 2, axis=-1))))
  names = {"ddpm": "DDPM (ancestral)", "ddim": "DDIM (η = 0)"}
  panels.save_panels(path, [(f"{names[sampler]}, {count} steps", drawn[sampler, count][:16])
                            for count in steps for sampler in ("ddpm", "ddim")],
                     columns=8, value_range=spec.value_range, panels_per_row=2,
                     pixels_per_unit=pixel_scale(spec))
  return {"seed": args.seed, "num_samples": args.num_samples, "steps": steps, **report}


def sampler_metrics(workdir: pathlib.Path, steps: list[int], num: int, seed: int,
                    quick: bool, path: pathlib.Path, rows_wanted: str = "",
                    keep: bool = False) -> dict:
  """FID-LeNet, KID and precision/recall of `num` samples per sampler and step count.

  One `jaxgen.evaluate` per pair, the sampler and its steps given as
  evaluation-time overrides: every pair draws its samples from the same keys
  (so the same x_T), against the training split's features. The cheap pairs
  run first, and `path` is rewritten after each, so a cut-short run keeps them.
  With `keep`, the rows `path` already holds for the same checkpoint step, N
  and seed are kept, not drawn again (adding rows to a re-scored run).
  `rows_wanted` ("ddpm1000,ddim50", ...; "" for all) picks pairs to fit a budget.
  """
  run = jaxgen.load(workdir)
  previous = json.loads(path.read_text()) if keep and path.is_file() else {}
  same = [previous.get(k) for k in ("train_step", "num_samples", "seed")] == [run.step, num, seed]
  rows: dict[str, dict] = dict(previous["rows"]) if same else {}
  report = {**previous, "rows": rows} if same else {}
  for count in sorted(steps):
    for sampler in ("ddim", "ddpm"):
      if f"{sampler}{count}" in rows or (
          rows_wanted and f"{sampler}{count}" not in rows_wanted.split(",")):
        continue
      started = time.perf_counter()
      evaluated = jaxgen.evaluate(
          run, metrics=SAMPLER_METRICS, num=num, seed=seed, progress=not quick,
          overrides=[f"model.sampler={sampler}", f"model.sample_steps={count}"])
      rows[f"{sampler}{count}"] = {
          "sampler": sampler, "steps": count, "metrics": evaluated["metrics"],
          "seconds": time.perf_counter() - started, "eval_file": str(evaluated["path"])}
      print(f"{sampler} {count} steps: {json.dumps(evaluated['metrics'])}", flush=True)
      report = {"num_samples": num, "seed": seed, "train_step": run.step,
                "protocol": evaluated["protocol"]["lenet_digits"], "rows": rows}
      path.write_text(json.dumps(logs.plain(report), indent=2, default=str) + "\n")
  if not rows:
    raise SystemExit(f"no sampler rows to score among {rows_wanted!r} at steps {steps}")
  report["real_test_digits"] = real_digits_floor(run.config.data, seed)
  path.write_text(json.dumps(logs.plain(report), indent=2, default=str) + "\n")
  return json.loads(path.read_text())   # as saved: plain JSON values


def real_digits_floor(data_config: ml_collections.ConfigDict, seed: int) -> dict:
  """The held-out test digits against the training split, through lenet_digits.

  Both splits as the run's data pipeline gives them (the reference the samples
  are compared with). A floor for a sample of the test split's size (359).
  """
  from jaxgen.metrics import sample_metrics  # pylint: disable=import-outside-toplevel
  options = sample_metrics.MetricOptions()
  network = sample_metrics.load_network("lenet_digits", options)
  dataset = data_lib.from_config(data_config)
  train, _ = data_lib.eval_arrays(dataset, "train")
  test, _ = data_lib.eval_arrays(dataset, "test")
  values, protocol = sample_metrics.compare_images(
      train, test, SAMPLER_METRICS.split(","), network, options,
      value_ranges=(dataset.spec.value_range,) * 2, seed=seed)
  return {"metrics": values, "samples": len(test), "reference": len(train),
          "protocol": protocol}


def sampler_table(report: dict) -> str:
  """The sampler metrics as a markdown table, a row per sampler and step count."""
  lines = ["| sampler | steps | samples | FID-LeNet ↓ | KID-LeNet ×10³ ↓ | precision ↑ | "
           "recall ↑ | seconds |", "|---|---|---|---|---|---|---|---|"]
  rows = sorted(report["rows"].values(), key=lambda r: (-r["steps"], r["sampler"]))
  entries = [(SAMPLER_NAMES[r["sampler"]], f"{r['steps']:,}", report["num_samples"],
              r["metrics"], f"{r['seconds']:.0f}") for r in rows]
  if "real_test_digits" in report:
    real = report["real_test_digits"]
    entries.append(("real test digits", "–", real["samples"], real["metrics"], "–"))
  for label, count, num, m, seconds in entries:
    lines.append(
        f"| {label} | {count} | {num:,} | {m['fid_lenet_digits']:.2f} | "
        f"{1e3 * m['kid_lenet_digits']:.1f} ± {1e3 * m['kid_lenet_digits_std']:.1f} | "
        f"{m['pr_lenet_digits_precision']:.3f} | {m['pr_lenet_digits_recall']:.3f} | "
        f"{seconds} |")
  return "\n".join(lines) + "\n"


def save_sampler_plot(path: pathlib.Path, report: dict) -> None:
  """FID-LeNet, precision and recall against the sampling steps, a line per sampler."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  panels_ = [("fid_lenet_digits", "FID-LeNet (lower is better)"),
             ("pr_lenet_digits_precision", "precision"), ("pr_lenet_digits_recall", "recall")]
  fig, axes = plt.subplots(1, 3, figsize=(9, 2.8), dpi=80)
  real = report.get("real_test_digits")
  for ax, (key, title) in zip(axes, panels_):
    for i, sampler in enumerate(("ddpm", "ddim")):
      rows = sorted((r for r in report["rows"].values() if r["sampler"] == sampler),
                    key=lambda r: r["steps"])
      ax.plot([r["steps"] for r in rows], [r["metrics"][key] for r in rows], "o-",
              color=f"C{i}", label=SAMPLER_NAMES[sampler])
    if real is not None:
      ax.axhline(real["metrics"][key], color="grey", linestyle="--",
                 label=f"real test digits (N = {real['samples']})")
    ax.set_xscale("log")
    ax.set_xlabel("sampling steps")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(f"DDPM on digits, checkpoint step {report['train_step']:,}: "
               f"{report['num_samples']:,} samples per point (seed {report['seed']})",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  panels.shrink_png(path)


def score_samplers(out: pathlib.Path, timesteps: int, args: argparse.Namespace) -> dict:
  """`sampler_metrics` of the run in `out` at all T, 50 and 10 steps, with its table
  and plot (and, with --figures, the plot's docs copy)."""
  steps = sorted({timesteps, min(50, timesteps), min(10, timesteps)}, reverse=True)
  metrics = sampler_metrics(out / "run", steps, args.sampler_metrics, args.seed,
                            args.quick, out / "sampler_metrics.json",
                            args.sampler_metrics_rows, keep=args.sampler_metrics_only)
  (out / "sampler_metrics.md").write_text(sampler_table(metrics))
  save_sampler_plot(out / "sampler_metrics.png", metrics)
  print(sampler_table(metrics), flush=True)
  return metrics


def run_dataset(name: str, data: str, args: argparse.Namespace, steps: int,
                eval_examples: int, hybrid: bool = False) -> dict:
  """Trains, samples and evaluates on one dataset; returns its summary."""
  out = pathlib.Path(args.out) / name
  out.mkdir(parents=True, exist_ok=True)
  config = get_config(data, args.quick, steps, hybrid)
  started = time.perf_counter()
  reuse = args.reuse and (out / "run" / "checkpoints").is_dir()
  # --reuse: a finished run's last checkpoint is restored (no steps left to
  # train), so its curve and timing come from the run's own metrics file.
  result = jaxgen.fit(config, workdir=out / "run", resume=reuse, overwrite=not reuse)
  train_seconds = time.perf_counter() - started
  if reuse:
    history = logs.read_jsonl(out / "run" / "metrics.jsonl")
    result = dataclasses.replace(result, history=history)
    train_seconds = max((r.get("time", 0.0) for r in history), default=train_seconds)
  spec = result.spec
  key = jax.random.PRNGKey(args.seed)
  timesteps = config.model.timesteps
  timings = {}
  samples = {}
  started = time.perf_counter()
  samples["ddim50"] = draw(result, key, args.num_samples, args.quick, sampler="ddim",
                           steps=min(50, timesteps))
  timings["ddim50"] = time.perf_counter() - started
  # The 1000-step chain with its snapshots: the last one is the samples.
  started = time.perf_counter()
  chain = draw(result, key, args.num_samples, args.quick, sampler="ddpm", steps=timesteps,
               snapshots=CHAIN_SNAPSHOTS)
  timings["ddpm1000"] = time.perf_counter() - started
  samples["ddpm1000"] = chain[-1]
  for label, x in samples.items():
    grid.save_image_grid(out / f"samples_{label}.png", x, columns=8,
                         value_range=spec.value_range)
  panels.save_panels(out / "samples.png", [
      (f"DDIM (η = 0), {min(50, timesteps)} steps", samples["ddim50"][:32]),
      (f"DDPM (ancestral), {timesteps} steps", samples["ddpm1000"][:32])],
      columns=8, value_range=spec.value_range, pixels_per_unit=pixel_scale(spec))
  save_chain(out / "chain.png", chain, timesteps, spec)
  comparison = metrics = None
  if name == "digits":
    comparison = compare_samplers(result, key, args, samples, out / "samplers.png")
    if args.sampler_metrics:
      metrics = score_samplers(out, timesteps, args)
  if args.figures:
    figures = pathlib.Path(args.figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    for file in DOC_FIGURES[name] + (("sampler_metrics.png",) if metrics else ()):
      shutil.copyfile(out / file, figures / f"ddpm_{name}_{file}")
  save_curve(out / "training_curve.png", result.history,
             f"DDPM on {data}: {steps} steps, batch {config.data.batch_size}")
  bound = bound_on_test(result, eval_examples, 64 if not args.quick else 32, args.seed)
  (out / "bound.json").write_text(json.dumps(bound, indent=2) + "\n")
  train = [r for r in result.history if r.get("split") == "train"]
  summary = {
      "data": data, "steps": steps, "batch_size": config.data.batch_size,
      "loss": config.model.loss, "variance": config.model.variance,
      "timesteps": config.model.timesteps,
      "nll_bound_bits_per_dim": bound["nll_bound_bits_per_dim"],
      "bound": {k: v for k, v in bound.items() if k != "protocol"},
      "final_train_loss": train[-1]["loss"] if train else None,
      "train_seconds": train_seconds,
      "steps_per_second": train[-1].get("steps_per_sec") if train else None,
      "sampling_seconds": timings,
      "samplers": comparison,
      "sampler_metrics": metrics,
      "sample_value_range": [float(samples["ddim50"].min()), float(samples["ddim50"].max())],
      "num_parameters": int(sum(np.size(p) for p in jax.tree.leaves(result.state.params))),
      "figures": sorted(str(p) for p in out.glob("*.png")),
  }
  print(f"{name}: bound {summary['nll_bound_bits_per_dim']:.3f} bits/dim on "
        f"{bound['num_examples']} test images; final L_simple "
        f"{summary['final_train_loss']:.4f}", flush=True)
  return summary


def main(argv: list[str] | None = None) -> dict:
  """Runs the experiment and writes OUT/summary.json."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
  parser.add_argument("--out", default="runs/diffusion_digits")
  parser.add_argument("--steps", type=int, default=3000, help="digits train steps")
  parser.add_argument("--mnist-steps", type=int, default=1500)
  parser.add_argument("--mnist-eval-examples", type=int, default=100,
                      help="MNIST test images in the bound (each costs T network calls)")
  parser.add_argument("--num-samples", type=int, default=64)
  parser.add_argument("--datasets", default="digits,digits_hybrid,mnist",
                      help="which of digits, digits_hybrid (learned variance, hybrid "
                           "loss), mnist to run; summary.json keeps earlier entries")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also copy the figures docs/diffusion.md shows into "
                           "--figures-dir as ddpm_<dataset>_<file>")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  parser.add_argument("--reuse", action="store_true",
                      help="restore finished training runs under --out instead of "
                           "retraining (sampling and the bound are recomputed)")
  parser.add_argument("--sampler-metrics", type=int, default=0, metavar="N",
                      help="digits: FID-LeNet, KID and precision/recall of N samples "
                           "per sampler and step count (0: skip)")
  parser.add_argument("--sampler-metrics-only", action="store_true",
                      help="only score the samplers of the digits run already under "
                           "--out (its newest checkpoint): no training, grids or bound")
  parser.add_argument("--sampler-metrics-rows", default="",
                      help="only these of ddpm1000,ddim1000,ddpm50,ddim50,ddpm10,ddim10 "
                           "(default: all)")
  args = parser.parse_args(argv)
  rows = {f"{s}{n}" for s in ("ddpm", "ddim") for n in (1000, 50, 10)}
  if args.sampler_metrics_rows and not set(args.sampler_metrics_rows.split(",")) <= rows:
    parser.error(f"--sampler-metrics-rows takes names of {sorted(rows)}, "
                 f"got {args.sampler_metrics_rows!r}")
  run_dir = pathlib.Path(args.out) / "digits" / "run"
  if args.sampler_metrics_only and not (args.sampler_metrics and
                                        (run_dir / "checkpoints").is_dir()):
    parser.error(f"--sampler-metrics-only needs --sampler-metrics N and a digits run "
                 f"in {run_dir}")
  if args.sampler_metrics and args.sampler_metrics < 10:
    parser.error(f"--sampler-metrics must be 0 (skip) or at least 10, "
                 f"got {args.sampler_metrics}")
  if args.sampler_metrics and "digits" not in args.datasets.split(","):
    parser.error("--sampler-metrics scores the digits run; add digits to --datasets")
  if args.quick:
    args.steps, args.mnist_steps, args.num_samples = 3, 3, 16
    args.mnist_eval_examples = 32
  path = pathlib.Path(args.out) / "summary.json"
  summary = json.loads(path.read_text()) if path.is_file() else {}
  if args.sampler_metrics_only:
    # Re-scores a trained (or interrupted: its newest checkpoint) digits run.
    timesteps = jaxgen.load(run_dir).config.model.timesteps
    metrics = score_samplers(run_dir.parent, timesteps, args)
    if args.figures:
      figures = pathlib.Path(args.figures_dir)
      figures.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(run_dir.parent / "sampler_metrics.png",
                      figures / "ddpm_digits_sampler_metrics.png")
    summary.setdefault("digits", {})["sampler_metrics"] = metrics
    path.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return summary
  names = args.datasets.split(",")
  unknown = set(names) - {"digits", "digits_hybrid", "mnist"}
  if unknown:
    parser.error(f"unknown datasets {sorted(unknown)}; valid: digits, digits_hybrid, mnist")
  if "digits" in names:
    summary["digits"] = run_dataset("digits", "digits", args, args.steps, 10**9)
  if "digits_hybrid" in names and not args.quick:
    summary["digits_hybrid"] = run_dataset("digits_hybrid", "digits", args, args.steps,
                                           10**9, hybrid=True)
  if "mnist" in names:
    summary["mnist"] = run_dataset("mnist", MNIST, args, args.mnist_steps,
                                   args.mnist_eval_examples)
  summary["quick"] = args.quick
  summary["devices"] = [str(d) for d in jax.devices()]
  path.write_text(json.dumps(summary, indent=2, default=float) + "\n")
  print(f"wrote {path}")
  return summary


if __name__ == "__main__":
  main()
