"""Anomaly detection with an autoencoder's reconstruction error.

For each held-out class c: train an autoencoder on the training digits
*without* class c, score every test digit by its reconstruction error
(summed squared error of the decoded image), and report the ROC-AUC of
"class c" (the anomalies) against the other test digits (the normal ones).
An AUC of 0.5 is chance; 1.0 ranks every anomaly above every normal digit.

  python experiments/ae_anomaly_detection.py                 # 8x8 digits, all classes
  python experiments/ae_anomaly_detection.py --data idx:../shared/data/mnist-t10k
  python experiments/ae_anomaly_detection.py --quick         # tiny, for tests

Writes `anomaly_auc.json`, `anomaly_auc.md` and `error_histograms.png` under --out.
The training data without class c are written as `npz:` files under --out/data
(pixels already scaled to [0, 1]) and trained on through the ordinary engine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402


def per_example_errors(result: jaxgen.RunResult, x: np.ndarray,
                       batch_size: int = 1000) -> np.ndarray:
  """The method's per-example `squared_error` (its evaluate), for all of x."""
  evaluate = jax.jit(result.method.evaluate)
  key = jax.random.PRNGKey(0)  # unused by ae/sae; fixed for a dae
  errors = [np.asarray(evaluate(result.state, {"x": jnp.asarray(x[i:i + batch_size])},
                                key)["squared_error"])
            for i in range(0, len(x), batch_size)]
  return np.concatenate(errors)


def run(args: argparse.Namespace) -> dict:
  """Trains one autoencoder per held-out class and scores the test set."""
  from sklearn.metrics import roc_auc_score  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(args.out)
  (out / "data").mkdir(parents=True, exist_ok=True)
  dataset = data_lib.load_dataset(args.data)  # scaled to [0, 1], not binarized
  x_train, y_train = data_lib.eval_arrays(dataset, "train")
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  classes = sorted(set(int(c) for c in y_train))
  held_out = classes[:2] if args.quick else classes
  rows, histograms = [], {}
  for c in held_out:
    path = out / "data" / f"without_{c}.npz"
    keep = y_train != c
    np.savez(path, x_train=x_train[keep], y_train=y_train[keep], x_test=x_test,
             y_test=y_test)
    config = jaxgen.get_config(args.method, f"npz:{path}")
    config.model.code_dim = args.code_dim
    config.model.hidden = (32,) if args.quick else tuple(args.hidden)
    config.data.batch_size = 64
    config.train.steps = 30 if args.quick else args.steps
    config.train.seed = args.seed
    config.train.eval_every = 0
    config.train.final_eval = False
    config.train.progress = False
    start = time.perf_counter()
    result = jaxgen.fit(config)
    seconds = time.perf_counter() - start
    scores = per_example_errors(result, x_test)
    anomalous = (y_test == c).astype(int)
    auc = float(roc_auc_score(anomalous, scores))
    rows.append({"held_out_class": c, "roc_auc": auc,
                 "mean_error_normal": float(scores[anomalous == 0].mean()),
                 "mean_error_held_out": float(scores[anomalous == 1].mean()),
                 "num_train": int(keep.sum()), "num_test_normal": int((anomalous == 0).sum()),
                 "num_test_held_out": int(anomalous.sum()), "train_seconds": seconds})
    histograms[c] = (scores[anomalous == 0], scores[anomalous == 1])
    print(f"held out {c}: ROC-AUC {auc:.3f} ({seconds:.1f} s)", flush=True)

  report = {
      "experiment": "autoencoder anomaly detection (reconstruction error)",
      "data": args.data, "method": args.method, "code_dim": args.code_dim,
      "hidden": [32] if args.quick else list(args.hidden),
      "steps": 30 if args.quick else args.steps, "seed": args.seed, "quick": args.quick,
      "score": "summed squared error of decode(encode(x)) (evaluate's squared_error)",
      "metric": "sklearn.metrics.roc_auc_score, held-out class = positive",
      "mean_roc_auc": float(np.mean([r["roc_auc"] for r in rows])),
      "rows": rows,
  }
  (out / "anomaly_auc.json").write_text(json.dumps(report, indent=2) + "\n")
  lines = [f"# Anomaly detection: {args.method}, code {args.code_dim}, {args.data}", "",
           "| held-out class | ROC-AUC | mean error (normal) | mean error (held out) |",
           "|---|---|---|---|"]
  lines += [f"| {r['held_out_class']} | {r['roc_auc']:.3f} | {r['mean_error_normal']:.3f} "
            f"| {r['mean_error_held_out']:.3f} |" for r in rows]
  lines += [f"| **mean** | **{report['mean_roc_auc']:.3f}** | | |", ""]
  (out / "anomaly_auc.md").write_text("\n".join(lines))
  plot_histograms(out / "error_histograms.png", histograms)
  return report


def plot_histograms(path: pathlib.Path, histograms: dict) -> None:
  """Reconstruction-error histograms, normal vs held out, one panel per class."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  n = len(histograms)
  cols = min(n, 5)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), dpi=100,
                           squeeze=False)
  for ax, (c, (normal, anomalous)) in zip(axes.flat, histograms.items()):
    bins = np.linspace(0, np.percentile(np.concatenate([normal, anomalous]), 99), 30)
    ax.hist(normal, bins, density=True, alpha=0.6, label="normal")
    ax.hist(anomalous, bins, density=True, alpha=0.6, label=f"class {c}")
    ax.set_title(f"held out {c}", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)
  for ax in list(axes.flat)[n:]:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--out", default="runs/ae_anomaly_detection")
  parser.add_argument("--data", default="digits")
  parser.add_argument("--method", default="ae", choices=("ae", "dae", "sae"))
  parser.add_argument("--code-dim", type=int, default=8)
  parser.add_argument("--hidden", type=int, nargs="+", default=(256, 128))
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--seed", type=int, default=0)
  return run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
