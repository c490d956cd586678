"""Semi-supervised GAN on digits with 10 labels per class, against the labels alone.

Run:  python experiments/gan_semisupervised.py [--quick] [--out runs/gan_semisupervised]
          [--seeds 4] [--steps 3000]

`ssgan` (Salimans et al. 2016: a discriminator with C + 1 outputs, the
supervised cross-entropy on the labelled examples plus the unsupervised GAN
loss on all training images, feature matching for the generator) is trained on
sklearn digits where it may read the labels of only the first 10 examples of
each class its data stream delivers (100 labels; each seed's stream picks its
own 100). Baselines with exactly the same labelled examples per seed:

  * supervised only: the same method, network, optimizer and steps with
    model.unsupervised_weight=0, i.e. the discriminator trained as a classifier
    on the 100 labelled examples alone;
  * logistic regression (scikit-learn) on the same 100 examples.

Seeds train together (the engine's multi-seed mode). The test error is over the
359 held-out digits (the engine's exact evaluation). Writes results.json and
results.md.
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


def make_config(steps: int, seeds: int, quick: bool, unsupervised_weight: float):
  config = jaxgen.get_config("ssgan", "digits")
  overrides = ["train.progress=False", "train.checkpoint_every=0", "train.keep_checkpoints=1",
               "train.log_every=100", "train.num_samples=0"]
  if quick:
    overrides += ["model.generator_hidden=(16,)", "model.discriminator_hidden=(16, 16)",
                  "model.latent_dim=4", "data.batch_size=32", "model.labels_per_class=2",
                  "model.discriminator_hidden_noise=0.0"]
  config_lib.apply_overrides(config, overrides)
  config.model.unsupervised_weight = unsupervised_weight
  config.train.steps = steps
  config.train.eval_every = 0 if quick else max(steps // 3, 1)
  config.train.seeds = tuple(range(seeds))
  return config


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/gan_semisupervised")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--seeds", type=int, default=0, help="default 4 (quick: 2)")
  parser.add_argument("--steps", type=int, default=0, help="default 3000 (quick: 4)")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  seeds = args.seeds or (2 if args.quick else 4)
  steps = args.steps or (4 if args.quick else 3000)

  runs = {}
  for name, weight in (("ssgan", 1.0), ("supervised_only", 0.0)):
    config = make_config(steps, seeds, args.quick, weight)
    started = time.perf_counter()
    result = jaxgen.fit(config, workdir=None if args.quick else out / name, overwrite=True)
    runs[name] = {"result": result, "seconds": time.perf_counter() - started,
                  "config": config}

  # The labelled sets are those each seed's stream delivered first: the same
  # for both runs (same seeds, same streams); check, then fit the baseline.
  banks = [jax.device_get(r["result"].state.model_state["labelled"]) for r in runs.values()]
  np.testing.assert_array_equal(banks[0]["x"], banks[1]["x"])
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  config = runs["ssgan"]["config"]
  dataset = data_lib.from_config(config.data)
  batch = next(iter(data_lib.eval_batches(dataset, split="test",
                                          batch_size=dataset.spec.num_test)))
  x_test = batch["x"].reshape(len(batch["x"]), -1)
  y_test = batch["label"]
  per_class = config.model.labels_per_class
  logistic = []
  for s in range(seeds):
    count = banks[0]["count"][s]
    x = np.concatenate([banks[0]["x"][s, c, :count[c]] for c in range(10)])
    y = np.concatenate([np.full(count[c], c) for c in range(10)])
    model = LogisticRegression(max_iter=1000).fit(x.reshape(len(x), -1), y)
    logistic.append(float(np.mean(model.predict(x_test) != y_test)))

  def summary(values):
    values = np.asarray(values, np.float64)
    return {"per_seed": values.tolist(), "mean": float(values.mean()),
            "std": float(values.std())}

  record = {
      "dataset": "digits", "labels_per_class": per_class, "steps": steps, "seeds": seeds,
      "test_examples": int(dataset.spec.num_test),
      "labelled_examples_filled": banks[0]["count"].sum(-1).tolist(),
      "test_error": {
          "ssgan": summary(runs["ssgan"]["result"].metrics["eval"]["error"]),
          "supervised_only": summary(runs["supervised_only"]["result"].metrics["eval"]["error"]),
          "logistic_regression": summary(logistic),
      },
      "train_seconds": {k: r["seconds"] for k, r in runs.items()},
  }
  (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
  lines = [f"Digits, {per_class} labels per class, {steps} steps, {seeds} seeds "
           f"(test error on {record['test_examples']} digits, mean ± std over seeds):", "",
           "| model | test error |", "|---|---|"]
  for name, value in record["test_error"].items():
    lines.append(f"| {name} | {value['mean']:.3f} ± {value['std']:.3f} |")
  (out / "results.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))
  return record


if __name__ == "__main__":
  main()
