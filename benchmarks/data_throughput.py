"""The data pipeline alone (examples/s) against what the train step consumes.

Run: python benchmarks/data_throughput.py [--quick] [--out FILE]

For each source it times `jaxgen.data.train_iterator` (grain: shuffling,
batching, the dataset's transforms such as dynamic binarization or
dequantization) drawing batches on the host and nothing else, and, on the
same data and batch size, the bare jitted train step of a model that trains
on it (`benchmarks/engine_overhead.bare_rate`). `pipeline_over_step` > 1
means the pipeline produces examples faster than the step consumes them, so
it is not the bottleneck (the engine draws the next batch while the devices
run the previous step).

Sources: digits (8x8, sklearn), MNIST in IDX files (the t10k test split only,
8,000/2,000 split; skipped when ../shared/data/mnist-t10k is absent), toy2d
(ring8), and an .npz file of synthetic 28x28 uint8 images written to a
temporary folder. Results: benchmarks/results/data_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common, engine_overhead  # noqa: E402  pylint: disable=wrong-import-position

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def write_npz(folder: pathlib.Path, num: int = 10_000) -> pathlib.Path:
  """Synthetic 28x28 uint8 images with labels, as a user's .npz file would hold them."""
  generator = np.random.default_rng(0)
  path = folder / "synthetic.npz"
  np.savez(path, x=generator.integers(0, 256, (num, 28, 28, 1), dtype=np.uint8),
           y=generator.integers(0, 10, (num,), dtype=np.int64))
  return path


def sources(folder: pathlib.Path, quick: bool) -> dict[str, tuple[str, list[str]]]:
  """name -> (method whose step consumes it, overrides)."""
  out = {
      "digits": ("vae", ["data.name=digits"]),
      "toy2d:ring8": ("gan", ["data.name=toy2d:ring8"]),
      "npz-28x28": ("vae", [f"data.name=npz:{write_npz(folder, 2_000 if quick else 10_000)}"]),
  }
  if MNIST.exists() and not quick:
    out["idx:mnist-t10k"] = ("vae", [f"data.name=idx:{MNIST}"])
  return out


def pipeline_rate(config: Any, batches: int, repeats: int) -> dict[str, float]:
  """Examples/s of the train iterator alone (best of `repeats` timed runs)."""
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  dataset = data_lib.from_config(config.data)
  iterator = data_lib.train_iterator(dataset, batch_size=config.data.batch_size, seed=0)
  # Untimed: grain starts its workers and reads the source; drawing as many
  # batches as a timed run also drains any read-ahead buffer, so the timed
  # runs see the steady rate at which batches are produced.
  for _ in range(batches + 1):
    next(iterator)
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(batches):
      next(iterator)
    best = min(best, time.perf_counter() - start)
  return {"examples_per_sec": batches * config.data.batch_size / best,
          "batches_per_sec": batches / best}


def measure(method: str, overrides: list[str], batches: int, steps: int,
            repeats: int) -> dict[str, Any]:
  from jaxgen import config as config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.get_config(method)
  config_lib.apply_overrides(config, overrides)
  config.lock()
  pipeline = pipeline_rate(config, batches, repeats)
  step = engine_overhead.bare_rate(config, steps, repeats)
  return {"method": method, "batch_size": config.data.batch_size,
          "pipeline": pipeline, "train_step": step,
          "pipeline_over_step": pipeline["examples_per_sec"] / step["examples_per_sec"]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="smoke run: few batches")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  batches, steps, repeats = (5, 4, 1) if args.quick else (200, 50, 3)
  with tempfile.TemporaryDirectory(prefix="jaxgen-data-") as folder:
    todo = sources(pathlib.Path(folder), args.quick)
    results = {name: measure(method, overrides, batches, steps, repeats)
               for name, (method, overrides) in tqdm(todo.items(), desc="data",
                                                     unit="source")}
  for name, (_, overrides) in todo.items():
    # Recorded without this machine's paths: the temporary folder, and MNIST
    # as the docs write it (relative to the repository root).
    results[name]["overrides"] = [
        o.replace(folder, "<tmp>").replace(str(MNIST), "../shared/data/mnist-t10k")
        for o in overrides]
  rows = ["| source (step, batch) | pipeline examples/s | train step examples/s | "
          "pipeline / step |", "|---|---|---|---|"]
  for name, r in results.items():
    rows.append(f"| {name} ({r['method']}, {r['batch_size']}) | "
                f"{r['pipeline']['examples_per_sec']:.0f} | "
                f"{r['train_step']['examples_per_sec']:.0f} | {r['pipeline_over_step']:.1f} |")
  payload = {"machine": common.machine(), "load_average": os.getloadavg(),
             "quick": args.quick, "batches": batches, "sources": results, "table": rows,
             "mnist": "MNIST rows use the t10k test split only (8,000/2,000 split)"}
  common.write("data_throughput", payload, args.out)
  print("\n".join(rows))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
