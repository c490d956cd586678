"""Several processes (`jax.distributed`, gloo on the CPU) and `jaxgen launch`.

The slow test starts 2 processes x 2 CPU devices with `jaxgen launch` running
tests/engine/multiprocess_driver.py, and checks its runs against 1 process x 4
devices (this pytest process): the same parameters and evaluation up to float
reduction order, resumed runs equal to uninterrupted ones bit for bit, and
only process 0 writing the run's files.
"""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import launch
from jaxgen.engine import parallel
from jaxgen.errors import ConfigError
from tests.helpers import assert_trees_close, assert_trees_equal

REPO = pathlib.Path(__file__).resolve().parents[2]
DRIVER = pathlib.Path(__file__).with_name("multiprocess_driver.py")


def _driver():
  spec = importlib.util.spec_from_file_location("multiprocess_driver", DRIVER)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _child_env(devices_per_process: int) -> dict[str, str]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices_per_process}"
  env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
  env["JAXGEN_XLA_FLAGS"] = os.environ.get("JAXGEN_XLA_FLAGS", "")
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    env.pop(name, None)
  return env


def _params(workdir):
  return jax.tree.map(np.asarray, jaxgen.load(workdir).state.params)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
  """Runs the driver as 2 processes x 2 devices; returns its root folder."""
  root = tmp_path_factory.mktemp("multiprocess")
  started = time.perf_counter()
  done = subprocess.run(
      [sys.executable, "-m", "jaxgen", "launch", "--processes", "2", "--grace", "20",
       "--", sys.executable, str(DRIVER), str(root)],
      env=_child_env(2), cwd=REPO, capture_output=True, text=True, timeout=300,
      check=False)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
  print(f"2-process driver: {time.perf_counter() - started:.1f} s")
  return root


