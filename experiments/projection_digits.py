"""Projection onto a DCGAN and editing (Zhu et al. 2016, iGAN) on test digits.

Run:  python experiments/projection_digits.py [--quick] [--out runs/projection_digits]
          [--train-steps 3000] [--steps 200] [--restarts 4] [--encoder-steps 2000]
          [--num-images 150]
          [--feature-weight 0.1] [--figures]

Trains the `gan` method's DCGAN on sklearn digits (8x8, the fixed 1,438/359
split; `jaxgen train gan --data digits --steps 3000`, defaults otherwise) in
OUT/dcgan — or reuses the run there — then projects the first 150 (--num-images)
*test* digits, never seen in training, onto its EMA generator (`jaxgen.project`):

  curves      mean pixel MSE (data range [-1, 1]) of the best code after t Adam
              steps, for 1, 2, 4 random restarts, with and without the
              encoder's code as restart 0 (`jaxgen.train_encoder`, an MLP
              trained on G's own samples). One projection with 4 random
              restarts and one from the encoder give every curve: restart r
              starts from fold_in(key, r) whatever the number of restarts,
              so the first r restarts of the 4 are the run with r restarts.
  table       the same at a few step counts, the digit LeNet's accuracy on the
              projections (does a projection keep the digit?), the same for
              as many training digits (seen by D in training), and with the LeNet
              feature loss (--feature-weight).
  edit        a class direction mean(z | b) − mean(z | a) from the projected
              codes of one half of the test digits, added to the codes of the
              other half's digits a: how often LeNet then reads b (all 90
              ordered pairs, amount 1).

Writes OUT/results.json and results.md; with --figures, docs/figures/
projection_curves.png and projection_digits.png (real digits, projections,
an edit).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import projection  # noqa: E402
from jaxgen.metrics import lenet  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
TRAIN_OVERRIDES = {"train.eval_every": 0, "train.final_eval": False}
QUICK_OVERRIDES = {"model.generator_channels": (8, 4), "model.discriminator_channels": (4, 8),
                   "model.latent_dim": 8, "data.batch_size": 16, "train.progress": False}


def trained_run(out: pathlib.Path, steps: int, quick: bool):
  """The DCGAN in OUT/dcgan: trained there unless a run with `steps` steps exists."""
  workdir = out / "dcgan"
  if jaxgen.api.has_run(workdir) and not quick:
    run = jaxgen.load(workdir)
    if run.step == steps and run.config.method == "gan":
      print(f"reusing {workdir} (step {run.step})", flush=True)
      return run, None
  started = time.perf_counter()
  overrides = {**TRAIN_OVERRIDES, **(QUICK_OVERRIDES if quick else {})}
  jaxgen.train("gan", data="digits", workdir=workdir, steps=steps, overrides=overrides,
               overwrite=True)
  return jaxgen.load(workdir), time.perf_counter() - started


def accuracy(classifier, images, labels) -> float:
  logits = lenet.logits(classifier, images, value_range=(-1.0, 1.0))
  return float(np.mean(logits.argmax(-1) == labels))


def curves(random_history, encoder_history, restarts):
  """Mean best-so-far loss per step: {label: [steps + 1]} for r in `restarts`.

  Both runs share restarts 1, 2, ... (keys fold_in(key, r)); restart 0 is a
  random code in one and the encoder's code in the other, so their first r
  restarts are the runs with r restarts, without and with the encoder.
  """
  out = {}
  for r in restarts:
    out[f"random, {r} restart{'s' * (r > 1)}"] = random_history[:, :r].min(1).mean(-1)
    out[f"encoder + {r - 1} random"] = encoder_history[:, :r].min(1).mean(-1)
  return out


def edits(run, classifier, z, labels, amounts=(0.0, 0.5, 1.0, 1.5)):
  """Class directions fitted on even-indexed codes, applied to odd-indexed ones.

  Every ordered pair (a, b) whose classes both occur: the direction
  mean(z | b) − mean(z | a) of the fitting half is added to the held-out codes
  of digits a; all pairs are decoded in one `projection.edit` call.
  """
  fit, held = np.arange(0, len(z), 2), np.arange(1, len(z), 2)
  pairs, codes, directions = [], [], []
  for a in range(10):
    for b in range(10):
      sources = held[labels[held] == a]
      if a == b or not len(sources) or not all(np.any(labels[fit] == c) for c in (a, b)):
        continue
      direction = projection.class_direction(z[fit], labels[fit], source=a, target=b)
      pairs.append((a, b, len(sources)))
      codes.append(z[sources])
      directions.append(np.broadcast_to(direction, z[sources].shape))
  images = projection.edit(run, np.concatenate(codes), np.concatenate(directions), amounts)
  predicted = lenet.logits(classifier, images.reshape((-1,) + images.shape[2:]),
                           value_range=(-1.0, 1.0)).argmax(-1).reshape(images.shape[:2])
  results, shown, start = [], [], 0
  for a, b, n in pairs:
    p = predicted[:, start:start + n]
    results.append({"a": a, "b": b, "n": int(n),
                    "classified_b": [float(np.mean(row == b)) for row in p],
                    "classified_a": [float(np.mean(row == a)) for row in p]})
    if (a, b) in ((3, 8), (1, 7), (4, 9), (0, 6)):
      shown.append(images[:, start:start + min(n, 4)])
    start += n
  # Means over pairs (each pair weighs the same, whatever its number of digits).
  summary = {"pairs": len(results), "amounts": list(amounts),
             "classified_b_by_amount": [float(np.mean([r["classified_b"][i] for r in results]))
                                        for i in range(len(amounts))],
             "classified_a_by_amount": [float(np.mean([r["classified_a"][i] for r in results]))
                                        for i in range(len(amounts))]}
  return summary, results, shown


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/projection_digits")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--train-steps", type=int, default=3000)
  parser.add_argument("--steps", type=int, default=200, help="Adam steps of the projection")
  parser.add_argument("--restarts", type=int, default=4)
  parser.add_argument("--num-images", type=int, default=150,
                      help="the first N test digits (and N training digits) projected")
  parser.add_argument("--encoder-steps", type=int, default=2000)
  parser.add_argument("--learning-rate", type=float, default=0.05)
  parser.add_argument("--feature-weight", type=float, default=0.1)
  parser.add_argument("--figures", action="store_true", help="write docs/figures/ PNGs")
  args = parser.parse_args(argv)
  if args.quick:
    args.train_steps, args.steps, args.restarts, args.encoder_steps = 2, 6, 2, 5
  out = pathlib.Path(args.out)
  run, train_seconds = trained_run(out, args.train_steps, args.quick)
  dataset = data_lib.from_config(run.config.data)
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  x_train, y_train = data_lib.eval_arrays(dataset, "train")
  num = 20 if args.quick else args.num_images
  x_test, y_test, x_train, y_train = x_test[:num], y_test[:num], x_train[:num], y_train[:num]
  classifier = lenet.load("digits")
  options = {"steps": args.steps, "learning_rate": args.learning_rate}
  timings = {}

  started = time.perf_counter()
  encoder = jaxgen.train_encoder(run, steps=args.encoder_steps, seed=0)
  timings["encoder_seconds"] = time.perf_counter() - started
  started = time.perf_counter()
  random = jaxgen.project(run, x_test, restarts=args.restarts, seed=0, **options)
  timings["projection_seconds"] = time.perf_counter() - started
  encoded = jaxgen.project(run, x_test, restarts=args.restarts, seed=0, encoder=encoder,
                           **options)
  featured = jaxgen.project(run, x_test, restarts=1, seed=0, encoder=encoder,
                            feature_weight=args.feature_weight, **options)
  seen = jaxgen.project(run, x_train, restarts=args.restarts, seed=0, encoder=encoder,
                        **options)

  restarts = [r for r in (1, 2, 4, 8) if r <= args.restarts]
  curve = curves(random[2]["history"], encoded[2]["history"], restarts)
  checkpoints = sorted({t for t in (0, 10, 30, 100, 300, 1000) if t < args.steps}
                       | {args.steps})
  r = args.restarts
  best = {f"test, {r} random": (random, y_test),
          f"test, encoder + {r - 1} random": (encoded, y_test),
          f"test, encoder only, + feature loss (weight {args.feature_weight:g})":
              (featured, y_test),
          f"train, encoder + {r - 1} random": (seen, y_train)}
  table = {name: {"pixel_mse": float(np.mean(result[2]["pixel"])),
                  "lenet_accuracy": accuracy(classifier, result[1], labels)}
           for name, (result, labels) in best.items()}
  table["real test digits"] = {"pixel_mse": 0.0,
                               "lenet_accuracy": accuracy(classifier, x_test, y_test)}
  edit_summary, edit_pairs, shown = edits(run, classifier, encoded[0], y_test)
  record = {
      "data": f"digits (sklearn, 8x8), fixed 1,438/359 split; projected: the first "
              f"{len(x_test)} test digits (and {len(x_train)} training digits)",
      "generator": {"workdir": str(run.workdir), "train_steps": run.step,
                    "train_seconds": train_seconds, "method": run.config.method,
                    "architecture": run.config.model.architecture,
                    "latent_dim": run.config.model.latent_dim},
      "options": {**options, "restarts": args.restarts, "encoder_steps": args.encoder_steps,
                  "feature_weight": args.feature_weight,
                  "encoder_final_loss": float(np.mean(encoder.losses[-100:]))},
      "units": "pixel MSE in the data range [-1, 1], mean over images",
      "curves_at": {str(t): {k: float(v[t]) for k, v in curve.items()} for t in checkpoints},
      "table": table, "edit": edit_summary, "edit_pairs": edit_pairs,
      "timings_under_load": timings,
  }
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
  (out / "results.md").write_text(markdown(record))
  print(markdown(record), flush=True)
  if args.figures:
    write_figures(FIGURES, curve, x_test, random[1], encoded[1], shown, args.restarts)
  return record


def markdown(record: dict) -> str:
  names = list(next(iter(record["curves_at"].values())))
  lines = ["| steps | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
  for t, row in record["curves_at"].items():
    lines.append(f"| {t} | " + " | ".join(f"{row[n]:.4f}" for n in names) + " |")
  lines += ["", "| projection | pixel MSE | LeNet accuracy |", "|---|---|---|"]
  for name, row in record["table"].items():
    lines.append(f"| {name} | {row['pixel_mse']:.4f} | {row['lenet_accuracy']:.3f} |")
  e = record["edit"]
  lines += ["", f"edit (z + a·(mean z|b − mean z|a), {e['pairs']} ordered pairs): read as b "
                f"{', '.join(f'{v:.2f}' for v in e['classified_b_by_amount'])} and as a "
                f"{', '.join(f'{v:.2f}' for v in e['classified_a_by_amount'])} at a = "
                f"{', '.join(map(str, e['amounts']))}"]
  return "\n".join(lines) + "\n"


def write_figures(folder: pathlib.Path, curve, x, random_rec, encoded_rec, shown, restarts):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  folder.mkdir(parents=True, exist_ok=True)
  fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (label, values) in enumerate(curve.items()):
    ax.plot(np.arange(len(values)), values, color=colours[(i // 2) % len(colours)],
            linestyle="--" if "encoder" in label else "-", label=label, linewidth=1.2)
  ax.set_xscale("symlog", linthresh=10)
  ax.set_yscale("log")
  ax.set_xlabel("Adam steps")
  ax.set_ylabel("pixel MSE (range [-1, 1])")
  ax.set_title(f"Projecting {len(x)} test digits onto a DCGAN", fontsize=9)
  ax.legend(fontsize=6, ncol=2)
  fig.tight_layout()
  fig.savefig(folder / "projection_curves.png")
  plt.close(fig)
  rows = [x[:12], random_rec[:12], encoded_rec[:12]]
  grid.save_row_groups(folder / "projection_digits.png", rows, columns=12,
                       value_range=(-1.0, 1.0))
  if shown:
    # Each shown pair: rows of amounts 0, 0.5, 1, 1.5 for 4 digits a.
    edit_rows = np.concatenate([np.transpose(s, (1, 0) + tuple(range(2, s.ndim))).reshape(
        (-1,) + s.shape[2:]) for s in shown])
    grid.save_image_grid(folder / "projection_edit.png", edit_rows, columns=shown[0].shape[0],
                         value_range=(-1.0, 1.0))
  print(f"wrote figures in {folder}", flush=True)


if __name__ == "__main__":
  main()
