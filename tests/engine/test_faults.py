"""Fault injection through the real `jaxgen` command: kill -9, a second trainer, damaged checkpoints.

Each case asserts what the engine promises (docs/reliability.md): no data loss,
bit-exact resume where it applies, one line and exit status 2 for a refusal.
"""

import importlib.util
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import cli, registry
from jaxgen.engine import workdir as workdir_lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAIN = ["train", "vae", "--data", "toy2d:ring8", "--steps", "120", "--no-progress",
         "--set", "model.hidden=[16]", "--set", "train.checkpoint_every=1",
         "--set", "train.log_every=10", "--set", "train.eval_every=0",
         "--set", "train.final_eval=false", "--set", "train.num_samples=0",
         "--set", "data.batch_size=32"]

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
  return {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}


def _jaxgen(*args: str, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxgen", *args], env=_env(),
                        capture_output=True, text=True, timeout=300, **kwargs)


def _start(*args: str) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, "-m", "jaxgen", *args], env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _params(workdir: pathlib.Path) -> list[np.ndarray]:
  run = jaxgen.load(workdir)
  return [np.asarray(x) for x in jax.tree.leaves(run.state.params)]


def _wait_for_checkpoint(workdir: pathlib.Path, timeout: float = 120) -> None:
  deadline = time.time() + timeout
  while time.time() < deadline:
    if workdir_lib.has_checkpoint(workdir):
      return
    time.sleep(0.05)
  raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[np.ndarray]:
  workdir = tmp_path_factory.mktemp("faults") / "reference"
  done = _jaxgen(*TRAIN, "--workdir", str(workdir))
  assert done.returncode == 0, done.stderr[-2000:]
  return _params(workdir)


