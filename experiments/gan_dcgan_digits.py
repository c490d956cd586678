"""DCGAN on digits and MNIST: samples, latent interpolation, latent vector arithmetic.

Run:  python experiments/gan_dcgan_digits.py [--quick] [--out runs/gan_dcgan_digits]
          [--datasets digits,mnist] [--steps N] [--mnist-steps N] [--figures]
          [--architecture dcgan|style]

Trains the DCGAN (non-saturating objective, Adam 2e-4/β1 0.5, BatchNorm in both
networks, EMA generator for sampling) on sklearn digits (8x8) and on
idx:../shared/data/mnist-t10k (28x28, the fixed 8,000/2,000 split of MNIST's
test set, so not the 60k training set of the papers). For each dataset it writes:

  samples.png        64 samples of the EMA generator
  interpolation.png  spherical (top rows) and linear (bottom rows) paths between
                     random codes, decoded (jaxgen.latent.interpolate)
  arithmetic.png     latent arithmetic as in Radford et al. 2016, fig. 7: the
                     mean code of 3 bold samples of digit a, minus that of 3 thin
                     samples of a, plus that of 3 thin samples of digit b
                     (columns: bold a, thin a, thin b, the sum decoded)
  results.json/.md   a logistic-regression classifier trained on the real
                     training images scores 10,000 samples (classifier score,
                     label entropy, classes generated; the real test images give
                     the reference), and the arithmetic is checked over all
                     ordered digit pairs: how often the result is classified as
                     b, and how much ink (stroke mass) it gains over thin b.

With --sample-metrics N, also `jaxgen.evaluate(run, metrics="fid,kid,pr",
num=N, seed=0)` on the trained run: FID, KID and precision/recall of N samples
against the training split through the shipped LeNet of the data
(lenet_digits / lenet_mnist), into results.json's `sample_metrics`.

With --figures also small copies for docs/gans.md in docs/figures/
(`--figures-dir`): dcgan_<dataset>_samples.png, _interpolation.png, _arithmetic.png.

`--architecture style` runs the same protocol with the style-based generator
(`model.architecture=style`: mapping network, AdaIN, per-layer noise; the same
DCGAN discriminator, widths, objective and optimizer) into
runs/gan_style_digits by default; its figures are stylegan_<dataset>_*.png. The
per-layer noise of the decoded samples comes from one fixed key.

"Bold" and "thin" are the samples with the most and least ink among those the
classifier assigns to the digit with probability > 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import latent  # noqa: E402
from jaxgen.metrics.classifier_score import classifier_score, label_statistics  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

MNIST = "idx:../shared/data/mnist-t10k"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
SAMPLE_METRICS = "fid,kid,pr"


def train_config(name: str, steps: int, quick: bool, architecture: str = "dcgan"):
  data = MNIST if name == "mnist" else "digits"
  config = jaxgen.get_config("gan", data)
  overrides = [f"model.architecture={architecture}", "train.progress=False",
               "train.checkpoint_every=0", "train.keep_checkpoints=1", "train.eval_every=0",
               "train.log_every=100", "train.final_eval=False"]
  if name == "mnist":
    # Half the paper's widths, to fit a CPU budget.
    overrides += ["model.generator_channels=(64, 32)", "model.discriminator_channels=(32, 64)"]
  if quick:
    overrides += ["model.generator_channels=(8, 4)", "model.discriminator_channels=(4, 8)",
                  "model.latent_dim=8", "data.batch_size=16", "data.max_examples=400",
                  "train.num_samples=16", "model.ema_decay=0.9"]
  config_lib.apply_overrides(config, overrides)
  config.train.steps = steps
  config.train.sample_every = 0 if quick else max(steps // 4, 1)
  return config


def classifier(dataset):
  """A logistic regression on the real training images (flattened)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  x, y = data_lib.eval_arrays(dataset, "train")
  model = LogisticRegression(max_iter=300, C=0.5)
  model.fit(x.reshape(len(x), -1), y)
  return model


def ink(images: np.ndarray, value_range) -> np.ndarray:
  """Mean intensity in [0, 1] per image (the stroke mass)."""
  lo, hi = value_range
  return ((np.asarray(images) - lo) / (hi - lo)).reshape(len(images), -1).mean(-1)


