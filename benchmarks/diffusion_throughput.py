"""Diffusion throughput: training steps/s and sampling images/s, against the peak.

Run: python benchmarks/diffusion_throughput.py [--out FILE] [--repeats N] [--quick]

For the digits U-Net of experiments/diffusion_digits.py (8x8, T = 1000) it
measures, after warm-up:
  * training: steps/s and examples/s of the jitted `train_step`;
  * sampling: images/s of 1000-step ancestral DDPM and of 50-step DDIM, each one
    compiled `lax.scan` over the steps;
and, for each, the achieved FLOP/s as a share of the machine's peak, measured
in the same run as the best FLOP/s of a large jitted float32 matmul. FLOPs come
from XLA's `cost_analysis()` of the compiled programs: the train step as it
is, the samplers as (steps × the compiled denoiser forward at that batch),
because XLA counts a loop body once whatever its trip count. Writes JSON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import registry  # noqa: E402
from jaxgen.families.diffusion import method as diffusion  # noqa: E402
from jaxgen.families.diffusion import settings as diffusion_settings  # noqa: E402

from benchmarks import common  # noqa: E402

DIGITS_UNET = ["model.channels=32", "model.channel_mults=(1, 2)", "model.num_res_blocks=1",
               "model.attention_resolutions=(4,)"]



def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(
      os.path.dirname(__file__), "results", "diffusion_throughput.json"))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train-batch", type=int, default=64)
  parser.add_argument("--sample-batch", type=int, default=64)
  parser.add_argument("--train-steps", type=int, default=20, help="steps per timing")
  parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
  args = parser.parse_args(argv)
  timesteps, ddim_steps, unet = 1000, 50, DIGITS_UNET
  if args.quick:
    args.repeats, args.train_steps, args.train_batch, args.sample_batch = 1, 2, 8, 4
    timesteps, ddim_steps = 20, 5
    unet = ["model.channels=8", "model.channel_mults=(1,)", "model.num_res_blocks=1",
            "model.attention_resolutions=()", "model.norm_groups=4"]

  report: dict = {
      "machine": common.machine(),
      # The host may be shared; a high load explains low numbers.
      "load_average_1min_start": os.getloadavg()[0],
      "model": "ddpm U-Net on digits 8x8: " + ", ".join(unet) + f", T={timesteps}",
      "repeats": args.repeats,
  }
  size = 512 if args.quick else 2048
  peak = common.peak_matmul_flops(size, repeats=args.repeats + 2)
  report["peak"] = {"matmul_size": size, "peak_flops_per_second": peak}
  print(f"peak {peak / 1e9:.1f} GFLOP/s (matmul)", flush=True)

  config = config_lib.get_config("ddpm", "digits")
  config_lib.apply_overrides(config, unet + [f"model.timesteps={timesteps}",
                                             f"model.sample_steps={ddim_steps}",
                                             f"data.batch_size={args.train_batch}"])
  spec = data_lib.from_config(config.data).spec
  method = registry.get("ddpm").make(config, spec)
  rng = np.random.default_rng(0)
  batch = {"x": jnp.asarray(rng.uniform(-1, 1, (args.train_batch,) + spec.shape), jnp.float32),
           "label": jnp.zeros((args.train_batch,), jnp.int32)}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)

  # Training: the step as the engine runs it (donated state), n steps per timing.
  started = time.perf_counter()
  step = jax.jit(method.train_step, donate_argnums=0).lower(state, batch).compile()
  compile_seconds = time.perf_counter() - started
  step_flops = common.program_flops(step)

  def run_steps():
    nonlocal state
    for _ in range(args.train_steps):
      state, metrics = step(state, batch)
    return metrics

  times = common.timed(run_steps, args.repeats)
  seconds = statistics.median(times) / args.train_steps
  report["train"] = {
      "batch": args.train_batch, "compile_seconds": compile_seconds,
      "seconds_per_step": seconds, "steps_per_second": 1.0 / seconds,
      "examples_per_second": args.train_batch / seconds, "flops_per_step": step_flops,
      "flops_per_second": step_flops / seconds, "share_of_peak": step_flops / seconds / peak,
  }
  print(f"train: {1 / seconds:.2f} steps/s, {args.train_batch / seconds:.1f} examples/s, "
        f"{step_flops / seconds / peak:.1%} of peak", flush=True)

  # One forward of the denoiser at the sampling batch: the FLOPs of a step.
  model_settings = diffusion_settings.resolve(config.model, tuple(spec.shape),
                                              spec.num_classes)
  net = diffusion.make_denoiser(model_settings, tuple(spec.shape), spec.num_classes)
  x = jnp.zeros((args.sample_batch,) + tuple(spec.shape))
  t = jnp.zeros((args.sample_batch,), jnp.int32)
  forward = jax.jit(net.apply).lower({"params": state.params["denoiser"]}, x, t).compile()
  forward_flops = common.program_flops(forward)
  report["sampling"] = {}
  for name, sampler, steps in (("ddpm_1000" if not args.quick else "ddpm_all", "ddpm",
                                timesteps), (f"ddim_{ddim_steps}", "ddim", ddim_steps)):
    fn = jax.jit(lambda s, k, sampler=sampler, steps=steps: method.sample(
        s, k, args.sample_batch, sampler=sampler, steps=steps))
    started = time.perf_counter()
    compiled = fn.lower(state, jax.random.PRNGKey(1)).compile()
    compile_seconds = time.perf_counter() - started
    times = common.timed(lambda c=compiled: c(state, jax.random.PRNGKey(1)),
                  max(1, args.repeats // 2), warmup=0)
    seconds = statistics.median(times)
    flops = steps * forward_flops
    report["sampling"][name] = {
        "sampler": sampler, "steps": steps, "batch": args.sample_batch,
        "compile_seconds": compile_seconds, "seconds": seconds,
        "images_per_second": args.sample_batch / seconds,
        "flops_per_step_forward": forward_flops, "flops": flops,
        "flops_per_second": flops / seconds, "share_of_peak": flops / seconds / peak,
        "cost_analysis_flops_of_loop_program": common.program_flops(compiled),
    }
    print(f"{name}: {args.sample_batch / seconds:.2f} images/s "
          f"({seconds:.1f} s per batch of {args.sample_batch}), "
          f"{flops / seconds / peak:.1%} of peak", flush=True)
  report["load_average_1min_end"] = os.getloadavg()[0]
  common.write("diffusion_throughput", report, args.out)
  return report


if __name__ == "__main__":
  main()
