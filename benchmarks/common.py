"""Shared pieces of the benchmarks: the machine's peak, timing, JSON output.

Every benchmark measures the machine's peak matmul FLOP/s in the same run, so
its achieved FLOP/s can be read as a share of what this machine can do now.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

# jaxgen first: importing it sets its default XLA flags (jaxgen/_xla_flags.py),
# which XLA reads only when the first backend starts (machine() below starts it).
import jaxgen  # noqa: F401  pylint: disable=unused-import
import jax
import jax.numpy as jnp
import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> list[float]:
  """Wall times of `fn()` (blocked until ready) after `warmup` untimed calls."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return times


def median_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
  """Median wall time of `fn()` (blocked until ready) after `warmup` calls."""
  return statistics.median(timed(fn, repeats, warmup))


def peak_matmul_flops(size: int = 2048, dtype=jnp.float32, repeats: int = 5) -> float:
  """Best FLOP/s of a large jitted matmul chain: the practical peak here."""
  x = jnp.ones((size, size), dtype) / size
  chain = 4

  @jax.jit
  def matmuls(a):
    for _ in range(chain):
      a = a @ x
    return a

  jax.block_until_ready(matmuls(x))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmuls(x))
    best = min(best, time.perf_counter() - start)
  return chain * 2 * size**3 / best


def program_flops(compiled: Any) -> float | None:
  """XLA's FLOP count of one call of a compiled program (None if unknown)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get("flops")
  return float(flops) if flops else None


def compiled_flops(jitted: Any, *args: Any) -> float | None:
  """XLA's FLOP count of one call of a jitted function (None if unknown)."""
  return program_flops(jitted.lower(*args).compile())


def machine() -> dict[str, Any]:
  """Where the numbers were taken."""
  devices = jax.devices()
  return {
      "platform": platform.platform(),
      "processor": platform.processor() or platform.machine(),
      "cpu_count": os.cpu_count(),
      "jax": jax.__version__,
      "backend": jax.default_backend(),
      "devices": [d.device_kind for d in devices],
      "date": time.strftime("%Y-%m-%d"),
  }


def versions(*packages: str) -> dict[str, str | None]:
  """Installed versions of `packages` (None for one that is not installed), and Python's."""
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  out: dict[str, str | None] = {"python": platform.python_version()}
  for package in packages:
    try:
      out[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      out[package] = None
  return out


def peak_rss_mib() -> float:
  """This process's peak resident memory so far (MiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(name: str, payload: dict[str, Any], out: str | None = None) -> pathlib.Path:
  """Writes results JSON to `out` or benchmarks/results/NAME.json and prints it."""
  path = pathlib.Path(out) if out else RESULTS / f"{name}.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2) + "\n")
  print(json.dumps(payload, indent=2))
  print(f"wrote {path}")
  return path


def engine_rate(config: Any) -> dict[str, float]:
  """Steps/s of `jaxgen.fit(config)` after its first logging window, and its wall time.

  The first window holds the compilation, so it is left out of the rate.
  """
  import jaxgen  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  result = jaxgen.fit(config)
  wall = time.perf_counter() - start
  rates = [r["steps_per_sec"] for r in result.history if r.get("split") == "train"]
  rate = float(np.median(rates[1:] if len(rates) > 1 else rates))
  return {"steps_per_sec": rate, "examples_per_sec": rate * config.data.batch_size,
          "wall_seconds_incl_compile": wall, "steps": config.train.steps}