def arithmetic(decode, clf, z: np.ndarray, images: np.ndarray, value_range,
               confidence: float = 0.9, num_classes: int = 10) -> tuple[dict, list]:
  """Bold a - thin a + thin b, for every ordered pair (a, b) with enough samples."""
  probs = clf.predict_proba(images.reshape(len(images), -1))
  labels, conf = probs.argmax(-1), probs.max(-1)
  mass = ink(images, value_range)
  bold, thin = {}, {}
  for c in range(num_classes):
    idx = np.flatnonzero((labels == c) & (conf > confidence))
    if len(idx) >= 6:
      order = idx[np.argsort(mass[idx])]
      thin[c], bold[c] = order[:3], order[-3:]
  pairs = [(a, b) for a in bold for b in bold if a != b]
  results, shown = [], []
  for a, b in pairs:
    code = z[bold[a]].mean(0) - z[thin[a]].mean(0) + z[thin[b]].mean(0)
    codes = np.stack([z[bold[a]].mean(0), z[thin[a]].mean(0), z[thin[b]].mean(0), code])
    decoded = np.asarray(decode(jnp.asarray(codes)))
    predicted = int(clf.predict(decoded[3:4].reshape(1, -1))[0])
    gain = float(ink(decoded[3:4], value_range)[0] - ink(decoded[2:3], value_range)[0])
    results.append({"a": int(a), "b": int(b), "predicted": predicted, "ink_gain": gain})
    # Shown: one pair per digit a, with b the next digit that has samples.
    classes = sorted(bold)
    if len(shown) < 6 and b == classes[(classes.index(a) + 1) % len(classes)]:
      shown.append(decoded)
  summary = {
      "pairs": len(results),
      "result_classified_as_b": float(np.mean([r["predicted"] == r["b"] for r in results]))
      if results else None,
      "ink_increased": float(np.mean([r["ink_gain"] > 0 for r in results])) if results else None,
      "mean_ink_gain": float(np.mean([r["ink_gain"] for r in results])) if results else None,
      "mean_ink_gap_bold_minus_thin": float(np.mean(
          [mass[bold[c]].mean() - mass[thin[c]].mean() for c in bold])) if bold else None,
  }
  return summary, shown


def fixed_batch(fn, size: int):
  """fn over [N, ...] in chunks of `size` (padded): one compiled shape for any N."""
  def apply(z):
    z = np.asarray(z)
    pad = -len(z) % size
    padded = np.concatenate([z, np.zeros((pad,) + z.shape[1:], z.dtype)])
    out = [np.asarray(fn(jnp.asarray(padded[i:i + size])))
           for i in range(0, len(padded), size)]
    return np.concatenate(out)[:len(z)]
  return apply


def run_dataset(name: str, steps: int, args, out: pathlib.Path) -> dict:
  config = train_config(name, steps, args.quick, args.architecture)
  folder = out / name
  started = time.perf_counter()
  # The quick run skips the workdir (checkpoints, the engine's sample grids)
  # unless the sample metrics evaluate the saved run.
  workdir = folder / "run" if not args.quick or args.sample_metrics else None
  result = jaxgen.fit(config, workdir=workdir, overwrite=True)
  seconds = time.perf_counter() - started
  method, state, spec = result.method, result.state, result.spec
  latent_dim = config.model.latent_dim
  # The style generator's per-layer noise: one fixed key (example i of a chunk of
  # 500 gets the same noise in every chunk).
  noise = {"noise_key": jax.random.PRNGKey(3)} if args.architecture == "style" else {}
  decode = fixed_batch(jax.jit(lambda z: method.decode(state, z, **noise)), 500)
  shape = tuple(spec.shape)
  dataset = data_lib.from_config(config.data)

  # Samples.
  num = 1000 if args.quick else 10_000
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (num, latent_dim)))
  images = decode(z)
  grid.save_image_grid(folder / "samples.png", images[:64], columns=8,
                       value_range=spec.value_range)

  # Interpolation between random codes: spherical rows, then linear rows.
  ends = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (2, 4, latent_dim)))
  rows = []
  for kind in ("spherical", "linear"):
    path = latent.interpolate(jnp.asarray(ends[0]), jnp.asarray(ends[1]), 10, kind=kind)
    decoded = np.asarray(decode(path.reshape(-1, latent_dim))).reshape((10, 4) + shape)
    rows += [decoded[:, r] for r in range(4)]
  grid.save_image_grid(folder / "interpolation.png", np.concatenate(rows), columns=10,
                       value_range=spec.value_range)

  # Classifier-based scores and latent arithmetic.
  clf = classifier(dataset)
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  real_probs = clf.predict_proba(x_test.reshape(len(x_test), -1))
  probs = clf.predict_proba(images.reshape(len(images), -1))
  # The quick run's generator is untrained: take every sample as confident.
  summary, shown = arithmetic(decode, clf, z, images, spec.value_range,
                              confidence=0.0 if args.quick else 0.9)
  if shown:
    grid.save_image_grid(folder / "arithmetic.png", np.concatenate(shown), columns=4,
                         value_range=spec.value_range)
  record = {
      "dataset": config.data.name, "architecture": args.architecture, "steps": steps,
      "train_seconds": seconds,
      "generator_channels": list(config.model.generator_channels),
      "discriminator_channels": list(config.model.discriminator_channels),
      "classifier_test_accuracy": float(np.mean(real_probs.argmax(-1) == y_test)),
      "samples": {"classifier_score": classifier_score(probs), **label_statistics(probs)},
      "real_test_images": {"classifier_score": classifier_score(real_probs),
                           **label_statistics(real_probs)},
      "arithmetic": summary,
      "final_train_metrics": result.metrics["train"],
  }
  if args.sample_metrics:
    started = time.perf_counter()
    evaluated = jaxgen.evaluate(workdir, metrics=SAMPLE_METRICS, num=args.sample_metrics,
                                seed=0, progress=not args.quick)
    # The metric names carry the network's: fid_lenet_mnist -> lenet_mnist.
    network = next(k for k in evaluated["metrics"] if k.startswith("fid_"))[len("fid_"):]
    record["sample_metrics"] = {"num_samples": args.sample_metrics, "seed": 0,
                                "network": network, "metrics": evaluated["metrics"],
                                "seconds": time.perf_counter() - started,
                                "protocol": evaluated["protocol"][network]}
  (folder / "results.json").write_text(json.dumps(record, indent=2) + "\n")
  return record