def _launch_train(root, *args):
  """`jaxgen launch --processes 2 -- train vae ...` with the driver's VAE settings
  (its compiled programs are in the driver's cache)."""
  env = {**_child_env(2), "JAX_COMPILATION_CACHE_DIR": str(root / "xla_cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
  overrides = [item for o in _driver().VAE for item in ("--set", o)]
  return subprocess.run(
      [sys.executable, "-m", "jaxgen", "launch", "--processes", "2", "--grace", "20",
       "--", "train", "vae", *overrides, *args],
      env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


# ---------------------------------------------------------------- slow: 2 x 2
@pytest.mark.slow
def test_two_processes_match_one_process_and_resume_bitwise(two_processes):
  root = two_processes
  reports = [json.loads((root / f"report{i}.json").read_text()) for i in (0, 1)]
  assert [r["process"] for r in reports] == [0, 1]
  assert all(r["processes"] == 2 and r["local_devices"] == 2 and r["devices"] == 4
             for r in reports)
  configs = _driver().configs()

  # The same parameters (and test ELBO over a padded split) as 1 process x 4
  # devices with the state replicated (the GAN ran with it sharded: fsdp).
  for name in ("vae", "gan"):
    config = configs[name]
    config.train.num_devices = 4
    config.train.strategy = "jit"
    reference = jaxgen.fit(config)
    assert_trees_close(_params(root / name),
                       jax.tree.map(np.asarray, reference.state.params),
                       rtol=1e-4, atol=1e-5)
    if name == "vae":
      saved = json.loads((root / name / "eval.json").read_text())
      assert saved["protocol"]["num_examples"] == reference.spec.num_test
      assert reference.spec.num_test % config.train.eval_batch_size  # padding masked
      for key, value in reference.metrics["eval"].items():
        np.testing.assert_allclose(saved["metrics"][key], value, rtol=1e-5)

  # Interrupted (a SIGTERM at process 0 only; both stopped at the agreed step)
  # and resumed: bit for bit the uninterrupted run.
  for report in reports:
    stopped = report["vae_signalled"]
    assert stopped["status"] == "interrupted" and stopped["signal"] == signal.SIGTERM
    assert 0 < stopped["step"] < configs["vae"].train.steps
    assert stopped["error_step"] == stopped["step"]
    assert stopped["step"] % 8 == 0
  assert reports[0]["vae_signalled"]["step"] == reports[1]["vae_signalled"]["step"]
  assert_trees_equal(_params(root / "vae_signalled"), _params(root / "vae"))
  assert_trees_equal(_params(root / "gan_resumed"), _params(root / "gan"))

  # A workdir that holds a run: process 0 refuses it and says why, the other
  # process stops with it (no process waits for the other).
  assert "already holds a run" in reports[0]["refused"]
  assert "process 0 refused workdir" in reports[1]["refused"]

  # Only process 0 wrote the logs and run.json: each step once.
  steps = [r["step"] for r in map(json.loads, (root / "vae").joinpath(
      "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]
  assert steps == list(range(1, configs["vae"].train.steps + 1))
  run = json.loads((root / "vae_signalled" / "run.json").read_text())
  assert [s["process_count"] for s in run["sessions"]] == [2, 2]
  assert len(run["sessions"][0]["devices"]) == 4
  gan_run = json.loads((root / "gan_resumed" / "run.json").read_text())
  assert [s["strategy"] for s in gan_run["sessions"]] == ["fsdp", "fsdp"]


@pytest.mark.slow
def test_launch_train_through_the_command_line(two_processes):
  root = two_processes
  done = _launch_train(root, "--steps", "3", "--workdir", str(root / "cli"))
  assert done.returncode == 0, done.stderr[-4000:]
  assert done.stdout.count("workdir: ") == 1          # process 0 reports
  steps = [r["step"] for r in map(json.loads, (root / "cli" / "metrics.jsonl")
                                  .read_text().splitlines()) if r["split"] == "train"]
  assert steps == [1, 2, 3]
  assert (root / "cli" / "eval.json").exists() and (root / "cli" / "checkpoints" / "3").is_dir()


# ------------------------------------------------------------------- launcher
def test_launcher_environment_and_command():
  envs = launch.child_environments(3, "10.0.0.1:1234", base={"A": "1"})
  assert [e["JAX_PROCESS_ID"] for e in envs] == ["0", "1", "2"]
  assert all(e["JAX_NUM_PROCESSES"] == "3" and e["JAX_COORDINATOR_ADDRESS"] == "10.0.0.1:1234"
             and e["A"] == "1" for e in envs)
  host, port = launch.child_environments(1)[0]["JAX_COORDINATOR_ADDRESS"].split(":")
  assert host == "127.0.0.1" and 0 < int(port) < 65536
  assert launch.child_command(["train", "vae"]) == [sys.executable, "-m", "jaxgen",
                                                    "train", "vae"]
  assert launch.child_command(["python", "x.py"]) == ["python", "x.py"]
  with pytest.raises(ConfigError, match="needs a command"):
    launch.child_command([])
  with pytest.raises(ConfigError, match="--processes"):
    launch.child_environments(0)


def test_distributed_arguments_from_the_environment():
  env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
  assert parallel.distributed_arguments(env) == {
      "coordinator_address": "h:1", "num_processes": 2, "process_id": 1}
  assert parallel.distributed_arguments({}) is None
  assert parallel.distributed_arguments({"SLURM_NTASKS": "4"}) is None  # no srun step
  assert parallel.distributed_arguments({"SLURM_STEP_NUM_TASKS": "4"}) == {}
  with pytest.raises(ConfigError, match="JAX_PROCESS_ID is not"):
    parallel.distributed_arguments({k: v for k, v in env.items() if k != "JAX_PROCESS_ID"})
  with pytest.raises(ConfigError, match=r"JAX_PROCESS_ID=2 must be in \[0"):
    parallel.distributed_arguments({**env, "JAX_PROCESS_ID": "2"})
  with pytest.raises(ConfigError, match="must be an integer"):
    parallel.distributed_arguments({**env, "JAX_NUM_PROCESSES": "two"})


_CHILD = textwrap.dedent("""
    import os, pathlib, signal, sys, time
    folder = pathlib.Path(sys.argv[1]); index = os.environ["JAX_PROCESS_ID"]
    def stop(signum, frame):
      (folder / f"got{index}").write_text(str(signum)); sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    if index == sys.argv[2]:
      sys.exit(3)
    (folder / f"ready{index}").write_text("")
    time.sleep(60)
    """)


def test_launcher_returns_the_first_failure_and_stops_the_others(tmp_path):
  started = time.perf_counter()
  status = launch.launch([sys.executable, "-c", _CHILD, str(tmp_path), "1"], 2,
                         grace=0.5)
  assert status == 3
  assert time.perf_counter() - started < 30   # process 0 was killed, not waited for


def test_launcher_forwards_sigterm_to_every_process(tmp_path):
  # The launcher module without the package's __init__ (which imports JAX and
  # every family: seconds of start-up that this test does not need).
  start = (f"import sys, types; package = types.ModuleType('jaxgen'); "
           f"package.__path__ = [{str(REPO / 'jaxgen')!r}]; sys.modules['jaxgen'] = package; "
           "from jaxgen import launch; sys.exit(launch.launch(sys.argv[1:], 2))")
  launcher = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-c", start, sys.executable, "-c", _CHILD, str(tmp_path), "none"],
      env=_child_env(1), cwd=REPO)
  deadline = time.monotonic() + 60
  while not all((tmp_path / f"ready{i}").exists() for i in (0, 1)):
    assert time.monotonic() < deadline and launcher.poll() is None
    time.sleep(0.05)
  launcher.send_signal(signal.SIGTERM)
  assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
  assert [(tmp_path / f"got{i}").read_text() for i in (0, 1)] == [str(int(signal.SIGTERM))] * 2
