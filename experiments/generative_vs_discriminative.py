"""Generative against discriminative classifiers: Ng & Jordan (2002)'s learning curves.

Run:  python experiments/generative_vs_discriminative.py [--quick] [--out runs/gen_vs_disc] [--figures]

For each dataset and each training-set size m, Gaussian naive Bayes (the
generative classifier) and multinomial logistic regression (its discriminative
counterpart) are fit on the same random m training examples, for several
seeds, and their test error is measured on the whole fixed test split. Ng &
Jordan's claim: naive Bayes approaches its (higher) asymptotic error with far
fewer examples; logistic regression reaches a lower one, so the curves cross.

Protocol:
* Data: `digits` (jaxgen's fixed split, 1,438 train / 359 test, pixels / 16),
  and scikit-learn's breast cancer (569 × 30, 2 classes) and wine (178 × 13,
  3 classes), each split once 70/30 (stratified, random_state 0), features
  standardised with the training pool's mean and std, written to `npz:` files.
* One program per (dataset, m, classifier): `train.seeds` trains all seeds
  together; `model.train_on='first_batch'` with `data.batch_size=m` makes each
  seed's first training batch (a uniform draw of m examples from the training
  pool, different per seed) its training set — the same m examples for both
  classifiers, so the comparison is paired.
* Naive Bayes: sklearn's GaussianNB in closed form with its default
  var_smoothing 1e-9, and — as a sensitivity check, not a tuned setting —
  with var_smoothing 0.01.
  Logistic regression: sklearn's C = 1 (mean cross-entropy + ‖W‖²/(2m)), full
  batch Adam (lr 0.05, 1,000 steps), weights from zero.
* Test error = the share of misclassified test examples; mean ± std over seeds.
  The crossing point is where the mean error of logistic regression first falls
  below naive Bayes' (interpolated linearly in log m); "none" when it never does.

Writes results.json, results.md and learning_curves.png to --out; with
--figures also a small copy, docs/figures/gen_vs_disc_curves.png (shown in
docs/classical.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

# name: (method, overrides). The second naive Bayes is a sensitivity check:
# sklearn's default var_smoothing leaves near-zero variances for pixels that
# are constant within a class in a small sample.
CLASSIFIERS = {
    "naive_bayes": ("gaussian_nb", ["model.var_smoothing=1e-9"]),
    "naive_bayes_smoothed": ("gaussian_nb", ["model.var_smoothing=0.01"]),
    "logistic_regression": ("logistic_regression", []),
}
LABELS = {"naive_bayes": "naive Bayes (generative)",
          "naive_bayes_smoothed": "naive Bayes, var_smoothing 0.01",
          "logistic_regression": "logistic regression (discriminative)"}
COLOURS = {"naive_bayes": "tab:orange", "naive_bayes_smoothed": "tab:red",
           "logistic_regression": "tab:blue"}
# Training-set sizes per dataset (the largest is at most the training pool).
SIZES = {
    "digits": (10, 20, 40, 80, 160, 320, 640, 1280),
    "breast_cancer": (6, 10, 20, 40, 80, 160, 320),
    "wine": (6, 10, 20, 40, 80, 120),
}
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
QUICK_SIZES = {"digits": (20, 200), "breast_cancer": (10, 100), "wine": (10, 60)}
LR_STEPS, LR_LEARNING_RATE = 1000, 0.05


def write_sklearn_npz(name: str, folder: pathlib.Path) -> pathlib.Path:
  """A fixed 70/30 stratified split of an sklearn dataset, standardised, as npz."""
  loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
  x, y = loader(return_X_y=True)
  x_train, x_test, y_train, y_test = train_test_split(
      x, y, test_size=0.3, stratify=y, random_state=0)
  mean, std = x_train.mean(0), x_train.std(0)
  path = folder / f"{name}.npz"
  np.savez(path, x_train=((x_train - mean) / std).astype(np.float32),
           y_train=y_train.astype(np.int32),
           x_test=((x_test - mean) / std).astype(np.float32),
           y_test=y_test.astype(np.int32))
  return path


def study_config(name: str, data: str, size: int, seeds: int, lr_steps: int):
  """The config of one (classifier, dataset, m) program, all seeds together."""
  method, overrides = CLASSIFIERS[name]
  config = jaxgen.get_config(method, data)
  config_lib.apply_overrides(config, [
      f"data.batch_size={size}", "model.train_on=first_batch", "train.num_devices=1",
      "train.progress=False", "train.num_samples=0", "train.eval_every=0",
      "train.checkpoint_every=0", "train.sample_every=0",
      # the whole test split in one evaluation batch (padding is masked)
      "train.eval_batch_size=512", *overrides])
  config.train.seeds = tuple(range(seeds))
  if method == "logistic_regression":
    config.train.steps = lr_steps
    config.train.log_every = lr_steps
    config.optim.learning_rate = LR_LEARNING_RATE
    config.model.inverse_regularization = 1.0
  return config


def crossing(sizes: list[int], nb: list[float], lr: list[float]) -> float | None:
  """m where logistic regression's mean error first falls below naive Bayes' (log-linear)."""
  gap = np.asarray(lr) - np.asarray(nb)          # > 0: naive Bayes better
  for i in range(1, len(sizes)):
    if gap[i - 1] > 0 >= gap[i]:
      t = gap[i - 1] / (gap[i - 1] - gap[i])
      return float(math.exp(math.log(sizes[i - 1])
                            + t * (math.log(sizes[i]) - math.log(sizes[i - 1]))))
  return None


def run_dataset(name: str, data: str, sizes: tuple[int, ...], args) -> dict:
  rows = []
  for size in sizes:
    row = {"m": size}
    for method in CLASSIFIERS:
      config = study_config(method, data, size, args.seeds, args.lr_steps)
      started = time.perf_counter()
      result = jaxgen.fit(config)
      errors = [float(e) for e in np.atleast_1d(result.metrics["eval"]["error"])]
      row[method] = {"errors": errors, "mean": float(np.mean(errors)),
                     "std": float(np.std(errors)), "seconds": time.perf_counter() - started}
    rows.append(row)
    print(f"{name:14s} m={size:5d}  " + "  ".join(
        f"{method} {row[method]['mean']:.3f}" for method in CLASSIFIERS), flush=True)
  spec = result.spec
  sizes = [r["m"] for r in rows]
  lr = [r["logistic_regression"]["mean"] for r in rows]
  return {"dataset": name, "data": data, "num_train_pool": spec.num_train,
          "num_test": spec.num_test, "dim": spec.dim, "num_classes": spec.num_classes,
          "rows": rows,
          "crossing_m": crossing(sizes, [r["naive_bayes"]["mean"] for r in rows], lr),
          "crossing_m_smoothed": crossing(
              sizes, [r["naive_bayes_smoothed"]["mean"] for r in rows], lr)}


def plot(report: dict, path: pathlib.Path, dpi: int = 120) -> None:
  datasets = report["datasets"]
  fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6))
  for ax, result in zip(np.atleast_1d(axes), datasets):
    sizes = [r["m"] for r in result["rows"]]
    for method, colour in COLOURS.items():
      mean = np.array([r[method]["mean"] for r in result["rows"]])
      std = np.array([r[method]["std"] for r in result["rows"]])
      ax.plot(sizes, mean, "o-", color=colour, label=LABELS[method])
      ax.fill_between(sizes, mean - std, mean + std, color=colour, alpha=0.2)
    for key, colour in (("crossing_m", "tab:orange"), ("crossing_m_smoothed", "tab:red")):
      if result[key]:
        ax.axvline(result[key], color=colour, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training examples m")
    ax.set_ylabel("test error")
    ax.set_title(f"{result['dataset']} (D={result['dim']}, {result['num_classes']} classes)")
  np.atleast_1d(axes)[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)



def markdown(report: dict) -> str:
  lines = [f"Seeds per size: {report['seeds']}; logistic regression: {report['lr_steps']} "
           "Adam steps. Test error, mean ± std over seeds.", ""]
  for result in report["datasets"]:
    crosses = [("%.0f" % result[k]) if result[k] else "none in range"
               for k in ("crossing_m", "crossing_m_smoothed")]
    lines += [f"### {result['dataset']} ({result['num_train_pool']} train pool, "
              f"{result['num_test']} test, D={result['dim']}; logistic regression "
              f"overtakes naive Bayes at m ≈ {crosses[0]}, the smoothed one at m ≈ "
              f"{crosses[1]})", "",
              "| m | " + " | ".join(LABELS[c] for c in CLASSIFIERS) + " |",
              "|---:|" + "---:|" * len(CLASSIFIERS)]
    for row in result["rows"]:
      lines.append(f"| {row['m']} | " + " | ".join(
          f"{row[c]['mean']:.3f} ± {row[c]['std']:.3f}" for c in CLASSIFIERS) + " |")
    lines.append("")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="two sizes, two seeds, 50 LR steps")
  parser.add_argument("--out", default="runs/gen_vs_disc")
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--lr-steps", type=int, default=LR_STEPS)
  parser.add_argument("--figures", action="store_true",
                      help="also write docs/figures/gen_vs_disc_curves.png")
  args = parser.parse_args(argv)
  if args.quick:
    args.seeds, args.lr_steps = 2, 50
  out = pathlib.Path(args.out)
  (out / "data").mkdir(parents=True, exist_ok=True)
  sizes = QUICK_SIZES if args.quick else SIZES
  started = time.perf_counter()
  datasets = [run_dataset("digits", "digits", sizes["digits"], args)]
  for name in ("breast_cancer", "wine"):
    path = write_sklearn_npz(name, out / "data")
    datasets.append(run_dataset(name, f"npz:{path}", sizes[name], args))
  report = {"seeds": args.seeds, "lr_steps": args.lr_steps, "quick": args.quick,
            "seconds": time.perf_counter() - started, "datasets": datasets}
  (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  (out / "results.md").write_text(markdown(report))
  plot(report, out / "learning_curves.png")
  if args.figures:
    FIGURES.mkdir(parents=True, exist_ok=True)
    plot(report, FIGURES / "gen_vs_disc_curves.png", dpi=70)
    shrink_png(FIGURES / "gen_vs_disc_curves.png")
  for result in datasets:
    print(f"{result['dataset']}: logistic regression overtakes naive Bayes at m = "
          f"{result['crossing_m']} (smoothed: {result['crossing_m_smoothed']})")
  return report


if __name__ == "__main__":
  main()
