"""Exact-likelihood families' throughput: train steps/s and sampling images/s, against the peak.

Run: python benchmarks/likelihood_throughput.py [--out FILE] [--repeats N] [--quick]
                                                [--models pixelcnn,gated,realnvp]

For PixelCNN (plain and gated, the default `pixelcnn` widths) and RealNVP (the
default multi-scale flow), on binarized (PixelCNN) or 17-level (RealNVP) 8x8
digits and, without --quick, on 28x28 MNIST shapes (synthetic batches of the
same shape and levels: the timing does not depend on the pixel values), it
measures after compilation:
  * training: steps/s and examples/s of the jitted `train_step` (state donated,
    as the engine runs it);
  * sampling: images/s of `method.sample` jitted as one program — PixelCNN's
    one `fori_loop` of H·W·C network passes, RealNVP's one inverse pass;
and for each the achieved FLOP/s as a share of the machine's peak (the best
FLOP/s of a large jitted float32 matmul, measured in the same run). FLOPs come
from XLA's `cost_analysis()`: the train step as compiled; PixelCNN sampling as
H·W·C × one compiled forward pass at the sampling batch (XLA counts a loop
body once whatever its trip count); RealNVP sampling as compiled. Writes JSON
to benchmarks/results/likelihood_throughput.json.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import registry  # noqa: E402
from jaxgen.families.pixelcnn import method as pixelcnn_lib  # noqa: E402

from benchmarks import common  # noqa: E402

# name -> (registry method, overrides of its default config)
MODELS = {
    "pixelcnn": ("pixelcnn", ["model.architecture=pixelcnn"]),
    "gated": ("pixelcnn", ["model.architecture=gated"]),
    "realnvp": ("realnvp", []),
}
# shape name -> (H, W)
SHAPES = {"digits8": (8, 8), "mnist28": (28, 28)}
QUICK = {"pixelcnn": ["model.features=8", "model.layers=1", "model.output_features=8",
                      "model.first_kernel=3"],
         "realnvp": ["model.features=4", "model.blocks=0"]}


def spec_of(method: str, shape: tuple[int, int]) -> data_lib.DataSpec:
  """A DataSpec of grey images: binary for PixelCNN, 256 levels for RealNVP (dequantized)."""
  binary = method == "pixelcnn"
  return data_lib.DataSpec(
      name=f"synthetic {shape[0]}x{shape[1]}", shape=shape + (1,), num_classes=10,
      num_train=10_000, num_test=1_000, is_image=True, value_range=(0.0, 1.0),
      binary=binary, levels=2 if binary else 256, image_shape=shape + (1,))


def build(name: str, shape: tuple[int, int], batch: int, quick: bool) -> dict[str, Any]:
  """The method, a synthetic batch on its levels, and an initial state."""
  method_name, overrides = MODELS[name]
  config = config_lib.get_config(method_name, "digits")
  extra = QUICK[method_name] if quick else []
  if method_name == "realnvp":
    # dequantized on the device (the default): 2 scales on 8x8, 3 on 28x28
    extra = extra + [f"model.num_scales={2 if shape[0] == 8 else 3}"]
  config_lib.apply_overrides(config, overrides + extra + [f"data.batch_size={batch}"])
  spec = spec_of(method_name, shape)
  method = registry.get(method_name).make(config, spec)
  rng = np.random.default_rng(0)
  levels = spec.levels
  x = rng.integers(0, levels, size=(batch,) + spec.shape) / (levels - 1)
  data = {"x": jnp.asarray(x, jnp.float32), "label": jnp.zeros((batch,), jnp.int32)}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), data)
  return {"config": config, "spec": spec, "method": method, "batch": data, "state": state,
          "parameters": int(sum(np.size(p) for p in jax.tree.leaves(state.params)))}


def train_rate(built: dict[str, Any], steps: int, repeats: int, peak: float) -> dict:
  """The jitted train step (state donated) on one fixed batch."""
  method, batch, state = built["method"], built["batch"], built["state"]
  started = time.perf_counter()
  step = jax.jit(method.train_step, donate_argnums=0).lower(state, batch).compile()
  compile_seconds = time.perf_counter() - started
  flops = common.program_flops(step)

  def run():
    nonlocal state
    for _ in range(steps):
      state, metrics = step(state, batch)
    return metrics

  seconds = statistics.median(common.timed(run, repeats)) / steps
  built["state"] = state
  size = batch["x"].shape[0]
  return {"batch": size, "compile_seconds": compile_seconds, "seconds_per_step": seconds,
          "steps_per_second": 1 / seconds, "examples_per_second": size / seconds,
          "flops_per_step": flops, "flops_per_second": flops / seconds if flops else None,
          "share_of_peak": flops / seconds / peak if flops else None}


def loop_flops(built: dict[str, Any], num: int) -> float | None:
  """PixelCNN sampling: H·W·C × the FLOPs of one compiled network pass at batch num."""
  method, spec = built["method"], built["spec"]
  model = method.sample.args[0]  # the method's functions are partials of its Model
  levels = jnp.zeros((num,) + tuple(spec.shape), jnp.int32)
  forward = jax.jit(lambda p, l: pixelcnn_lib.apply_network(model, p, l, None)).lower(
      built["state"].params["network"], levels).compile()
  per_pass = common.program_flops(forward)
  return per_pass * math.prod(spec.shape) if per_pass else None


def sample_rate(built: dict[str, Any], num: int, repeats: int, peak: float) -> dict:
  """`method.sample` for num images, jitted as one program."""
  method, state = built["method"], built["state"]
  fn = jax.jit(lambda s, k: method.sample(s, k, num))
  started = time.perf_counter()
  compiled = fn.lower(state, jax.random.PRNGKey(1)).compile()
  compile_seconds = time.perf_counter() - started
  seconds = statistics.median(common.timed(lambda: compiled(state, jax.random.PRNGKey(1)),
                                           repeats, warmup=1))
  if method.name == "pixelcnn":
    flops, counted = loop_flops(built, num), "H*W*C x one compiled network pass"
  else:
    flops, counted = common.program_flops(compiled), "the compiled sampling program"
  return {"batch": num, "compile_seconds": compile_seconds, "seconds": seconds,
          "images_per_second": num / seconds, "flops": flops, "flops_counted_as": counted,
          "flops_per_second": flops / seconds if flops else None,
          "share_of_peak": flops / seconds / peak if flops else None}


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=None, help="default: benchmarks/results/"
                                                  "likelihood_throughput.json")
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train-batch", type=int, default=64)
  parser.add_argument("--sample-batch", type=int, default=64)
  parser.add_argument("--train-steps", type=int, default=10, help="steps per timing")
  parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
  args = parser.parse_args(argv)
  names = [n for n in args.models.split(",") if n]
  unknown = sorted(set(names) - set(MODELS))
  if unknown:
    parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
  shapes = {"digits8": SHAPES["digits8"]} if args.quick else SHAPES
  if args.quick:
    args.repeats, args.train_steps, args.train_batch, args.sample_batch = 1, 2, 8, 4
  report: dict[str, Any] = {
      "benchmark": "likelihood_throughput", "machine": common.machine(),
      "versions": common.versions("jax", "jaxlib", "flax", "optax", "numpy"),
      # The host may be shared; a high load explains low numbers.
      "load_average_1min_start": os.getloadavg()[0], "quick": args.quick,
      "repeats": args.repeats, "train_steps_per_timing": args.train_steps,
      "data": "synthetic batches: binary pixels (PixelCNN), 256 levels dequantized "
              "(RealNVP), shapes of the 8x8 digits and 28x28 MNIST", "models": {}}
  size = 512 if args.quick else 2048
  peak = common.peak_matmul_flops(size, repeats=args.repeats + 2)
  report["peak"] = {"matmul_size": size, "peak_flops_per_second": peak}
  print(f"peak {peak / 1e9:.1f} GFLOP/s (matmul)", flush=True)
  for name in names:
    for shape_name, shape in shapes.items():
      built = build(name, shape, args.train_batch, args.quick)
      entry = {"method": MODELS[name][0], "overrides": MODELS[name][1],
               "model": built["config"].model.to_dict(), "parameters": built["parameters"],
               "train": train_rate(built, args.train_steps, args.repeats, peak),
               "sample": sample_rate(built, args.sample_batch, max(1, args.repeats // 2),
                                     peak)}
      report["models"][f"{name}-{shape_name}"] = entry
      print(f"{name} {shape_name}: train {entry['train']['steps_per_second']:.2f} steps/s "
            f"({entry['train']['share_of_peak'] or 0:.1%} of peak), sampling "
            f"{entry['sample']['images_per_second']:.2f} images/s "
            f"({entry['sample']['share_of_peak'] or 0:.1%} of peak)", flush=True)
  report["load_average_1min_end"] = os.getloadavg()[0]
  report["peak_rss_mib"] = common.peak_rss_mib()
  common.write("likelihood_throughput", report, args.out)
  return report


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
