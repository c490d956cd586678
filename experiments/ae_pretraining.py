"""Unsupervised pre-training: an autoencoder's encoder as the start of a classifier.

1. Pre-train a (denoising) autoencoder on all training images, labels unused;
   one replica per seed, trained together (`train.seeds`, vmapped).
2. Draw 10 labelled training examples per class (a different draw per seed).
3. Train the same classifier — the autoencoder's encoder architecture plus a
   linear softmax layer on the code — on those labels only, three ways:
   from scratch (random encoder), from the pre-trained encoder fine-tuned, and
   on the frozen pre-trained encoder (a linear probe). Same optimizer, same
   number of full-batch steps, fixed in advance; no early stopping.
4. Report the test accuracy of each, per seed and as mean ± std.

  python experiments/ae_pretraining.py                      # 8x8 digits, 5 seeds
  python experiments/ae_pretraining.py --data idx:../shared/data/mnist-t10k
  python experiments/ae_pretraining.py --quick              # tiny, for tests

Writes `pretraining.json` and `pretraining.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families import autoencoder  # noqa: E402

VARIANTS = ("scratch", "pretrained_finetuned", "pretrained_frozen")


class Classifier(nn.Module):
  """The autoencoder's encoder, then a linear layer to class logits."""

  encoder: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Dense(self.num_classes, name="head")(self.encoder(x))


def labelled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
  """Indices of `per_class` random examples of every class."""
  rng = np.random.default_rng(seed)
  return np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                         for c in np.unique(labels)])


def run(args: argparse.Namespace) -> dict:
  """Pre-trains, then trains the three classifiers per seed and reports accuracies."""
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  seeds = list(range(2 if args.quick else args.seeds))
  hidden = (16,) if args.quick else tuple(args.hidden)
  pretrain_steps = 20 if args.quick else args.pretrain_steps
  classifier_steps = 20 if args.quick else args.classifier_steps

  config = jaxgen.get_config(args.method, args.data)
  config.model.code_dim = args.code_dim
  config.model.hidden = hidden
  config.data.binarize = "none"
  config.data.batch_size = 64
  config.train.steps = pretrain_steps
  config.train.seeds = tuple(seeds)
  config.train.eval_every = 0
  config.train.final_eval = False  # the autoencoder's own test numbers are not used
  config.train.progress = False
  pretrained = jaxgen.fit(config)

  dataset = data_lib.load_dataset(args.data)  # scaled to [0, 1], not binarized
  x_train, y_train = data_lib.eval_arrays(dataset, "train")
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  num_classes = int(y_train.max()) + 1
  m = config.model
  encoder = autoencoder.Encoder(
      m.architecture, m.code_dim, tuple(m.hidden), tuple(m.channels),
      autoencoder.ACTIVATIONS[m.activation], autoencoder.CODE_ACTIVATIONS[m.code_activation])
  classifier = Classifier(encoder, num_classes)
  tx = optax.adam(args.learning_rate)

  @jax.jit
  def train(params, x, y, encoder_scale):
    """Full-batch Adam steps; encoder_scale 0 freezes the encoder (zero updates)."""

    def loss_fn(params):
      logits = classifier.apply({"params": params}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params)
      grads = {"encoder": jax.tree.map(lambda g: g * encoder_scale, grads["encoder"]),
               "head": grads["head"]}
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None,
                                       length=classifier_steps)
    return params, losses[-1]

  @jax.jit
  def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(classifier.apply({"params": params}, x), -1) == y)

  init = jax.jit(classifier.init)
  rows = []
  for i, seed in enumerate(seeds):
    chosen = labelled_subset(y_train, args.labels_per_class, seed)
    x, y = jnp.asarray(x_train[chosen]), jnp.asarray(y_train[chosen])
    fresh = init(jax.random.PRNGKey(1000 + seed), x[:1])["params"]
    encoder_params = jax.tree.map(lambda p: p[i], pretrained.state.params["encoder"])
    # flax names the submodule "encoder"; its params are the autoencoder's
    # encoder params, key for key.
    pre = {"encoder": encoder_params, "head": fresh["head"]}
    row = {"seed": seed, "labelled_examples": int(len(chosen))}
    for variant, start, scale in (("scratch", fresh, 1.0), ("pretrained_finetuned", pre, 1.0),
                                  ("pretrained_frozen", pre, 0.0)):
      params, loss = train(start, x, y, jnp.float32(scale))
      row[variant] = float(accuracy(params, jnp.asarray(x_test), jnp.asarray(y_test)))
      row[f"{variant}_final_train_loss"] = float(loss)
    rows.append(row)
    print(f"seed {seed}: " + ", ".join(f"{v} {row[v]:.3f}" for v in VARIANTS), flush=True)

  summary = {v: {"mean": float(np.mean([r[v] for r in rows])),
                 "std": float(np.std([r[v] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
             for v in VARIANTS}
  report = {
      "experiment": "unsupervised pre-training, then a classifier on 10 labels per class",
      "data": args.data, "method": args.method, "quick": args.quick,
      "encoder": {"architecture": m.architecture, "hidden": list(hidden),
                  "code_dim": m.code_dim, "code_activation": m.code_activation},
      "pretrain_steps": pretrain_steps, "pretrain_batch_size": 64,
      "classifier": f"encoder + Dense({num_classes}); full-batch Adam "
                    f"lr={args.learning_rate}, {classifier_steps} steps",
      "labels_per_class": args.labels_per_class,
      "test_examples": int(len(y_test)),
      "seeds": seeds, "rows": rows, "test_accuracy": summary,
  }
  (out / "pretraining.json").write_text(json.dumps(report, indent=2) + "\n")
  names = {"scratch": "from scratch", "pretrained_finetuned": "pre-trained, fine-tuned",
           "pretrained_frozen": "pre-trained, frozen (linear probe)"}
  lines = [f"# Pre-training on {args.data}: {args.labels_per_class} labels per class, "
           f"{len(seeds)} seeds", "",
           "| classifier | test accuracy (mean ± std) |", "|---|---|"]
  lines += [f"| {names[v]} | {summary[v]['mean']:.3f} ± {summary[v]['std']:.3f} |"
            for v in VARIANTS]
  (out / "pretraining.md").write_text("\n".join(lines) + "\n")
  return report


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--out", default="runs/ae_pretraining")
  parser.add_argument("--data", default="digits")
  parser.add_argument("--method", default="dae", choices=("ae", "dae", "sae"))
  parser.add_argument("--code-dim", type=int, default=32)
  parser.add_argument("--hidden", type=int, nargs="+", default=(256, 128))
  parser.add_argument("--pretrain-steps", type=int, default=5000)
  parser.add_argument("--classifier-steps", type=int, default=300)
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--labels-per-class", type=int, default=10)
  parser.add_argument("--seeds", type=int, default=5)
  return run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