def test_kill_9_at_random_points_then_resume_is_bit_exact(tmp_path, reference):
  """kill -9 twice (checkpoints every step, so often mid-save), resume: same bits, no lost or doubled records."""
  workdir = tmp_path / "killed"
  rand = random.Random(0)
  for _ in range(2):
    proc = _start(*TRAIN, "--workdir", str(workdir), "--resume")
    _wait_for_checkpoint(workdir)
    time.sleep(rand.uniform(0.2, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
  done = _jaxgen(*TRAIN, "--workdir", str(workdir), "--resume")
  assert done.returncode == 0, done.stderr[-2000:]
  for got, want in zip(_params(workdir), reference):
    np.testing.assert_array_equal(got, want)
  steps = [r["step"] for r in jaxgen.engine.loop.iterate_records(workdir)
           if r.get("split") == "train" and "loss" in r]
  assert steps == sorted(set(steps)), "a step was logged twice"
  assert steps[-1] == 120
  assert not list((workdir / "checkpoints").glob("*.orbax-checkpoint-tmp*"))


def test_a_second_trainer_is_refused_while_the_first_runs(tmp_path):
  workdir = tmp_path / "busy"
  slow = [*TRAIN[:5], "100000", *TRAIN[6:]]
  first = _start(*slow, "--workdir", str(workdir))
  try:
    _wait_for_checkpoint(workdir)
    for extra in (["--resume"], ["--overwrite"]):
      second = _jaxgen(*TRAIN, "--workdir", str(workdir), *extra)
      assert second.returncode == 2, second.stderr[-2000:]
      lines = second.stderr.strip().splitlines()
      assert len(lines) == 1 and "is in use by a running trainer (pid" in lines[0], lines
    assert first.poll() is None     # the first trainer never noticed
  finally:
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
  assert first.returncode == 128 + signal.SIGTERM
  assert (workdir / "config.json").exists()


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, reference):
  workdir = tmp_path / "damaged"
  half = [*TRAIN[:5], "60", *TRAIN[6:]]
  assert _jaxgen(*half, "--workdir", str(workdir)).returncode == 0
  newest = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  for file in (workdir / "checkpoints" / str(newest) / "state").rglob("*"):
    if file.is_file() and file.stat().st_size > 64 and "metadata" not in file.name.lower():
      file.write_bytes(file.read_bytes()[:16])
  done = _jaxgen(*TRAIN, "--workdir", str(workdir), "--resume")
  assert done.returncode == 0, done.stderr[-2000:]
  assert f"checkpoint {newest} in" in done.stderr and "cannot be restored" in done.stderr
  for got, want in zip(_params(workdir), reference):
    np.testing.assert_array_equal(got, want)
  assert (workdir / "checkpoints.damaged" / str(newest)).is_dir()   # kept, set aside
  records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  steps = [r["step"] for r in records if r.get("split") == "train" and "loss" in r]
  assert steps == sorted(set(steps))


def test_sigint_during_the_final_evaluation_exits_130_quietly(tmp_path):
  """Training is done and checkpointed; a long final evaluation is interrupted."""
  workdir = tmp_path / "final"
  args = [*TRAIN[:5], "4", *TRAIN[6:]]
  args[args.index("train.final_eval=false")] = "train.final_eval=true"
  args[args.index("train.checkpoint_every=1")] = "train.checkpoint_every=0"
  proc = _start(*args, "--set", "train.coverage_samples=2000000000", "--workdir",
                str(workdir))
  deadline = time.time() + 240
  while not (workdir / "checkpoints" / "4").is_dir() and time.time() < deadline:
    time.sleep(0.05)
  # Into the evaluation of 2e9 samples in chunks (minutes): past the
  # compilation of its program even on a loaded machine, where a signal sent
  # 1 s after the checkpoint was seen to be lost (the run finished, exit 0;
  # not yet explained), and long before its end.
  time.sleep(5.0)
  assert proc.poll() is None, "the final evaluation ended before the signal"
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130
  # Under load the signal can still land while the last checkpoint is being
  # finished (the folder exists before the loop is left); the run then stops
  # before the evaluation, with the loop's own line. Either way: 130, quietly.
  last = err.strip().splitlines()[-1]
  assert "Traceback" not in err and (
      last == "jaxgen: interrupted"
      or last.startswith("stopped by SIGINT after the last step (4), before the final "
                         "evaluation")), err[-2000:]
  assert (workdir / "checkpoints" / "4").is_dir()


def test_nan_at_a_checkpoint_step_leaves_only_finite_checkpoints_and_eval_is_finite(
    tmp_path, capsys):
  """Parameters turn NaN in the update of step 5 (metrics stay finite)."""
  workdir = tmp_path / "nan"
  config_file = pathlib.Path(__file__).with_name("fragile_config.py")
  done = _jaxgen("train", "fragile", "--config", str(config_file), "--steps", "10",
                 "--no-progress", "--workdir", str(workdir),
                 "--set", "train.checkpoint_every=1", "--set", "train.num_samples=0",
                 "--set", "train.coverage_samples=0", "--set", "data.batch_size=8")
  assert done.returncode == 1, done.stderr[-2000:]
  assert done.stderr.strip().splitlines()[-1].endswith(
      f"the last good checkpoint is step 4 in {workdir / 'checkpoints'}")
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [2, 3, 4]
  spec = importlib.util.spec_from_file_location("fragile_config", config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  module.register()
  try:
    for step in (2, 3, 4):
      leaves = jax.tree.leaves(jaxgen.load(workdir, step=step).state.params)
      assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves), step
    code = cli.main(["eval", "--workdir", str(workdir)])
    out = capsys.readouterr().out
    values = json.loads(out[:out.rindex("}") + 1])
    assert code == 0 and values["step"] == 4 and np.isfinite(values["value"])
  finally:
    registry.unregister("fragile")


def test_an_infinite_learning_rate_saves_nothing_and_eval_says_so(tmp_path):
  workdir = tmp_path / "inf"
  done = _jaxgen(*TRAIN[:5], "5", *TRAIN[6:], "--set", "optim.learning_rate=1e39",
                 "--workdir", str(workdir))
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].endswith("no checkpoint was saved")
  assert not workdir_lib.has_checkpoint(workdir)
  done = _jaxgen("eval", "--workdir", str(workdir))
  assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
