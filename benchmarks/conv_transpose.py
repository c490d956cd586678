"""Times nn.ConvTranspose against PhaseConvTranspose's two forms, forward and backward.

Run: python benchmarks/conv_transpose.py [--out FILE] [--repeats N]

For DCGAN-like generator layers (k=4, s=2, SAME) it times a jitted
`value_and_grad` (w.r.t. params and input) of sum(y**2), and the forward pass
alone, for nn.ConvTranspose and for PhaseConvTranspose with form="phases" (one
stride-1 conv per output phase, the default) and form="combined" (one conv
with all phases stacked), reports the median over repeats after warm-up, checks
the modules agree, and writes the numbers as JSON. It also measures the
machine's peak matmul FLOP/s in the same run, to put the timings in context.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from jaxgen.nn import PhaseConvTranspose  # noqa: E402

from benchmarks import common  # noqa: E402

# (name, input [H, W, Cin], output features); every layer doubles H and W.
LAYERS = (
    ("dcgan 4x4x256 -> 8x8x128", (4, 4, 256), 128),
    ("dcgan 8x8x128 -> 16x16x64", (8, 8, 128), 64),
    ("dcgan 16x16x64 -> 32x32x3", (16, 16, 64), 3),
    ("mnist 7x7x64 -> 14x14x32", (7, 7, 64), 32),
    ("mnist 14x14x32 -> 28x28x32", (14, 14, 32), 32),
)
KERNEL = (4, 4)
STRIDES = (2, 2)


def bench_layer(input_shape: tuple[int, int, int], features: int, batch: int,
                repeats: int) -> dict[str, float]:
  """Times both modules on one layer with the same params and input."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((batch,) + input_shape, np.float32))
  modules = {
      "conv_transpose": nn.ConvTranspose(features, KERNEL, STRIDES, "SAME"),
      "phase": PhaseConvTranspose(features, KERNEL, STRIDES, "SAME", form="phases"),
      "combined": PhaseConvTranspose(features, KERNEL, STRIDES, "SAME",
                                     form="combined"),
  }
  params = jax.jit(modules["conv_transpose"].init)(jax.random.key(0), x)
  result: dict[str, float] = {}
  outputs = {}
  for name, module in modules.items():

    def loss(params, x, module=module):
      y = module.apply(params, x)
      return jnp.sum(y * y)

    forward = jax.jit(module.apply)
    train = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    outputs[name] = forward(params, x)
    result[f"{name}_forward_ms"] = 1e3 * common.median_seconds(
        lambda: forward(params, x), repeats, warmup=2)
    result[f"{name}_forward_backward_ms"] = 1e3 * common.median_seconds(
        lambda: train(params, x), repeats, warmup=2)
  for form in ("phase", "combined"):
    prefix = "" if form == "phase" else "combined_"
    result[f"{prefix}speedup_forward"] = (result["conv_transpose_forward_ms"]
                                          / result[f"{form}_forward_ms"])
    result[f"{prefix}speedup_forward_backward"] = (
        result["conv_transpose_forward_backward_ms"]
        / result[f"{form}_forward_backward_ms"])
    result[f"{prefix}max_abs_diff"] = float(
        jnp.max(jnp.abs(outputs[form] - outputs["conv_transpose"])))
  return result


def main(argv: Sequence[str] | None = None) -> None:
  """Runs every layer, prints a table and writes the JSON file."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(
      os.path.dirname(__file__), "results", "conv_transpose.json"))
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args(argv)

  report = {
      "machine": common.machine(),
      # The host may be shared; a high load explains noisy numbers.
      "load_average_1min": os.getloadavg()[0],
      "batch": args.batch,
      "kernel_size": list(KERNEL),
      "strides": list(STRIDES),
      "loss": "sum(y**2), grads w.r.t. params and input",
      "repeats": args.repeats,
      "peak_matmul_flops": common.peak_matmul_flops(),
      "forms": {"phase": "PhaseConvTranspose(form='phases'): one stride-1 conv "
                         "per output phase (the default for strides > 1)",
                "combined": "PhaseConvTranspose(form='combined'): one conv "
                            "with all phases stacked on the output channels"},
      "layers": {},
  }
  print(f"jax {jax.__version__} on {jax.default_backend()}, batch {args.batch}, "
        f"median of {args.repeats}")
  print(f"peak matmul: {report['peak_matmul_flops'] / 1e9:.1f} GFLOP/s")
  header = (f"{'layer':30s} {'fwd+bwd ConvT':>14s} {'fwd+bwd phases':>14s} "
            f"{'speed-up':>9s} {'combined':>9s} {'fwd ConvT':>10s} "
            f"{'fwd phases':>10s} {'speed-up':>9s} {'combined':>9s}")
  print(header)
  for name, input_shape, features in LAYERS:
    layer = bench_layer(input_shape, features, args.batch, args.repeats)
    report["layers"][name] = layer
    print(f"{name:30s} {layer['conv_transpose_forward_backward_ms']:12.2f}ms "
          f"{layer['phase_forward_backward_ms']:12.2f}ms "
          f"{layer['speedup_forward_backward']:8.1f}x "
          f"{layer['combined_speedup_forward_backward']:8.1f}x "
          f"{layer['conv_transpose_forward_ms']:8.2f}ms "
          f"{layer['phase_forward_ms']:8.2f}ms "
          f"{layer['speedup_forward']:8.1f}x "
          f"{layer['combined_speedup_forward']:8.1f}x", flush=True)

  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