def markdown(records: dict[str, dict]) -> str:
  lines = ["| dataset | steps | classifier score (samples / real) | label entropy "
           "(samples / real, max) | classes | arithmetic → b | ink gained |",
           "|---|---|---|---|---|---|---|"]
  for name, r in records.items():
    s, real, a = r["samples"], r["real_test_images"], r["arithmetic"]
    arith = (f"{a['result_classified_as_b']:.2f} of {a['pairs']} pairs"
             if a["pairs"] else "n/a")
    gain = f"{a['ink_increased']:.2f} (mean {a['mean_ink_gain']:+.3f})" if a["pairs"] else "n/a"
    lines.append(f"| {name} | {r['steps']} | {s['classifier_score']:.2f} / "
                 f"{real['classifier_score']:.2f} | {s['label_entropy']:.2f} / "
                 f"{real['label_entropy']:.2f}, {s['max_label_entropy']:.2f} | "
                 f"{s['classes_generated']} | {arith} | {gain} |")
  scored = {name: r["sample_metrics"] for name, r in records.items() if r.get("sample_metrics")}
  if scored:
    lines += ["", "| dataset | samples | FID ↓ | KID ×10³ ↓ | precision ↑ | recall ↑ |",
              "|---|---|---|---|---|---|"]
    for name, m in scored.items():
      values, net = m["metrics"], m["network"]
      lines.append(f"| {name} ({net}) | {m['num_samples']:,} | {values[f'fid_{net}']:.2f} | "
                   f"{1e3 * values[f'kid_{net}']:.1f} ± {1e3 * values[f'kid_{net}_std']:.1f} | "
                   f"{values[f'pr_{net}_precision']:.3f} | {values[f'pr_{net}_recall']:.3f} |")
  return "\n".join(lines) + "\n"


def copy_figures(folder: pathlib.Path, figures: pathlib.Path, name: str,
                 prefix: str = "dcgan") -> None:
  """Palette copies (tens of KB) of a dataset's grids for the docs."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  figures.mkdir(parents=True, exist_ok=True)
  for kind in ("samples", "interpolation", "arithmetic"):
    if (folder / f"{kind}.png").is_file():
      with Image.open(folder / f"{kind}.png") as image:
        small = image.convert("RGB").quantize(colors=64)
      small.save(figures / f"{prefix}_{name}_{kind}.png", optimize=True)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=None,
                      help="default runs/gan_dcgan_digits (style: runs/gan_style_digits)")
  parser.add_argument("--architecture", default="dcgan", choices=("dcgan", "style"),
                      help="the generator: DCGAN or style-based (same discriminator)")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--datasets", default="digits,mnist",
                      help="comma-separated; results.json keeps the others' earlier entries")
  parser.add_argument("--steps", type=int, default=0, help="digits steps (default 3000)")
  parser.add_argument("--mnist-steps", type=int, default=0,
                      help="default 5000 (11 minutes on 2 loaded cores, 2026-12-07)")
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of the figures into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  parser.add_argument("--sample-metrics", type=int, default=0, metavar="N",
                      help="also FID/KID/precision/recall of N samples through the "
                           "data's LeNet (0: skip)")
  args = parser.parse_args(argv)
  if args.sample_metrics and args.sample_metrics < 10:
    parser.error(f"--sample-metrics must be 0 (skip) or at least 10, "
                 f"got {args.sample_metrics}")
  out = pathlib.Path(args.out or ("runs/gan_style_digits" if args.architecture == "style"
                                  else "runs/gan_dcgan_digits"))
  names = [n for n in args.datasets.split(",") if n]
  if args.quick:
    names = [n for n in names if n == "digits"]
  # Datasets not run this time keep their earlier entry.
  previous = out / "results.json"
  records = json.loads(previous.read_text()) if previous.is_file() and not args.quick else {}
  for name in names:
    if name == "mnist" and not os.path.isdir(MNIST.split(":", 1)[1]):
      print(f"skipping mnist: {MNIST} not found")
      continue
    steps = (args.mnist_steps or 5000) if name == "mnist" else (args.steps or 3000)
    if args.quick:
      steps = 4
    records[name] = run_dataset(name, steps, args, out)
    print(json.dumps({name: records[name]["samples"], "arithmetic": records[name]["arithmetic"]}),
          flush=True)
    if args.figures:
      copy_figures(out / name, pathlib.Path(args.figures_dir), name,
                   "stylegan" if args.architecture == "style" else "dcgan")
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.md").write_text(markdown(records))
  (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
  return records


if __name__ == "__main__":
  main()
