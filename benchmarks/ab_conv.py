"""A/B timing of formulations of the convolutional models' train steps.

Run: python benchmarks/ab_conv.py [--rows a,b] [--variants base,x,...]
         [--rounds N] [--steps K] [--list]

For each row (the conv VAE on MNIST and the DDPM U-Nets on digits and MNIST,
built as benchmarks/vs_pytorch.py builds them: `jaxgen.get_config` plus the
row's overrides, `jaxgen.registry.get(method).make`, the step jitted with the
state donated) and each variant, it compiles the train step with the variant
in force, then times the variants in interleaved rounds in this one process
on the same batch, the order rotating from round to round. It prints each
variant's median steps/s and, per round, its rate over the first variant's
("base"), with the median of those per-round ratios; and the process CPU time
per step (`time.process_time`, all threads) and its ratio base / variant. On a
shared, loaded machine the wall-clock rates drift by tens of percent from
round to round while the CPU time per step, the work a step does, stays
within a few percent: read both, and trust a gain only where both agree and it
repeats in a second run.

A variant is a patch applied while the step is traced (a module or function
of jaxgen.nn swapped for another formulation) and/or XLA debug options passed
to this step's compilation only (`Lowered.compile(compiler_options=...)`), so
flags can be compared in one process too. `--list` prints the variants.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import vs_pytorch  # noqa: E402  pylint: disable=wrong-import-position

ROWS = ("vae-conv-mnist", "ddpm-digits", "ddpm-mnist")
# Steps per variant per round: about a quarter of a second or more each.
STEPS = {"vae-conv-mnist": 6, "ddpm-digits": 8, "ddpm-mnist": 4}


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
  """Sets target.name = value inside the block."""
  old = getattr(target, name)
  setattr(target, name, value)
  try:
    yield
  finally:
    setattr(target, name, old)


def _variants() -> dict[str, tuple[Callable[[], Any], dict[str, Any]]]:
  """name -> (context manager factory active while tracing, XLA compiler options)."""
  # Longer than our ~80-line rule: every variant's code sits here, next to its
  # name, so one reading shows exactly what each measured formulation is.
  none = contextlib.nullcontext
  variants: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
      "base": (none, {}),
      # base again, built and compiled separately: an A/A control that shows
      # how far two identical steps drift apart in this run.
      "control": (none, {}),
  }
  # XLA:CPU's default YNNPACK fusion types in jax 0.10 are REDUCE,
  # INDIVIDUAL_DOT and INDIVIDUAL_CONVOLUTION (checked by comparing compiled
  # HLO); a compiler option overwrites the list, it cannot add or remove.
  ynn = {"ynn_no_conv": "REDUCE,INDIVIDUAL_DOT",
         "ynn_no_reduce": "INDIVIDUAL_DOT,INDIVIDUAL_CONVOLUTION",
         "ynn_dot_only": "INDIVIDUAL_DOT",
         "ynn_none": "",
         "ynn_eltwise": "REDUCE,INDIVIDUAL_DOT,INDIVIDUAL_CONVOLUTION,ELTWISE",
         "ynn_no_conv_eltwise": "REDUCE,INDIVIDUAL_DOT,ELTWISE",
         "ynn_no_conv_dot": "DOT,REDUCE,INDIVIDUAL_DOT"}
  for name, types in ynn.items():
    value = ",".join(f"LIBRARY_FUSION_TYPE_{t}" for t in types.split(",") if t)
    variants[name] = (none, {"xla_cpu_experimental_ynn_fusion_type": value})
  from jaxgen.nn import unet  # pylint: disable=import-outside-toplevel
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import math  # pylint: disable=import-outside-toplevel

  class FusedGroupNorm(nn.Module):
    """flax's GroupNorm (same parameters and function) with a fused scale and shift.

    Mean and mean of squares in one pass over the [B, H, W, G, C/G] view, then
    x * a + b with a, b per (example, channel).
    """

    num_groups: int
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x):
      channels, groups = x.shape[-1], self.num_groups
      scale = self.param("scale", nn.initializers.ones, (channels,))
      bias = self.param("bias", nn.initializers.zeros, (channels,))
      grouped = x.reshape(x.shape[:-1] + (groups, channels // groups))
      axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)
      mean = jnp.mean(grouped, axes, keepdims=True)
      var = jnp.maximum(jnp.mean(grouped * grouped, axes, keepdims=True) - mean * mean, 0.0)
      a = jax.lax.rsqrt(var + self.epsilon) * scale.reshape(groups, -1)
      b = bias.reshape(groups, -1) - mean * a
      return (grouped * a + b).reshape(x.shape)

  def fused_group_norm(channels: int, groups: int, name: str | None = None):
    return FusedGroupNorm(num_groups=math.gcd(groups, channels), name=name)

  variants["gn_fused"] = (lambda: patched(unet, "group_norm", fused_group_norm), {})
  from jaxgen.nn import conv as conv_module  # pylint: disable=import-outside-toplevel

  class FlaxWith:
    """flax.linen with some names replaced (patched in as a module's `nn`)."""

    def __init__(self, **names):
      self.names = names

    def __getattr__(self, name):
      return self.names.get(name, getattr(nn, name))

  class Im2colConv(nn.Module):
    """nn.Conv for NHWC inputs (same `kernel`, `bias`), as one patch matrix times a matmul.

    The kh*kw shifted (strided) views of the padded input are stacked on the
    channel axis ([B, H', W', kh*kw*Cin], "im2col") and multiplied by the kernel
    read as [kh*kw*Cin, Cout]; its gradients are matmuls and shifted adds.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: str = "SAME"
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
      (kh, kw), cin, s = self.kernel_size, x.shape[-1], self.strides
      kernel = self.param("kernel", self.kernel_init, (kh, kw, cin, self.features))
      pads = jax.lax.padtype_to_pads(x.shape[1:3], (kh, kw), (s, s), self.padding)
      x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
      out_h, out_w = (x.shape[1] - kh) // s + 1, (x.shape[2] - kw) // s + 1
      views = [x[:, i:i + s * (out_h - 1) + 1:s, j:j + s * (out_w - 1) + 1:s, :]
               for i in range(kh) for j in range(kw)]
      patches = jnp.concatenate(views, axis=-1) if len(views) > 1 else views[0]
      y = jnp.dot(patches, kernel.reshape(kh * kw * cin, self.features))
      return y + self.param("bias", nn.initializers.zeros, (self.features,))

  def im2col_conv(features, kernel_size, strides=1, padding="SAME", **kwargs):
    return Im2colConv(features, tuple(kernel_size), strides, padding, **kwargs)

  def silu_explicit(x):
    return x * jax.nn.sigmoid(x)

  def silu_tanh(x):
    return 0.5 * x * (1.0 + jnp.tanh(0.5 * x))

  variants["im2col_unet"] = (lambda: patched(unet, "nn", FlaxWith(Conv=im2col_conv)), {})
  variants["im2col_vae"] = (lambda: patched(conv_module, "nn", FlaxWith(Conv=im2col_conv)), {})
  variants["silu_explicit"] = (lambda: patched(unet, "nn", FlaxWith(swish=silu_explicit)), {})
  variants["silu_tanh"] = (lambda: patched(unet, "nn", FlaxWith(swish=silu_tanh)), {})
  variants["xnn_greedy"] = (none, {"xla_cpu_experimental_xnn_graph_fusion_mode":
                                   "XNN_GRAPH_FUSION_MODE_GREEDY"})
  variants["no_fusion_emitters"] = (none, {"xla_cpu_use_fusion_emitters": False})
  return variants


VARIANTS = _variants()


class Step:
  """A row's jitted train step, compiled under a variant, on a fixed batch."""

  def __init__(self, row: vs_pytorch.Row, images: np.ndarray, variant: str):
    import jaxgen  # pylint: disable=import-outside-toplevel
    context, options = VARIANTS[variant]
    with context():
      config = vs_pytorch.jaxgen_config(row)
      method = jaxgen.registry.get(row.method).make(config, vs_pytorch.data_spec(row))
      self.batch = {"x": jnp.asarray(images), "label": jnp.zeros((row.batch_size,), jnp.int32)}
      self.state = jax.jit(method.init)(jax.random.PRNGKey(0), self.batch)
      lowered = jax.jit(method.train_step, donate_argnums=0).lower(self.state, self.batch)
      self._step = lowered.compile(compiler_options=options or None)
    self.run(1)
    self.loss = self.metrics

  def run(self, steps: int) -> None:
    for _ in range(steps):
      self.state, self.metrics = self._step(self.state, self.batch)
    jax.block_until_ready(self.state)


def benchmark(row_name: str, variants: list[str], rounds: int, steps: int) -> dict[str, Any]:
  """Interleaved rounds of every variant of one row."""
  row = vs_pytorch.ROWS[row_name]
  images = vs_pytorch.synthetic_images(row)
  runners = {name: Step(row, images, name) for name in variants}
  first = {name: {k: float(v) for k, v in runners[name].loss.items()} for name in variants}
  for runner in runners.values():
    runner.run(2)
  rates: dict[str, list[float]] = {name: [] for name in variants}
  cpu: dict[str, list[float]] = {name: [] for name in variants}
  for r in range(rounds):
    for name in variants[r % len(variants):] + variants[:r % len(variants)]:
      start, start_cpu = time.perf_counter(), time.process_time()
      runners[name].run(steps)
      rates[name].append(steps / (time.perf_counter() - start))
      cpu[name].append((time.process_time() - start_cpu) / steps)
  base = variants[0]
  result = {}
  for name in variants:
    ratios = [a / b for a, b in zip(rates[name], rates[base])]
    cpu_ratios = [b / a for a, b in zip(cpu[name], cpu[base])]
    result[name] = {"steps_per_sec": statistics.median(rates[name]),
                    "ratio_over_base": statistics.median(ratios),
                    "ratios": [round(x, 3) for x in ratios],
                    "cpu_seconds_per_step": statistics.median(cpu[name]),
                    "cpu_ratio_over_base": statistics.median(cpu_ratios),
                    "first_metrics": first[name]}
  return result


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--variants", default="base,ynn_no_conv")
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--steps", type=int, default=0, help="0: per-row default")
  parser.add_argument("--list", action="store_true")
  args = parser.parse_args(argv)
  if args.list:
    print("\n".join(VARIANTS))
    return
  variants = args.variants.split(",")
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    parser.error(f"unknown variants {unknown}; see --list")
  for row_name in args.rows.split(","):
    result = benchmark(row_name, variants, args.rounds, args.steps or STEPS[row_name])
    for name, r in result.items():
      loss = {k: round(v, 5) for k, v in r["first_metrics"].items() if "loss" in k}
      print(f"{row_name:15s} {name:20s} {r['steps_per_sec']:7.2f} steps/s "
            f"x{r['ratio_over_base']:.3f} wall, {1e3 * r['cpu_seconds_per_step']:6.1f} "
            f"CPU ms/step x{r['cpu_ratio_over_base']:.3f} CPU  {r['ratios']}  {loss}",
            flush=True)


if __name__ == "__main__":
  main()
