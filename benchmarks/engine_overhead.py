"""The engine's overhead over the bare jitted train step, for every family.

Run: python benchmarks/engine_overhead.py [--quick] [--methods vae,gan] [--out FILE]

For each family's default method on its default data (the config
`benchmarks/first_step.py` uses) it measures, in one process:

  bare    `jax.jit(method.train_step, donate_argnums=0)` on one fixed batch,
          steps/s over timed blocks of steps (median of `--repeats` blocks);
  engine  `jaxgen.fit(config)` in memory on the same config (data pipeline,
          device placement, per-step NaN checks, logging; no evaluation,
          samples or checkpoints), steps/s from its logged windows after the
          first (which holds the compilation): `benchmarks/common.engine_rate`;

and reports `engine_over_bare` = engine steps/s / bare steps/s (1.0: no
overhead) with the per-step overhead in milliseconds. The engine's
rate also pays for the data pipeline; benchmarks/data_throughput.py measures
that alone. Results: benchmarks/results/engine_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Any

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common, first_step  # noqa: E402  pylint: disable=wrong-import-position

QUICK_METHODS = ("vae", "gmm")


def bare_rate(config: Any, steps: int, repeats: int) -> dict[str, float]:
  """Steps/s of the jitted train step alone on one fixed batch of `config`'s data."""
  from jaxgen import data as data_lib, registry  # pylint: disable=import-outside-toplevel
  dataset = data_lib.from_config(config.data)
  method = registry.get(config.method).make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=config.data.batch_size, seed=0))
  batch = jax.device_put(batch)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step, donate_argnums=0)

  def block():
    nonlocal state
    for _ in range(steps):
      state, metrics = step(state, batch)
    return metrics

  seconds = common.median_seconds(block, repeats=repeats, warmup=1) / steps
  return {"steps_per_sec": 1 / seconds,
          "examples_per_sec": config.data.batch_size / seconds}


def measure(method: str, steps: int, repeats: int) -> dict[str, Any]:
  """Bare and engine rates of `method`'s default config."""
  config = first_step.one_step_config(method)
  config.train.steps = steps * 4
  config.train.log_every = steps
  bare = bare_rate(config, steps, repeats)
  engine = common.engine_rate(config)
  return {
      "method": method, "data": config.data.name, "batch_size": config.data.batch_size,
      "bare": bare, "engine": engine,
      "engine_over_bare": engine["steps_per_sec"] / bare["steps_per_sec"],
      "overhead_ms_per_step": 1e3 * (1 / engine["steps_per_sec"] - 1 / bare["steps_per_sec"]),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help=f"smoke run: {', '.join(QUICK_METHODS)}, few steps")
  parser.add_argument("--methods", default=None,
                      help="comma-separated methods (default: each family's default)")
  parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  from jaxgen import registry  # pylint: disable=import-outside-toplevel
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  if args.methods or args.quick:
    names = args.methods.split(",") if args.methods else list(QUICK_METHODS)
    methods = {registry.get(n).family: n for n in names}
  else:
    methods = first_step.family_methods()
  steps, repeats = (8, 2) if args.quick else (args.steps, args.repeats)
  results = {family: measure(method, steps, repeats)
             for family, method in tqdm(methods.items(), desc="engine overhead",
                                        unit="family")}
  rows = ["| family (method, data, batch) | bare steps/s | engine steps/s | engine / bare "
          "| overhead ms/step |", "|---|---|---|---|---|"]
  for family, r in results.items():
    rows.append(f"| {family} ({r['method']}, {r['data']}, {r['batch_size']}) | "
                f"{r['bare']['steps_per_sec']:.1f} | {r['engine']['steps_per_sec']:.1f} | "
                f"{r['engine_over_bare']:.2f} | {r['overhead_ms_per_step']:.2f} |")
  payload = {"machine": common.machine(), "load_average": os.getloadavg(),
             "quick": args.quick, "steps_per_block": steps, "repeats": repeats,
             "families": results, "table": rows}
  common.write("engine_overhead", payload, args.out)
  print("\n".join(rows))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
