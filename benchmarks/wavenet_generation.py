"""WaveNet generation: samples/s of the naive and the cached (Fast WaveNet) loop
against the receptive field.

Run: python benchmarks/wavenet_generation.py [--out FILE] [--repeats N] [--quick]

For WaveNets of the default width (residual 32, gate 32, skip 64, output 64,
kernel 2, 2 stacks) and dilation depths 2..8 (receptive fields 16..1024
samples), it times, after compilation, drawing `--batch` signals of
`--length` samples with each loop, both one compiled `lax.scan` over time:
  * naive: the stack run on the R shifted inputs of the receptive field
    before every sample: O(layers · R) per sample;
  * cached: one step per sample with a queue of past activations per
    convolution in the scan carry: O(layers) per sample.
It reports samples/s (batch × length / seconds; median of --repeats) for
both, their ratio, and checks that both draw the same signals. Parameters are
random (speed does not depend on them). Writes JSON.

On a shared CPU the numbers are indicative only; compare the two loops
within one run, not across runs.
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
from jaxgen.data import DataSpec  # noqa: E402
from jaxgen.families.wavenet import method as wavenet  # noqa: E402

from benchmarks import common  # noqa: E402


def signal_spec(length: int) -> DataSpec:
  """A μ-law signal spec of `length` samples (no data are read)."""
  return DataSpec(name="benchmark", shape=(length, 1), num_classes=None, num_train=1,
                  num_test=1, is_image=False, value_range=(-1.0, 1.0), binary=False,
                  levels=256, is_sequence=True, companding="mu_law", sample_rate=8000.0)


def measure(depth: int, stacks: int, length: int, batch: int, repeats: int,
            width: dict[str, int]) -> dict:
  """Samples/s of both loops for one dilation depth."""
  config = config_lib.get_config("wavenet")
  config.model.update(depth=depth, stacks=stacks, **width)
  model = wavenet.model_of(config, signal_spec(length))
  state = wavenet.make(config, signal_spec(length)).init(
      jax.random.PRNGKey(0), {"x": jnp.zeros((1, length, 1))})
  params = state.params["network"]
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(1), i))(jnp.arange(batch))
  row = {"depth": depth, "stacks": stacks, "layers": stacks * (depth + 1),
         "receptive_field": model.receptive_field, "batch": batch, "length": length}
  drawn = {}
  for name, cached in (("naive", False), ("cached", True)):
    fn = jax.jit(lambda p, cached=cached: wavenet.generate(model, p, keys, None, length,
                                                           cached=cached))
    drawn[name] = np.asarray(fn(params))  # compiles
    seconds = common.median_seconds(lambda fn=fn: fn(params), repeats=repeats, warmup=0)
    row[f"{name}_seconds"] = seconds
    row[f"{name}_samples_per_second"] = batch * length / seconds
    print(f"depth {depth} (R={model.receptive_field}) {name}: "
          f"{batch * length / seconds:,.0f} samples/s", flush=True)
  row["speedup"] = row["cached_samples_per_second"] / row["naive_samples_per_second"]
  row["same_samples"] = bool(np.array_equal(drawn["naive"], drawn["cached"]))
  return row


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(
      os.path.dirname(__file__), "results", "wavenet_generation.json"))
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--batch", type=int, default=4, help="signals drawn at once")
  parser.add_argument("--length", type=int, default=256, help="samples per signal")
  parser.add_argument("--depths", default="2,4,6,8",
                      help="dilation depths (1..2^depth per stack), comma-separated")
  parser.add_argument("--stacks", type=int, default=2)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
  args = parser.parse_args(argv)
  depths = [int(d) for d in args.depths.split(",")]
  width = dict(residual_channels=32, dilation_channels=32, skip_channels=64,
               output_channels=64)
  if args.quick:
    args.repeats, args.batch, args.length, depths = 1, 2, 16, [1, 3]
    width = dict(residual_channels=4, dilation_channels=4, skip_channels=4,
                 output_channels=8)
  report: dict = {
      "machine": common.machine(),
      # The host may be shared; a high load explains low numbers.
      "load_average_1min_start": os.getloadavg()[0],
      "model": "wavenet " + ", ".join(f"{k}={v}" for k, v in width.items())
               + f", kernel=2, stacks={args.stacks}; random parameters",
      "repeats": args.repeats,
      "quick": args.quick,
      "rows": [measure(depth, args.stacks, args.length, args.batch, args.repeats, width)
               for depth in depths],
  }
  report["load_average_1min_end"] = os.getloadavg()[0]
  common.write("wavenet_generation", report, args.out)
  return report


if __name__ == "__main__":
  main()
