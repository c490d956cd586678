"""Train-step throughput of the VAE, and what multi-seed training costs.

Run: python benchmarks/train_throughput.py [--quick] [--out FILE]

For each configuration it reports
  * the bare jitted train step: steps/s, examples/s, XLA's FLOPs per step, the
    achieved FLOP/s and its share of the machine's peak (a large jitted matmul,
    measured in the same run);
  * the same step inside the engine (`jaxgen.fit`: data pipeline, per-step
    metric checks, logging), from the logged steps/s after compilation;
and for the multi-seed mode, K seeds trained together (one vmapped program)
against K separate runs: per-step time and whole wall time, compile included.
Results go to benchmarks/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jaxgen  # noqa: E402  pylint: disable=wrong-import-position
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402

from benchmarks import common  # noqa: E402

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def configs(quick: bool) -> dict[str, list[str]]:
  """Name -> overrides of the default VAE config."""
  runs = {
      "vae-mlp-digits": [],
      "vae-conv-digits": ["model.architecture=conv"],
  }
  if MNIST.exists() and not quick:
    runs["vae-mlp-mnist"] = [f"data.name=idx:{MNIST}", "model.hidden=(512, 256)",
                             "model.latent_dim=32"]
    runs["vae-conv-mnist"] = [f"data.name=idx:{MNIST}", "model.architecture=conv",
                              "model.latent_dim=32"]
  return runs


def make_config(overrides: list[str], steps: int, **train) -> "jaxgen.ConfigDict":
  config = config_lib.get_config("vae")
  config_lib.apply_overrides(config, overrides)
  config.train.update(steps=steps, progress=False, final_eval=False, eval_every=0,
                      sample_every=0, checkpoint_every=0, num_samples=0,
                      log_every=max(steps // 4, 1), **train)
  return config


def bare_step(config, repeats: int, peak: float) -> dict[str, float]:
  """The jitted train step alone, on one fixed batch."""
  dataset = data_lib.from_config(config.data)
  method = jaxgen.registry.get("vae").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=config.data.batch_size, seed=0))
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step, donate_argnums=0)
  flops = common.compiled_flops(jax.jit(method.train_step), state, batch)

  def run(n=50):
    nonlocal state
    for _ in range(n):
      state, metrics = step(state, batch)
    return metrics

  seconds = common.median_seconds(run, repeats=repeats) / 50
  return {
      "batch_size": config.data.batch_size,
      "steps_per_sec": 1 / seconds,
      "examples_per_sec": config.data.batch_size / seconds,
      "flops_per_step": flops,
      "achieved_flops_per_sec": flops / seconds if flops else None,
      "share_of_peak": flops / seconds / peak if flops else None,
  }


def multi_seed(overrides: list[str], steps: int, k: int) -> dict[str, float]:
  """K seeds in one program vs K separate runs (per step, and wall incl. compile)."""
  single = common.engine_rate(make_config(overrides, steps))
  single_rate, separate_wall = single["steps_per_sec"], single["wall_seconds_incl_compile"]
  for seed in range(1, k):
    separate_wall += common.engine_rate(
        make_config(overrides, steps, seed=seed))["wall_seconds_incl_compile"]
  multi = common.engine_rate(make_config(overrides, steps, seeds=tuple(range(k))))
  multi_rate, multi_wall = multi["steps_per_sec"], multi["wall_seconds_incl_compile"]
  return {
      "overrides": overrides,
      "seeds": k,
      "steps": steps,
      "single_seed_steps_per_sec": single_rate,
      "k_seed_steps_per_sec": multi_rate,
      # < 1: one step of K vmapped replicas costs less than K single steps.
      "per_step_cost_vs_k_runs": (1 / multi_rate) / (k / single_rate),
      "k_separate_runs_wall_seconds": separate_wall,
      "one_k_seed_run_wall_seconds": multi_wall,
      "wall_speedup": separate_wall / multi_wall,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
  parser.add_argument("--out", default=None)
  parser.add_argument("--seeds", type=int, default=8)
  args = parser.parse_args()
  steps = 200 if args.quick else 2000
  repeats = 3 if args.quick else 7

  peak = common.peak_matmul_flops(1024 if args.quick else 2048)
  print(f"peak matmul: {peak / 1e9:.1f} GFLOP/s")
  results = {"machine": common.machine(), "peak_flops_per_sec": peak, "configs": {}}
  for name, overrides in configs(args.quick).items():
    config = make_config(overrides, steps)
    entry = {"overrides": overrides, "bare": bare_step(config, repeats, peak)}
    entry["engine"] = common.engine_rate(config)
    results["configs"][name] = entry
    print(name, entry)

  # Multi-seed: K replicas in one vmapped program against K separate runs, on
  # a compute-heavy case (MLP on digits) and a small one (MLP on 2-D data).
  results["multi_seed"] = {
      name: multi_seed(overrides, steps, args.seeds)
      for name, overrides in (("vae-mlp-digits", []),
                              ("vae-mlp-ring8", ["data.name=toy2d:ring8",
                                                 "model.hidden=(64, 64)",
                                                 "model.likelihood=gaussian",
                                                 "data.binarize=none"]))}
  results["peak_rss_mib"] = common.peak_rss_mib()
  common.write("train_throughput", results, args.out)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
