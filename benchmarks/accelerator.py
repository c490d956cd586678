"""Throughput at accelerator scale: images/s and model-FLOP utilisation on one GPU.

Run through benchmarks/accelerator.sh (it installs the CUDA JAX wheel first):

  bash benchmarks/accelerator.sh               # on a machine with an NVIDIA GPU
  bash benchmarks/accelerator.sh --cpu-smoke   # this script on CPU, tiny widths

Rows: the DCGAN (the default `gan` config: G (128, 64), D (64, 128)), the DDPM
U-Net (Ho et al. 2020's CIFAR-10 network: 128 channels, mults (1, 2, 2, 2), 2
res blocks, attention at 16x16) and the conv VAE (`model.architecture=conv`,
latent 128), on 32x32x3 batches of 128 and 256, in float32 and with
`train.compute_dtype=bfloat16` (jaxgen.core.precision). Each row builds the
step as `benchmarks/vs_pytorch.py` does (the public API, synthetic data, the
state donated), times it after compilation and warm-up, and reports

  images/s       batch x steps/s (median of timed blocks);
  FLOPs/step     XLA's cost analysis of the lowered train step (the model's
                 FLOPs, counted before XLA's optimisations);
  MFU            FLOPs/step x steps/s / the GPU's published dense peak for the
                 row's dtype (float32 rows: the TF32 tensor-core peak, which is
                 what XLA uses for float32 matmuls and convolutions on these GPUs
                 by default, and the plain FP32 peak; bfloat16 rows: the BF16
                 tensor-core peak). No sparsity.

The GPU is named by `nvidia-smi --query-gpu=name` (else JAX's device kind) and
looked up in PEAKS (NVIDIA's datasheets); an unknown GPU gets MFU null. Rows
run in the order below until `--budget-seconds` is spent; a row that does not
fit is recorded as skipped, never estimated. JSON: benchmarks/results/accelerator.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common, vs_pytorch  # noqa: E402  pylint: disable=wrong-import-position

# Published dense peaks in TFLOP/s (no sparsity): (fp32, tf32 tensor, bf16 tensor).
# Sources: NVIDIA's product datasheets (H100/H200: "NVIDIA H100 Tensor Core GPU"
# and "NVIDIA H200 Tensor Core GPU" datasheets, whose tensor figures are quoted
# with sparsity and are halved here; A100: "NVIDIA A100 Tensor Core GPU"
# datasheet; L4, L40S, A10: their datasheets). Matched against the GPU's name in
# this order (the first key contained in the name wins).
PEAKS: list[tuple[str, str, tuple[float, float | None, float | None]]] = [
    ("H100 NVL", "H100 NVL datasheet", (60.0, 417.5, 835.5)),
    ("H100 PCIe", "H100 PCIe datasheet", (51.0, 378.0, 756.0)),
    ("H100", "H100 SXM5 datasheet", (67.0, 494.7, 989.4)),
    ("H200 NVL", "H200 NVL datasheet", (60.0, 417.5, 835.5)),
    ("H200", "H200 SXM datasheet", (67.0, 494.7, 989.4)),
    ("A100", "A100 datasheet (SXM4 and PCIe)", (19.5, 156.0, 312.0)),
    ("L40S", "L40S datasheet", (91.6, 183.0, 362.05)),
    ("L4", "L4 datasheet", (30.3, 60.0, 121.0)),
    ("A10", "A10 datasheet", (31.2, 62.5, 125.0)),
    ("V100", "V100 SXM2 datasheet (no TF32 or BF16 tensor cores)", (15.7, None, None)),
    ("T4", "T4 datasheet (no TF32 or BF16 tensor cores)", (8.1, None, None)),
]

SHAPE = (32, 32, 3)
MODELS = {
    "dcgan": ("gan", "cifar10", ()),
    "ddpm-unet": ("ddpm", "cifar10", ("model.channels=128", "model.channel_mults=(1, 2, 2, 2)",
                                      "model.num_res_blocks=2",
                                      "model.attention_resolutions=(16,)")),
    "vae-conv": ("vae", "cifar10", ("model.architecture=conv", "model.latent_dim=128")),
}
# --cpu-smoke: the same code paths with widths a CPU runs in seconds.
SMOKE_MODELS = {
    "dcgan": ("gan", "cifar10", ("model.generator_channels=(8, 4)",
                                 "model.discriminator_channels=(4, 8)", "model.latent_dim=8")),
    "ddpm-unet": ("ddpm", "cifar10", ("model.channels=8", "model.channel_mults=(1, 2)",
                                      "model.num_res_blocks=1", "model.norm_groups=4",
                                      "model.attention_resolutions=(16,)", "model.heads=1")),
    "vae-conv": ("vae", "cifar10", ("model.architecture=conv", "model.channels=(4, 8)",
                                    "model.hidden=(16,)", "model.latent_dim=4")),
}
DTYPES = ("float32", "bfloat16")


def gpu_name() -> str | None:
  """The first GPU's name from nvidia-smi, else JAX's device kind for a GPU, else None."""
  if shutil.which("nvidia-smi"):
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False)
    if done.returncode == 0 and done.stdout.strip():
      return done.stdout.strip().splitlines()[0].strip()
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  return device.device_kind if device.platform == "gpu" else None


def peaks_of(name: str | None) -> dict[str, Any]:
  """The published peaks (FLOP/s) of the GPU called `name`, with their source."""
  for key, source, (fp32, tf32, bf16) in PEAKS:
    if name and key.lower() in name.lower():
      scale = 1e12
      return {"matched": key, "source": f"NVIDIA {source}", "fp32": fp32 * scale,
              "tf32": tf32 * scale if tf32 else None, "bf16": bf16 * scale if bf16 else None}
  return {"matched": None, "source": None, "fp32": None, "tf32": None, "bf16": None}


def rows(smoke: bool) -> list[tuple[str, vs_pytorch.Row, str]]:
  """(name, row, dtype) in the order they run: batch 128 before 256, float32 first."""
  models = SMOKE_MODELS if smoke else MODELS
  batches = (4, 8) if smoke else (128, 256)
  out = []
  for batch in batches:
    for model, (method, data, overrides) in models.items():
      for dtype in DTYPES:
        row = vs_pytorch.Row(
            f"{model} 32x32x3, batch {batch}, {dtype}", method, data, SHAPE, batch,
            tuple(overrides) + (f"train.compute_dtype={dtype}",), steps=1,
            value_range=(0.0, 1.0) if method == "vae" else (-1.0, 1.0))
        out.append((f"{model}-b{batch}-{dtype}", row, dtype))
  return out


def time_row(row: vs_pytorch.Row, min_seconds: float, blocks: int) -> dict[str, Any]:
  """Compile, warm up, then time blocks of steps of about `min_seconds` each."""
  import jax  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  step = vs_pytorch.JaxgenStep(row, vs_pytorch.synthetic_images(row))
  step.run(1)
  first_step = time.perf_counter() - start
  # XLA's cost analysis of the lowered step (before optimisation): the model's
  # FLOPs without a second compilation.
  flops = common.program_flops(jax.jit(step.method.train_step).lower(step.state, step.batch))
  step.run(2)
  start = time.perf_counter()
  step.run(1)
  per_step = max(time.perf_counter() - start, 1e-6)
  steps = max(1, int(min_seconds / per_step))
  rates = []
  for _ in range(blocks):
    start = time.perf_counter()
    step.run(steps)
    rates.append(steps / (time.perf_counter() - start))
  rate = sorted(rates)[len(rates) // 2]
  return {"first_step_s": first_step, "steps_per_block": steps, "block_rates": rates,
          "steps_per_sec": rate, "images_per_sec": rate * row.batch_size,
          "flops_per_step": flops, "achieved_flops_per_sec": flops * rate if flops else None,
          "params": int(sum(step.param_sizes))}


def utilisation(result: dict[str, Any], dtype: str, peaks: dict[str, Any]) -> dict[str, Any]:
  achieved = result.get("achieved_flops_per_sec")
  out = {}
  names = ("tf32", "fp32") if dtype == "float32" else ("bf16",)
  for name in names:
    peak = peaks.get(name)
    out[f"mfu_vs_{name}_peak"] = achieved / peak if achieved and peak else None
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cpu-smoke", action="store_true",
                      help="run on CPU with tiny widths and batches (checks the code paths)")
  parser.add_argument("--budget-seconds", type=float, default=None,
                      help="stop starting rows after this many seconds (default 420; "
                           "none with --cpu-smoke)")
  parser.add_argument("--only", default=None, help="comma-separated row names")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  import jax  # pylint: disable=import-outside-toplevel
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  started = time.perf_counter()
  if args.budget_seconds is None:
    args.budget_seconds = float("inf") if args.cpu_smoke else 420.0
  backend = jax.default_backend()
  if not args.cpu_smoke and backend != "gpu":
    raise SystemExit(f"accelerator.py: JAX's backend is {backend!r}, not a GPU; run "
                     "benchmarks/accelerator.sh (it installs jax[cuda12]) or pass --cpu-smoke")
  name = gpu_name() if backend == "gpu" else None
  peaks = peaks_of(name)
  todo = rows(args.cpu_smoke)
  if args.only:
    wanted = set(args.only.split(","))
    todo = [r for r in todo if r[0] in wanted]
  results: dict[str, Any] = {}
  min_seconds, blocks = (0.05, 2) if args.cpu_smoke else (2.0, 3)
  for row_name, row, dtype in tqdm(todo, desc="accelerator rows", unit="row"):
    elapsed = time.perf_counter() - started
    entry = {"description": row.description, "method": row.method,
             "batch_size": row.batch_size, "compute_dtype": dtype,
             "overrides": list(row.overrides)}
    if elapsed > args.budget_seconds:
      entry["skipped"] = f"time budget of {args.budget_seconds:.0f} s spent"
    else:
      entry.update(time_row(row, min_seconds, blocks))
      entry.update(utilisation(entry, dtype, peaks))
    results[row_name] = entry
  table = ["| row | images/s | FLOPs/step (XLA) | MFU |", "|---|---|---|---|"]
  for row_name, r in results.items():
    if "skipped" in r:
      table.append(f"| {row_name} | skipped | | |")
      continue
    mfu = r.get("mfu_vs_bf16_peak", r.get("mfu_vs_tf32_peak"))
    table.append(f"| {row_name} | {r['images_per_sec']:.0f} | "
                 f"{(r['flops_per_step'] or 0) / 1e9:.3g} G | "
                 f"{'n/a' if mfu is None else f'{100 * mfu:.1f}%'} |")
  payload = {"machine": common.machine(), "gpu": name, "peaks": peaks,
             "cpu_smoke": args.cpu_smoke,
             "budget_seconds": (None if args.budget_seconds == float("inf")
                                else args.budget_seconds),
             "wall_seconds": time.perf_counter() - started,
             "versions": common.versions("jax", "jaxlib", "jax-cuda12-plugin", "flax"),
             "rows": results, "table": table}
  default = "accelerator_cpu_smoke" if args.cpu_smoke else "accelerator"
  common.write(default, payload, args.out)
  print("\n".join(table))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
