"""PixelCNN and Gated PixelCNN on binarized MNIST: exact test NLL (nats), samples, completions.

  python experiments/pixelcnn_mnist.py [--quick] [--out runs/pixelcnn_mnist]
                                       [--steps N] [--architectures pixelcnn,gated]
                                       [--features F] [--layers L] [--batch-size B]
                                       [--figures]

Data: `idx:<repo>/../shared/data/mnist-t10k`, MNIST's 10,000 *test* images,
which jaxgen splits once and for all into 8,000 training and 2,000 test images
(stratified, fixed seed) — the split of benchmarks/vae_mnist_nll.py, so the
VAE bound, the IWAE bound and these exact NLLs describe the same test images.
Dynamic binarization (a fresh Bernoulli draw of each image whenever it is
drawn for training; fixed draws for evaluation). van den Oord et al. 2016a
trained on the 60,000 training images (binarized as in their paper) and
evaluated on the 10,000 test images, so numbers here are *not* a like-for-like
reproduction.

For each architecture it trains the `pixelcnn` method (the same widths and
depth for both, fixed in advance), then writes to OUT/<architecture>/:
  samples.png      64 samples (one compiled loop over the 784 pixels)
  completion.png   rows: 16 test originals, the top halves they are given,
                   and the model's completions of the bottom halves
  run/             the run directory (checkpoints, metrics.jsonl, eval.json)
and OUT/summary.json with the exact test NLL in nats and bits/dim (all 2,000
test images), the published figure, training time and sampling throughput.
`--figures` also writes small copies of the grids to docs/figures/
(pixelcnn_mnist_<architecture>_samples.png, ..._completion.png) and the
summary to benchmarks/results/pixelcnn_mnist.json (merged per architecture,
so the two models can be run separately).
`--quick` trains tiny models for a few steps on MNIST resized to 8x8: a smoke
test of the script, not a result.
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
import ml_collections
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families import pixelcnn  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST = "idx:" + os.path.normpath(REPO / ".." / "shared" / "data" / "mnist-t10k")
# van den Oord et al. 2016a, binarized MNIST test NLL in nats (60k training
# images). 2016b reports no binarized-MNIST figure for the gated model.
PUBLISHED = {"pixelcnn": 81.30, "gated": None}


FIGURES = REPO / "docs" / "figures"
RESULTS = REPO / "benchmarks" / "results" / "pixelcnn_mnist.json"


def get_config(architecture: str, quick: bool, steps: int, seed: int = 0,
               args: argparse.Namespace | None = None) -> ml_collections.ConfigDict:
  """The config of one architecture: the same widths for both, binarized MNIST."""
  config = jaxgen.get_config("pixelcnn", MNIST)
  if quick:
    model = ["model.features=8", "model.layers=1", "model.output_features=8",
             "model.first_kernel=3", "data.image_size=8", "data.batch_size=32"]
  else:
    # Narrower and shallower than 2016a's CIFAR-10 model (2h = 256, 15
    # layers) for two CPU cores; the 7x7 mask-A first layer is the paper's.
    features, layers, output, batch = ((args.features, args.layers, args.output_features,
                                        args.batch_size) if args else (64, 7, 128, 64))
    model = [f"model.features={features}", f"model.layers={layers}",
             f"model.output_features={output}", "model.first_kernel=7",
             f"data.batch_size={batch}", f"optim.warmup_steps={min(200, steps // 10)}",
             "optim.schedule=cosine"]
  config_lib.apply_overrides(config, model + [
      f"model.architecture={architecture}", "data.binarize=dynamic",
      f"train.steps={steps}", f"train.seed={seed}", "train.eval_every=0",
      f"train.sample_every={steps}", f"train.checkpoint_every={steps}",
      f"train.log_every={max(1, steps // 50)}", "train.num_samples=0",
      "train.final_eval=True", f"train.progress={not quick}"])
  return config


def completion_figure(result: jaxgen.RunResult, paths: list[tuple[pathlib.Path, int]],
                      num: int, seed: int) -> dict:
  """Originals, their top halves and completions of the bottom halves, as one grid.

  paths: (file, upscaling factor; 0 = automatic) pairs to write the grid to.
  """
  dataset = data_lib.from_config(result.config.data)
  batch = next(iter(data_lib.eval_batches(dataset, split="test", batch_size=num)))
  images = jnp.asarray(batch["x"][:num])
  height = images.shape[1]
  mask = jnp.broadcast_to((jnp.arange(height) < height // 2)[None, :, None, None],
                          images.shape)
  started = time.perf_counter()
  # Compiled chunks of rows (the fully observed top rows are skipped), with a bar.
  completed = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(seed), num,
                                              observed=images, mask=mask, progress=True))
  seconds = time.perf_counter() - started
  masked = np.where(np.asarray(mask), np.asarray(images), 0.5)  # grey: not given
  for path, scale in paths:
    grid.save_image_grid(path, np.concatenate([np.asarray(images), masked, completed]),
                         columns=num, scale=scale)
  kept = bool(np.array_equal(completed[np.asarray(mask)], np.asarray(images)[np.asarray(mask)]))
  return {"num_images": num, "observed": "top half", "seconds": seconds,
          "observed_pixels_kept": kept}


def run_architecture(architecture: str, args: argparse.Namespace) -> dict:
  """Trains, evaluates, samples and completes with one architecture."""
  out = pathlib.Path(args.out) / architecture
  out.mkdir(parents=True, exist_ok=True)
  config = get_config(architecture, args.quick, args.steps, args.seed, args)
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=out / "run", overwrite=True)
  train_seconds = time.perf_counter() - started
  evaluation = result.metrics["eval"]
  # Compiled chunks of image rows with a progress bar (the same images as one
  # compiled call); the time includes the one compilation of a chunk.
  started = time.perf_counter()
  samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(args.seed + 1),
                                            args.num_samples, progress=not args.quick))
  sample_seconds = time.perf_counter() - started
  grid.save_image_grid(out / "samples.png", samples, columns=8)
  paths = [(out / "completion.png", 0)]
  if args.figures:
    grid.save_image_grid(FIGURES / f"pixelcnn_mnist_{architecture}_samples.png", samples,
                         columns=8, scale=2)
    paths.append((FIGURES / f"pixelcnn_mnist_{architecture}_completion.png", 2))
  completion = completion_figure(result, paths, 16, args.seed)
  train = [r for r in result.history if r.get("split") == "train"]
  test = [r for r in result.history if r.get("split") == "test"][-1]
  summary = {
      "architecture": architecture, "data": MNIST, "image_shape": list(result.spec.shape),
      "steps": args.steps, "batch_size": config.data.batch_size,
      "model": {k: config.model[k] for k in ("features", "layers", "output_features",
                                             "first_kernel", "kernel")},
      "optimizer": "adam 1e-3, warm-up then cosine decay",
      "test_nll_nats": evaluation["nll_nats"],
      "test_nll_bits_per_dim": evaluation["nll_bits_per_dim"],
      "num_test_images": test["protocol"]["num_examples"],
      "published_nll_nats": PUBLISHED[architecture],
      "final_train_loss": train[-1]["loss"] if train else None,
      "train_seconds": train_seconds,
      "samples_per_second": args.num_samples / sample_seconds,
      "completion": completion,
      "num_parameters": int(sum(np.size(p) for p in jax.tree.leaves(result.state.params))),
      "figures": sorted(str(p) for p in out.glob("*.png")),
  }
  print(f"{architecture}: test NLL {summary['test_nll_nats']:.2f} nats "
        f"({summary['test_nll_bits_per_dim']:.4f} bits/dim) on "
        f"{summary['num_test_images']} images", flush=True)
  return summary


def main(argv: list[str] | None = None) -> dict:
  """Runs the experiment and writes OUT/summary.json."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
  parser.add_argument("--out", default="runs/pixelcnn_mnist")
  parser.add_argument("--steps", type=int, default=10000)
  parser.add_argument("--architectures", default="pixelcnn,gated")
  parser.add_argument("--num-samples", type=int, default=64)
  parser.add_argument("--features", type=int, default=64)
  parser.add_argument("--layers", type=int, default=7)
  parser.add_argument("--output-features", type=int, default=128)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also write docs/figures/ PNGs and benchmarks/results/ JSON")
  args = parser.parse_args(argv)
  if args.quick:
    args.steps, args.num_samples = 3, 8
  architectures = [a for a in args.architectures.split(",") if a]
  report = {"data_note": "trained on 8,000 of MNIST's 10,000 test images, evaluated on the "
                         "other 2,000 (binarized); van den Oord et al. 2016a trained on the "
                         "60,000 training images and evaluated on the 10,000 test images",
            "quick": args.quick,
            "runs": {a: run_architecture(a, args) for a in architectures}}
  path = pathlib.Path(args.out) / "summary.json"
  path.write_text(json.dumps(report, indent=2) + "\n")
  if args.figures:
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update({k: v for k, v in report.items() if k != "runs"})
    merged.setdefault("runs", {}).update(report["runs"])
    merged["machine"] = {"cpus": os.cpu_count(), "backend": jax.default_backend(),
                         "load_average_1min_end": os.getloadavg()[0]}
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
  return report


if __name__ == "__main__":
  main()
