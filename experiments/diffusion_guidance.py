"""Classifier-free guidance on digits: samples per class at several guidance weights.

  python experiments/diffusion_guidance.py [--quick] [--out runs/diffusion_guidance]
      [--figures] [--reuse]

Trains a class-conditional `ddpm` (U-Net with a class embedding, labels
dropped with p = 0.1 so the same network is also the unconditional model; Ho &
Salimans 2022), then samples with ε̃ = (1 − w) ε(x, ∅) + w ε(x, y) for each w
in --weights (w = 0: unconditional, w = 1: conditional, w > 1: guided). Writes:
  guidance_grid.png   rows = classes 0..9, columns = w (one sample per cell,
                      the same noise in every column)
  guidance_w<w>.png   --per-class samples per class for each w
  summary.json        per w: the accuracy of a logistic-regression classifier
                      (fit on the real training digits) on the samples, i.e.
                      how often a sample shows the class it was asked for, and
                      the mean pairwise distance between samples of a class
                      (diversity), averaged over classes
  guidance.png        a titled panel per w: rows = classes, 4 samples each
  scores.png          the two scores against w, beside those of the real
                      digits (the classifier's test accuracy; the diversity
                      of the real training digits of a class)
`--figures` also copies guidance.png and scores.png into docs/figures/
(`--figures-dir`) as ddpm_guidance_samples.png and ddpm_guidance_scores.png.
`--quick`: a tiny MLP model for a few steps (a smoke test, not a result).
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
import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.engine import logs  # noqa: E402
from jaxgen.viz import grid, panels  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def get_config(quick: bool, steps: int = 3000,
               sample_steps: int = 50) -> ml_collections.ConfigDict:
  """A class-conditional DDPM with label dropout p = 0.1 (Ho & Salimans 2022)."""
  config = jaxgen.get_config("ddpm", "digits")
  if quick:
    overrides = ["model.architecture=mlp", "model.hidden=32", "model.depth=1",
                 "model.timesteps=50", "data.batch_size=32", "train.num_samples=0"]
  else:
    overrides = ["model.channels=32", "model.channel_mults=(1, 2)",
                 "model.num_res_blocks=1", "model.attention_resolutions=(4,)",
                 "data.batch_size=64", "optim.warmup_steps=200"]
  config_lib.apply_overrides(config, overrides + [
      "model.guidance=classifier_free", "model.label_dropout=0.1",
      f"model.sample_steps={sample_steps}", f"train.steps={steps}",
      "train.eval_every=0", "train.final_eval=False", f"train.sample_every={steps}",
      f"train.log_every={max(1, steps // 60)}", f"train.checkpoint_every={steps}"])
  return config


def mean_pairwise_distance(flat: np.ndarray, labels: np.ndarray) -> float:
  """Diversity: the mean Euclidean distance between two samples of a class, averaged
  over classes (each pair once, no sample with itself). flat: [N, D]."""
  per_class = []
  for c in np.unique(labels):
    group = flat[labels == c]
    d = np.linalg.norm(group[:, None] - group[None], axis=-1)
    per_class.append(d.sum() / max(len(group) * (len(group) - 1), 1))
  return float(np.mean(per_class))


def save_scores(path: pathlib.Path, scores: dict, real: dict, steps: int) -> pathlib.Path:
  """Accuracy and diversity against w, with the real digits' values as dashed lines."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  weights = [float(w) for w in scores]
  fig = Figure(figsize=(7.0, 2.8), dpi=100)
  axes = fig.subplots(1, 2)
  for ax, (key, name, reference, label) in zip(axes, (
      ("class_accuracy", "samples classified as the asked class",
       real["classifier_test_accuracy"], "classifier on real test digits"),
      ("mean_pairwise_distance", "mean pairwise distance within a class",
       real["mean_pairwise_distance"], "real training digits"))):
    ax.plot(weights, [scores[w][key] for w in scores], "o-", label="DDIM samples")
    ax.axhline(reference, color="0.4", ls="--", lw=1, label=label)
    ax.set_xlabel("guidance weight w (0: unconditional, 1: conditional)", fontsize=7)
    ax.set_title(name, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  fig.suptitle(f"classifier-free guidance on digits, {steps} training steps", fontsize=9)
  fig.tight_layout()
  return panels.save_figure(fig, path)


def reference_classifier(config):
  """Logistic regression on the real training digits, in the model's value range, and
  the real digits' scores: its test accuracy, the training digits' diversity."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  dataset = data_lib.from_config(config.data)
  batches = list(data_lib.eval_batches(dataset, split="train", batch_size=256))
  x = np.concatenate([b["x"][b["mask"] > 0] for b in batches]).reshape(-1, 64)
  y = np.concatenate([b["label"][b["mask"] > 0] for b in batches])
  test = list(data_lib.eval_batches(dataset, split="test", batch_size=512))
  xt = np.concatenate([b["x"][b["mask"] > 0] for b in test]).reshape(-1, 64)
  yt = np.concatenate([b["label"][b["mask"] > 0] for b in test])
  clf = LogisticRegression(max_iter=2000).fit(x, y)
  real = {"classifier_test_accuracy": float(clf.score(xt, yt)),
          "mean_pairwise_distance": mean_pairwise_distance(x, y)}
  return clf, real


def sample_and_score(result: jaxgen.RunResult, clf, weights: list[float],
                     args: argparse.Namespace, out: pathlib.Path) -> dict:
  """Samples --per-class images per class at each w; writes the grids; returns the scores."""
  classes = result.spec.num_classes
  value_range = result.spec.value_range
  num = classes * args.per_class
  labels = jnp.repeat(jnp.arange(classes, dtype=jnp.int32), args.per_class)
  sample = jax.jit(lambda s, k, w: result.method.sample(s, k, num, labels=labels,
                                                        guidance=w))
  key = jax.random.PRNGKey(args.seed)
  scores, columns, shown = {}, [], []
  for w in tqdm.tqdm(weights, desc="guidance weights", disable=args.quick):
    x = np.asarray(sample(result.state, key, w))  # the same noise for every w
    grid.save_image_grid(out / f"guidance_w{w:g}.png", x, columns=args.per_class,
                         value_range=value_range)
    by_class = x.reshape(classes, args.per_class, *x.shape[1:])
    columns.append(by_class[:, 0])
    shown.append(by_class[:, :4].reshape(-1, *x.shape[1:]))
    flat = x.reshape(num, -1)
    accuracy = float(np.mean(clf.predict(flat) == np.asarray(labels)))
    diversity = mean_pairwise_distance(flat, np.asarray(labels))
    scores[f"{w:g}"] = {"class_accuracy": accuracy, "mean_pairwise_distance": diversity}
    print(f"w={w:g}: accuracy {accuracy:.3f}, diversity {diversity:.3f}", flush=True)
  # Rows = classes, columns = w.
  table = np.stack(columns, axis=1).reshape(classes * len(weights), *columns[0].shape[1:])
  grid.save_image_grid(out / "guidance_grid.png", table, columns=len(weights),
                       value_range=value_range)
  names = {0.0: " (unconditional)", 1.0: " (conditional)"}
  panels.save_panels(out / "guidance.png",
                     [(f"w = {w:g}{names.get(w, '')}", x) for w, x in zip(weights, shown)],
                     columns=min(4, args.per_class), value_range=value_range,
                     pixels_per_unit=4)
  return scores


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/diffusion_guidance")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--weights", default="0,1,2,3,5")
  parser.add_argument("--per-class", type=int, default=50,
                      help="samples per class and weight for the scores")
  parser.add_argument("--sample-steps", type=int, default=50, help="DDIM steps")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also copy guidance.png and scores.png into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  parser.add_argument("--reuse", action="store_true",
                      help="restore a finished training run under --out instead of "
                           "retraining (sampling and scores are recomputed)")
  args = parser.parse_args(argv)
  if args.quick:
    args.steps, args.per_class, args.sample_steps = 3, 4, 10
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  weights = [float(w) for w in args.weights.split(",")]

  started = time.perf_counter()
  # --reuse: a finished run's last checkpoint is restored (no steps left to train).
  reuse = args.reuse and (out / "run" / "checkpoints").is_dir()
  result = jaxgen.fit(get_config(args.quick, args.steps, args.sample_steps),
                      workdir=out / "run", resume=reuse, overwrite=not reuse)
  train_seconds = time.perf_counter() - started
  if reuse:  # the training time of the run itself, from its metrics file
    history = logs.read_jsonl(out / "run" / "metrics.jsonl")
    train_seconds = max((r.get("time", 0.0) for r in history), default=train_seconds)
  clf, real = reference_classifier(result.config)
  scores = sample_and_score(result, clf, weights, args, out)
  save_scores(out / "scores.png", scores, real, args.steps)
  if args.figures:
    figures = pathlib.Path(args.figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "guidance.png", figures / "ddpm_guidance_samples.png")
    shutil.copyfile(out / "scores.png", figures / "ddpm_guidance_scores.png")
  summary = {
      "weights": weights, "scores": scores, "steps": args.steps,
      "samples_per_class": args.per_class, "ddim_steps": args.sample_steps,
      "reference_classifier_test_accuracy": real["classifier_test_accuracy"],
      "real_digits": real,
      "train_seconds": train_seconds, "quick": args.quick,
      "grid": str(out / "guidance_grid.png"),
  }
  (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  print(f"wrote {out / 'summary.json'}")
  return summary


if __name__ == "__main__":
  main()
