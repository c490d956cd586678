"""RBM throughput: CD-k train steps/s and AIS chains x temperatures per second.

Run: python benchmarks/rbm_throughput.py [--out FILE] [--repeats N] [--quick]

For a 784 x 500 Bernoulli RBM (S&M 2008's MNIST model) on random binary
batches of 100, it measures after warm-up:
  * the jitted `rbm` train step (CD-1, CD-25, PCD-1 with 100 chains): steps/s,
    examples/s;
  * AIS: one compiled chunk of `chunk` temperatures over M = 100 runs:
    run-temperatures per second (M × temperatures / s), and the time the
    paper's 14,500 temperatures would take at that rate;
with the machine's peak matmul FLOP/s measured in the same run. `--quick`
uses a 64 x 16 RBM, CD-2 in place of CD-25 and tiny counts (a smoke test). Writes JSON (default
benchmarks/results/rbm_throughput.json). Numbers taken on a loaded, shared
machine are not performance figures.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import registry  # noqa: E402
from jaxgen.families.boltzmann import ais  # noqa: E402

from benchmarks import common  # noqa: E402


class _Spec:
  """The data spec `make` reads (a flattened binary image)."""

  def __init__(self, dim: int):
    self.name, self.shape, self.binary, self.value_range = "random", (dim,), True, (0.0, 1.0)
    self.num_train, self.num_test, self.is_image, self.num_classes = 8000, 2000, False, None


def train_rate(dim: int, hidden: int, batch: int, overrides: list[str], repeats: int,
               steps: int) -> dict:
  """Steps/s of the jitted rbm train step (a `lax.fori_loop`-free Python loop of `steps`)."""
  config = config_lib.get_config("rbm")
  config_lib.apply_overrides(config, [f"model.hidden={hidden}", f"data.batch_size={batch}"]
                             + overrides)
  method = registry.get("rbm").make(config, _Spec(dim))
  x = (np.random.default_rng(0).random((batch, dim)) < 0.3).astype(np.float32)
  batch_dict = {"x": jnp.asarray(x)}
  state = method.init(jax.random.PRNGKey(0), batch_dict)
  step = jax.jit(method.train_step)

  def run():
    s = state
    for _ in range(steps):
      s, _ = step(s, batch_dict)
    return s.params

  seconds = common.median_seconds(run, repeats) / steps
  # Counted by hand: XLA's cost analysis counts a loop's body once, so it would
  # give CD-25 the FLOPs of CD-1. Per step: v->h for the data, k Gibbs sweeps
  # (h->v, v->h), and the two outer products of the gradient; 2*B*D*H each.
  k = config.model.cd_steps
  chains = config.model.num_chains if config.model.persistent else batch
  flops = 2 * dim * hidden * (3 * batch + 2 * k * chains)
  return {"steps_per_sec": 1 / seconds, "examples_per_sec": batch / seconds,
          "matmul_flops_per_step": flops, "achieved_matmul_flops": flops / seconds}


def ais_rate(dim: int, hidden: int, runs: int, chunk: int, repeats: int) -> dict:
  """Run-temperatures per second of one compiled AIS chunk."""
  r = np.random.default_rng(1)
  params = {"weights": jnp.asarray(0.01 * r.standard_normal((dim, hidden)), jnp.float32),
            "visible_bias": jnp.zeros(dim), "hidden_bias": jnp.zeros(hidden),
            "base_bias": jnp.zeros(dim)}
  betas = np.linspace(0, 1, chunk + 1)
  fn = lambda: ais.log_weights(model="rbm", params=params, betas=betas,  # noqa: E731
                               key=jax.random.PRNGKey(0), runs=runs, chunk=chunk)[0]
  seconds = common.median_seconds(fn, repeats)
  rate = runs * chunk / seconds
  return {"runs": runs, "temperatures": chunk, "seconds": seconds,
          "run_temperatures_per_sec": rate,
          "paper_schedule_seconds": runs * 14_500 / rate}


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=None)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args(argv)
  load_before = os.getloadavg()[0]
  dim, hidden, batch, steps, chunk = (64, 16, 16, 2, 20) if args.quick else (784, 500, 100, 50, 500)
  long_k = 2 if args.quick else 25
  rows = {
      "cd1": train_rate(dim, hidden, batch, ["model.cd_steps=1"], args.repeats, steps),
      f"cd{long_k}": train_rate(dim, hidden, batch, [f"model.cd_steps={long_k}"],
                                args.repeats, steps),
      "pcd1": train_rate(dim, hidden, batch, ["model.persistent=True",
                                              f"model.num_chains={batch}"], args.repeats, steps),
  }
  payload = {
      "benchmark": "rbm_throughput", "model": f"{dim} x {hidden} Bernoulli RBM, batch {batch}",
      "train": rows, "ais": ais_rate(dim, hidden, 100, chunk, args.repeats),
      "peak_matmul_flops": common.peak_matmul_flops(512 if args.quick else 2048),
      "machine": common.machine(), "quick": args.quick,
      "load_average": {"before": load_before, "after": os.getloadavg()[0]},
  }
  if args.quick or load_before > 1.0:  # (the run itself loads the machine after)
    payload["note"] = "a smoke run or a loaded machine: not a performance figure"
  common.write("rbm_throughput", payload, args.out)
  return payload


if __name__ == "__main__":
  main()
