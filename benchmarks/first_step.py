"""Time to first step (compilation) for each family's default config, cold and warm.

Run: python benchmarks/first_step.py [--quick] [--methods vae,ddpm] [--out FILE]

For each family (its default method, e.g. `vae`, `ddpm`, `gan`, on the
method's default data: digits, or toy2d for the 2-D models) it starts fresh
Python processes, each timing `jaxgen.fit(config)` with one train step (no
evaluation, samples or checkpoints; the data pipeline, init and the train
step's compilation included, Python imports not):

  no_cache  the persistent compilation cache off;
  cold      the cache on, in an empty folder (compiles, then writes entries);
  warm      a second process on the folder `cold` filled (loads entries).

and reports, per process, the wall time to the first step's end, XLA's
compile-or-load seconds summed over the process's programs
(`/jax/core/compile/backend_compile_duration`), tracing and lowering seconds,
and the cache's hits and misses (jax.monitoring events). The difference
between no_cache and warm is what the CLI's default cache (jaxgen/_compile_cache.py)
saves on a rerun of the same model. Results: benchmarks/results/first_step.json.

Timings on a loaded machine are not performance figures; `--quick` (two
families, one round) is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402  pylint: disable=wrong-import-position

REPO = pathlib.Path(__file__).resolve().parents[1]
MODES = ("no_cache", "cold", "warm")
QUICK_METHODS = ("vae", "gmm")


def family_methods() -> dict[str, str]:
  """family -> its default method: the method named like the family, else the first."""
  from jaxgen import registry  # pylint: disable=import-outside-toplevel
  by_family: dict[str, list[str]] = {}
  for name, entry in registry.methods().items():
    if entry.family != "test" and name != "latent_diffusion":  # needs a trained AE
      by_family.setdefault(entry.family, []).append(name)
  preferred = {"autoencoder": "ae", "diffusion": "ddpm", "classifiers": "gaussian_nb"}
  out = {}
  for family, names in sorted(by_family.items()):
    choice = preferred.get(family, family)
    out[family] = choice if choice in names else sorted(names)[0]
  return out


def one_step_config(method: str) -> Any:
  """The method's default config, trained for one step, writing and evaluating nothing."""
  from jaxgen import config as config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.get_config(method)
  config.train.update(steps=1, progress=False, final_eval=False, eval_every=0,
                      sample_every=0, checkpoint_every=0, num_samples=0, log_every=1)
  return config


class CompileMonitor:
  """Sums jax.monitoring's compile durations and counts cache events."""

  EVENTS = {
      "/jax/core/compile/backend_compile_duration": "backend_compile_or_load_s",
      "/jax/core/compile/jaxpr_trace_duration": "trace_s",
      "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
      "/jax/compilation_cache/cache_retrieval_time_sec": "cache_retrieval_s",
  }
  COUNTS = {"/jax/compilation_cache/cache_hits": "cache_hits",
            "/jax/compilation_cache/cache_misses": "cache_misses"}

  def __init__(self):
    import jax  # pylint: disable=import-outside-toplevel
    self.values = {name: 0.0 for name in self.EVENTS.values()}
    self.values.update({name: 0 for name in self.COUNTS.values()})
    self.values["programs"] = 0
    jax.monitoring.register_event_duration_secs_listener(self._duration)
    jax.monitoring.register_event_listener(self._event)

  def _duration(self, event: str, duration: float, **_: Any) -> None:
    if event in self.EVENTS:
      self.values[self.EVENTS[event]] += duration
      if event == "/jax/core/compile/backend_compile_duration":
        self.values["programs"] += 1

  def _event(self, event: str, **_: Any) -> None:
    if event in self.COUNTS:
      self.values[self.COUNTS[event]] += 1


def child(method: str, cache: str | None) -> dict[str, Any]:
  """One measurement in this (fresh) process."""
  start = time.perf_counter()
  import jax  # pylint: disable=import-outside-toplevel
  import jaxgen  # pylint: disable=import-outside-toplevel
  imported = time.perf_counter() - start
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  monitor = CompileMonitor()
  config = one_step_config(method)
  start = time.perf_counter()
  jaxgen.fit(config)
  first_step = time.perf_counter() - start
  return {"method": method, "data": config.data.name, "import_s": imported,
          "first_step_s": first_step, **monitor.values}


def measure(method: str, mode: str, cache_dir: pathlib.Path) -> dict[str, Any]:
  """Runs `child` in a fresh interpreter and returns its JSON line."""
  command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", method]
  if mode != "no_cache":
    command += ["--cache", str(cache_dir)]
  env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
  if done.returncode != 0:
    raise RuntimeError(f"{method} ({mode}) failed:\n{done.stderr[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def run(methods: dict[str, str], rounds: int) -> dict[str, Any]:
  """Every family's rounds of (no_cache, cold, warm); medians per mode."""
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  results: dict[str, Any] = {}
  jobs = [(family, method, r) for family, method in methods.items() for r in range(rounds)]
  for family, method, _ in tqdm(jobs, desc="first step", unit="family-round"):
    entry = results.setdefault(family, {"method": method,
                                        "runs": {mode: [] for mode in MODES}})
    with tempfile.TemporaryDirectory(prefix="jaxgen-first-step-") as cache_dir:
      for mode in MODES:
        entry["runs"][mode].append(measure(method, mode, pathlib.Path(cache_dir)))
  for entry in results.values():
    entry["median_first_step_s"] = {
        mode: sorted(r["first_step_s"] for r in runs)[len(runs) // 2]
        for mode, runs in entry["runs"].items()}
    median = entry["median_first_step_s"]
    entry["warm_over_no_cache"] = median["warm"] / median["no_cache"]
    entry["data"] = entry["runs"]["no_cache"][0]["data"]
  return results


def table(results: dict[str, Any]) -> list[str]:
  """Markdown rows: family (method, data) | no cache | cold | warm | warm / no cache."""
  rows = ["| family (method, data) | no cache (s) | cold cache (s) | warm cache (s) "
          "| warm / no cache |", "|---|---|---|---|---|"]
  for family, entry in results.items():
    m = entry["median_first_step_s"]
    rows.append(f"| {family} ({entry['method']}, {entry['data']}) | {m['no_cache']:.2f} | "
                f"{m['cold']:.2f} | {m['warm']:.2f} | {entry['warm_over_no_cache']:.2f} |")
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help=f"smoke run: {', '.join(QUICK_METHODS)}, one round")
  parser.add_argument("--methods", default=None,
                      help="comma-separated methods (default: each family's default)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--out", default=None)
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child(args.child, args.cache)))
    return
  from jaxgen import registry  # pylint: disable=import-outside-toplevel
  if args.methods or args.quick:
    names = args.methods.split(",") if args.methods else list(QUICK_METHODS)
    methods = {registry.get(n).family: n for n in names}
  else:
    methods = family_methods()
  rounds = 1 if args.quick else args.rounds
  results = run(methods, rounds)
  payload = {"machine": common.machine(), "load_average": os.getloadavg(),
             "rounds": rounds, "quick": args.quick,
             "what": "seconds from jaxgen.fit(config) to the end of its first train step "
                     "in a fresh process (imports excluded); medians over rounds",
             "families": results, "table": table(results)}
  common.write("first_step", payload, args.out)
  print("\n".join(payload["table"]))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
