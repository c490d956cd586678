"""InfoGAN on digits: the categorical code picks the digit, continuous codes vary style.

Run:  python experiments/gan_infogan_digits.py [--quick] [--out runs/gan_infogan_digits]
          [--data digits|mnist] [--steps N] [--figures]

Trains `infogan` (Chen et al. 2016: one 10-way categorical code, two U(-1, 1)
continuous codes, the Q head on the discriminator's trunk, λ = 1 for the
categorical and 0.1 for the continuous codes, Adam 1e-3 for G and 2e-4 for D)
and writes:

  codes_c1.png, codes_c2.png  row i: categorical code i; columns: the continuous
                              code c1 (or c2) from -2 to 2 (beyond the training
                              range ±1, as in the paper's figure 2); z fixed
                              per figure, the other continuous code 0
  results.json/.md            a logistic regression trained on the real
                              training digits classifies 500 samples per
                              categorical value (random z and continuous codes):
                              each value's majority digit and purity, how many
                              distinct digits the 10 values map to; Q's accuracy
                              at recovering the categorical code; for each
                              continuous code, the Spearman correlation of its
                              value with the ink, width and slant of the image
                              (z and the categorical code held fixed)

With --figures also small copies of codes_c1.png and codes_c2.png for
docs/gans.md in docs/figures/ (`--figures-dir`): infogan_<data>_codes_c1.png,
infogan_<data>_codes_c2.png.
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
import scipy.stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.viz import grid  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

MNIST = "idx:../shared/data/mnist-t10k"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"



def shape_measures(images: np.ndarray, value_range) -> dict[str, np.ndarray]:
  """Ink (mean intensity), width (horizontal std) and slant (x-y shear) per image."""
  lo, hi = value_range
  ink = np.clip((np.asarray(images)[..., 0] - lo) / (hi - lo), 0, 1)  # [N, H, W]
  n, h, w = ink.shape
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  mass = ink.sum((1, 2)) + 1e-8
  mx = (ink * xs).sum((1, 2)) / mass
  my = (ink * ys).sum((1, 2)) / mass
  dx, dy = xs[None] - mx[:, None, None], ys[None] - my[:, None, None]
  width = np.sqrt((ink * dx**2).sum((1, 2)) / mass)
  slant = (ink * dx * dy).sum((1, 2)) / ((ink * dy**2).sum((1, 2)) + 1e-8)
  return {"ink": ink.mean((1, 2)), "width": width, "slant": slant}


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/gan_infogan_digits")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--data", default="digits", choices=("digits", "mnist"))
  parser.add_argument("--steps", type=int, default=0, help="default 4000 (quick: 4)")
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of the code sweeps into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  steps = args.steps or (4 if args.quick else 4000)
  config = jaxgen.get_config("infogan", MNIST if args.data == "mnist" else "digits")
  overrides = ["train.progress=False", "train.checkpoint_every=0", "train.keep_checkpoints=1",
               "train.log_every=100"]
  if args.data == "mnist":
    overrides += ["model.generator_channels=(64, 32)", "model.discriminator_channels=(32, 64)"]
  if args.quick:
    overrides += ["model.generator_channels=(8, 4)", "model.discriminator_channels=(4, 8)",
                  "model.latent_dim=4", "model.q_hidden=8", "data.batch_size=16",
                  "data.max_examples=400", "train.num_samples=16", "model.ema_decay=0.9",
                  "train.sample_every=0"]
  config_lib.apply_overrides(config, overrides)
  config.train.steps = steps
  config.train.eval_every = 0
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=None if args.quick else out / "run", overwrite=True)
  seconds = time.perf_counter() - started
  method, state, spec = result.method, result.state, result.spec
  m = config.model
  categories, continuous = m.categorical, m.continuous

  @jax.jit
  def decode(z, categorical, codes):
    return method.decode(state, z, categorical=categorical, continuous=codes)

  # Figures: one fixed z, rows = categorical value, columns = one continuous code.
  values = np.linspace(-2.0, 2.0, 9)
  z = jax.random.normal(jax.random.PRNGKey(1), (1, m.latent_dim))
  cat = np.repeat(np.arange(categories), len(values))
  figures = {}
  for k in range(continuous):
    codes = np.zeros((len(cat), continuous), np.float32)
    codes[:, k] = np.tile(values, categories)
    images = np.asarray(decode(jnp.repeat(z, len(cat), 0), jnp.asarray(cat), jnp.asarray(codes)))
    grid.save_image_grid(out / f"codes_c{k + 1}.png", images, columns=len(values),
                         value_range=spec.value_range)
    figures[f"c{k + 1}"] = images

  # Categorical code -> digit class, through a classifier of real digits.
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  dataset = data_lib.from_config(config.data)
  x_train, y_train = data_lib.eval_arrays(dataset, "train")
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  clf = LogisticRegression(max_iter=300, C=0.5).fit(x_train.reshape(len(x_train), -1), y_train)
  per_value = 100 if args.quick else 500
  key_z, key_c = jax.random.split(jax.random.PRNGKey(2))
  n = categories * per_value
  zs = jax.random.normal(key_z, (n, m.latent_dim))
  cats = jnp.repeat(jnp.arange(categories), per_value)
  conts = jax.random.uniform(key_c, (n, continuous), minval=-1.0, maxval=1.0)
  samples = np.asarray(decode(zs, cats, conts))
  predicted = clf.predict(samples.reshape(n, -1)).reshape(categories, per_value)
  mapping, purity = [], []
  for c in range(categories):
    counts = np.bincount(predicted[c], minlength=10)
    mapping.append(int(counts.argmax()))
    purity.append(float(counts.max() / per_value))

  # Q recovers the categorical code of fresh samples (the engine's evaluation).
  q_error = result.metrics["eval"].get("q_categorical_error") if result.metrics["eval"] else None

  # Continuous codes: sweep each with z and the categorical code fixed.
  sweep = np.linspace(-1.0, 1.0, 11)
  correlations = {}
  reps = 20 if args.quick else 100
  zz = jax.random.normal(jax.random.PRNGKey(3), (reps, m.latent_dim))
  cc = jax.random.randint(jax.random.PRNGKey(4), (reps,), 0, categories)
  for k in range(continuous):
    codes = np.zeros((reps * len(sweep), continuous), np.float32)
    codes[:, k] = np.tile(sweep, reps)
    images = np.asarray(decode(jnp.repeat(zz, len(sweep), 0), jnp.repeat(cc, len(sweep)),
                               jnp.asarray(codes)))
    measures = shape_measures(images, spec.value_range)
    correlations[f"c{k + 1}"] = {
        name: float(np.nan_to_num(np.mean([
            scipy.stats.spearmanr(sweep, values.reshape(reps, len(sweep))[r]).statistic
            for r in range(reps)]))) for name, values in measures.items()}
  record = {
      "dataset": config.data.name, "steps": steps, "train_seconds": seconds,
      "classifier_test_accuracy": float(clf.score(x_test.reshape(len(x_test), -1), y_test)),
      "categorical_to_digit": mapping, "purity": purity, "mean_purity": float(np.mean(purity)),
      "distinct_digits": len(set(mapping)), "q_categorical_error": q_error,
      "continuous_code_spearman": correlations,
      "final_train_metrics": result.metrics["train"],
  }
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
  lines = [f"InfoGAN on {config.data.name}, {steps} steps ({seconds:.0f} s).", "",
           f"Categorical code → digit (classifier of real digits, test accuracy "
           f"{record['classifier_test_accuracy']:.3f}): {mapping}; purity "
           f"{record['mean_purity']:.3f} on average; {record['distinct_digits']} distinct digits.",
           f"Q's error at recovering the categorical code: {q_error}.", "",
           "| code | ρ(ink) | ρ(width) | ρ(slant) |", "|---|---|---|---|"]
  for k, c in correlations.items():
    lines.append(f"| {k} | {c['ink']:+.2f} | {c['width']:+.2f} | {c['slant']:+.2f} |")
  (out / "results.md").write_text("\n".join(lines) + "\n")
  if args.figures:
    for k in range(continuous):
      shrink_png(out / f"codes_c{k + 1}.png",
                 target=pathlib.Path(args.figures_dir) / f"infogan_{args.data}_codes_c{k + 1}.png")
  print("\n".join(lines))
  return record


if __name__ == "__main__":
  main()
