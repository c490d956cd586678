"""The runs of tests/engine/test_multiprocess.py, in every process of a multi-process job.

  XLA_FLAGS=--xla_force_host_platform_device_count=2 \
    python -m jaxgen launch --processes 2 -- python tests/engine/multiprocess_driver.py ROOT

Each process runs the same `jaxgen.fit` calls (one `jax.distributed` session
for all of them, so the job starts once), into ROOT/<name>:

* vae: a tiny VAE, uninterrupted, with a final evaluation on a split that the
  eval batch does not divide (padding masked); then the same again into its
  workdir, which process 0 refuses (and so every process);
* vae_signalled: the same run stopped by a SIGTERM that only process 0
  receives (the processes must agree on the step), then resumed;
* gan, gan_resumed: a small GAN under train.strategy=fsdp (its 64x64 kernels
  and their Adam moments sharded over the 4 devices of both processes)
  uninterrupted, and stopped at step GAN_STOP then resumed (a sharded
  checkpoint written and read by both processes).

The test compares the saved checkpoints with one-process runs of the same
configs (`configs()`), and the resumed runs with the uninterrupted ones.
"""

import copy
import json
import os
import pathlib
import signal
import sys
import threading
import time

STEPS = 40            # long enough for a signal to land before the end
GAN_STEPS, GAN_STOP = 12, 5


COMMON = ["train.progress=False", "train.num_samples=0", "train.tensorboard=off",
          f"train.schedule_steps={STEPS}"]
# The VAE on digits, also trained through `jaxgen launch -- train vae --set ...`.
VAE = [*COMMON, "model.hidden=(32,)", "model.latent_dim=2", "data.batch_size=16",
       "optim.learning_rate=0.003", "train.log_every=1", "train.eval_batch_size=24",
       "train.checkpoint_every=0"]


def configs():
  """name -> config of every run (the test builds its references from these)."""
  from jaxgen import config as config_lib  # pylint: disable=import-outside-toplevel
  vae = config_lib.get_config("vae")
  config_lib.apply_overrides(vae, [*VAE, f"train.steps={STEPS}"])
  gan = config_lib.get_config("gan", "toy2d:ring8")
  config_lib.apply_overrides(gan, [
      *COMMON, "model.generator_hidden=(64, 64)", "model.discriminator_hidden=(64, 64)",
      "model.latent_dim=3", "data.batch_size=16", "train.final_eval=False",
      "train.coverage_samples=0", f"train.steps={GAN_STEPS}", "train.strategy='fsdp'"])
  return {"vae": vae, "gan": gan}


def _signal_self_after(metrics: pathlib.Path, step: int) -> threading.Thread:
  """SIGTERM to this process once `metrics` records `step` (process 0 only)."""

  def watch():
    while True:
      try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
      except OSError:
        lines = []
      if any(json.loads(l).get("step", 0) >= step for l in lines if l.endswith("}")):
        os.kill(os.getpid(), signal.SIGTERM)
        return
      time.sleep(0.002)

  thread = threading.Thread(target=watch, daemon=True)
  thread.start()
  return thread


def main(root: str) -> None:
  started = time.perf_counter()
  import jax  # pylint: disable=import-outside-toplevel
  import jaxgen  # pylint: disable=import-outside-toplevel
  from jaxgen.engine import parallel  # pylint: disable=import-outside-toplevel
  from jaxgen.errors import TrainingInterrupted, WorkdirError  # pylint: disable=import-outside-toplevel
  assert parallel.maybe_initialize_distributed(), "not started by jaxgen launch"
  imported = time.perf_counter() - started
  root = pathlib.Path(root)
  # The resumed runs compile the programs of the first ones: a persistent
  # cache (in memory, jax keys programs by their closures) saves that time.
  jax.config.update("jax_compilation_cache_dir", str(root / "xla_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  runs = configs()
  report = {"process": jax.process_index(), "processes": jax.process_count(),
            "local_devices": jax.local_device_count(), "devices": jax.device_count()}

  seconds = report["seconds"] = {"import_and_connect": round(imported, 2)}
  clock = time.perf_counter()

  def lap(name):
    nonlocal clock
    seconds[name] = round(time.perf_counter() - clock, 2)
    clock = time.perf_counter()

  jaxgen.fit(runs["vae"], workdir=root / "vae")
  lap("vae")
  try:  # a workdir that holds a run: refused by process 0, and so by all
    jaxgen.fit(runs["vae"], workdir=root / "vae")
  except WorkdirError as error:
    report["refused"] = str(error)

  if jax.process_index() == 0:
    _signal_self_after(root / "vae_signalled" / "metrics.jsonl", 2)
  try:
    jaxgen.fit(runs["vae"], workdir=root / "vae_signalled")
    report["vae_signalled"] = {"status": "completed"}
  except TrainingInterrupted as error:   # every process raises it, at the same step
    stopped = error.result
    report["vae_signalled"] = {"status": stopped.status, "signal": error.signal,
                               "step": int(jax.device_get(stopped.state.step)),
                               "error_step": error.step}
  lap("vae_signalled")
  jaxgen.fit(runs["vae"], workdir=root / "vae_signalled", resume=True)
  lap("vae_resumed")

  jaxgen.fit(runs["gan"], workdir=root / "gan")
  lap("gan")
  first = copy.deepcopy(runs["gan"])
  first.train.steps = GAN_STOP
  jaxgen.fit(first, workdir=root / "gan_resumed")
  jaxgen.fit(runs["gan"], workdir=root / "gan_resumed", resume=True)
  lap("gan_stopped_and_resumed")

  (root / f"report{jax.process_index()}.json").write_text(json.dumps(report))


if __name__ == "__main__":
  main(sys.argv[1])
