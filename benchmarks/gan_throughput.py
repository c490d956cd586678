"""GAN train-step throughput: MLP-GAN on 2-D data, DCGAN on digits and MNIST.

Run: python benchmarks/gan_throughput.py [--quick] [--out FILE]

For each configuration: the bare jitted train step (n_critic discriminator
updates and one generator update) on one fixed batch: steps/s, examples/s,
XLA's FLOP count per step, the achieved FLOP/s and its share of the machine's
peak (a large jitted matmul, measured in the same run); and the same step
inside the engine (`jaxgen.fit`, steps/s after the first logging window), and
with 8 seeds trained together (the multi-seed mode the mode-collapse study
uses), vmapped and looped (`train.seed_strategy`). Results go to
benchmarks/results/gan_throughput.json.
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
MLP = ["model.generator_hidden=(64, 64)", "model.discriminator_hidden=(64, 64)",
       "data.batch_size=64"]


def configs(quick: bool) -> dict[str, tuple[str, list[str]]]:
  """Name -> (dataset, overrides of the default gan config)."""
  runs = {
      "mlp-gan-ring8": ("toy2d:ring8", MLP),
      "mlp-wgan-gp-ring8": ("toy2d:ring8", MLP + ["model.objective=wgan_gp"]),
      "dcgan-digits": ("digits", []),
  }
  if MNIST.exists() and not quick:
    runs["dcgan-mnist-half-width"] = (f"idx:{MNIST}", [
        "model.generator_channels=(64, 32)", "model.discriminator_channels=(32, 64)"])
    runs["dcgan-mnist"] = (f"idx:{MNIST}", [])
  return runs


def make_config(data: str, overrides: list[str], steps: int, **train):
  config = jaxgen.get_config("gan", data)
  config_lib.apply_overrides(config, overrides)
  config.train.update(steps=steps, progress=False, final_eval=False, eval_every=0,
                      sample_every=0, checkpoint_every=0, num_samples=0,
                      log_every=max(steps // 4, 1), **train)
  return config


def bare_step(config, repeats: int, peak: float, inner: int) -> dict[str, float]:
  """The jitted train step alone, on one fixed batch."""
  dataset = data_lib.from_config(config.data)
  method = jaxgen.registry.get("gan").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=config.data.batch_size, seed=0))
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  flops = common.compiled_flops(jax.jit(method.train_step), state, batch)
  step = jax.jit(method.train_step, donate_argnums=0)

  def run():
    nonlocal state
    for _ in range(inner):
      state, metrics = step(state, batch)
    return metrics

  seconds = common.median_seconds(run, repeats=repeats) / inner
  return {
      "batch_size": config.data.batch_size,
      "n_critic": int(method.eval_protocol["settings"]["n_critic"]),
      "steps_per_sec": 1 / seconds,
      "examples_per_sec": config.data.batch_size / seconds,
      "flops_per_step": flops,
      "achieved_flops_per_sec": flops / seconds if flops else None,
      "share_of_peak": flops / seconds / peak if flops else None,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  repeats = 3 if args.quick else 5
  peak = common.peak_matmul_flops(1024 if args.quick else 2048)
  print(f"peak matmul: {peak / 1e9:.1f} GFLOP/s")
  results = {"machine": common.machine(), "peak_flops_per_sec": peak,
             "load_average_1min": os.getloadavg()[0], "configs": {}}
  for name, (data, overrides) in configs(args.quick).items():
    heavy = "mnist" in name
    steps = 20 if args.quick or heavy else 400
    config = make_config(data, overrides, steps)
    entry = {"data": data, "overrides": overrides,
             "bare": bare_step(config, repeats, peak, inner=2 if heavy else 20),
             "engine": common.engine_rate(config)}
    if not heavy:
      for seed_strategy in ("vmap", "loop"):
        multi = common.engine_rate(make_config(data, overrides, steps, seeds=tuple(range(8)),
                                               seed_strategy=seed_strategy))
        entry[f"engine_8_seeds_{seed_strategy}"] = {
            **multi, "seed_steps_per_sec": 8 * multi["steps_per_sec"]}
    results["configs"][name] = entry
    print(name, entry, flush=True)
  results["load_average_1min_end"] = os.getloadavg()[0]
  results["peak_rss_mib"] = common.peak_rss_mib()
  common.write("gan_throughput", results, args.out)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
