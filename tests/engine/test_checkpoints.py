"""Checkpoints and runs that stop: bit-exact resume, signals, NaN, atomic saves."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import jaxgen
from jaxgen import registry
from jaxgen.engine.checkpoint import Checkpointer
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import NonFiniteError, WorkdirError

from tests.helpers import assert_trees_equal, params_of, tiny_vae

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("seeds", [(), (0, 1)])
def test_interrupted_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path, seeds):
  uninterrupted = jaxgen.fit(tiny_vae(steps=10, seeds=seeds))
  first = jaxgen.fit(tiny_vae(steps=6, seeds=seeds, checkpoint_every=4),
                     workdir=tmp_path / "run")
  assert Checkpointer(tmp_path / "run" / "checkpoints").all_steps() == [4, 6]
  resumed = jaxgen.fit(tiny_vae(steps=10, seeds=seeds, checkpoint_every=4),
                       workdir=tmp_path / "run", resume=True)
  assert int(np.max(resumed.state.step)) == 10
  assert_trees_equal(params_of(uninterrupted), params_of(resumed))
  assert_trees_equal(jax.tree.map(np.asarray, uninterrupted.state.opt_state),
                     jax.tree.map(np.asarray, resumed.state.opt_state))
  del first


def test_resume_on_another_device_count_continues(tmp_path):
  jaxgen.fit(tiny_vae(steps=4, num_devices=4), workdir=tmp_path / "run")
  resumed = jaxgen.fit(tiny_vae(steps=8, num_devices=1), workdir=tmp_path / "run",
                       resume=True)
  reference = jaxgen.fit(tiny_vae(steps=8, num_devices=1))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
               params_of(resumed), params_of(reference))


def test_workdir_rules(tmp_path):
  run = tmp_path / "run"
  jaxgen.fit(tiny_vae(steps=2), workdir=run)
  with pytest.raises(WorkdirError, match="already holds a run; pass resume=True to continue it or overwrite=True"):
    jaxgen.fit(tiny_vae(steps=2), workdir=run)
  changed = tiny_vae(steps=2)
  changed.model.latent_dim = 3
  with pytest.raises(WorkdirError, match="model.latent_dim is 2 there, 3 here"):
    jaxgen.fit(changed, workdir=run, resume=True)
  with pytest.raises(WorkdirError, match="exclude each other"):
    jaxgen.fit(changed, workdir=run, resume=True, overwrite=True)
  (run / "notes.txt").write_text("mine")
  jaxgen.fit(changed, workdir=run, overwrite=True)
  assert (run / "notes.txt").read_text() == "mine"
  assert json.loads((run / "config.json").read_text())["model"]["latent_dim"] == 3
  other = tmp_path / "other"
  other.mkdir()
  (other / "data.csv").write_text("1,2")
  with pytest.raises(WorkdirError, match="not empty and holds no jaxgen run"):
    jaxgen.fit(tiny_vae(steps=2), workdir=other)


def test_a_failed_save_keeps_the_last_good_checkpoint(tmp_path):
  checkpointer = Checkpointer(tmp_path / "ck", keep=1)
  state = {"w": jnp.arange(4.0), "step": jnp.int32(2)}
  checkpointer.save(2, state, [{"next_index": 2}], {"a": 1})

  class NotJson:
    pass

  with pytest.raises(Exception):
    checkpointer.save(4, {"w": jnp.ones(4), "step": jnp.int32(4)},
                      [{"next_index": NotJson()}], {"a": 1})
  reopened = Checkpointer(tmp_path / "ck", keep=1)
  assert reopened.latest_step() == 2
  restored, data_states, config = reopened.restore(
      2, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state))
  np.testing.assert_array_equal(restored["w"], np.arange(4.0))
  assert data_states == [{"next_index": 2}] and config == {"a": 1}


# --------------------------------------------------------------- NaN guard
@pytest.fixture
def diverging_method():
  """A method whose loss turns NaN at step `model.nan_at` where w[0] > 0."""

  def default_config(data):
    del data
    return ml_collections.ConfigDict({"model": {"nan_at": 5, "always": True}})

  def make(config, spec):
    del spec
    tx = optax.sgd(1.0)
    nan_at, always = config.model.nan_at, config.model.always

    def init(key, batch):
      del batch
      params = {"w": jax.random.normal(key, (2,))}
      return TrainState.create(key=key, params=params, opt_state={"w": tx.init(params)})

    def train_step(state, batch):
      step = state.step + 1
      broken = (step >= nan_at) & (always | (state.params["w"][0] > 0))
      loss = jnp.where(broken, jnp.nan, jnp.mean(batch["x"]) * 0 + 1.0)
      return state.replace(step=step), {"loss": loss}

    def sample(state, key, num):
      return jax.random.normal(key, (num, 2)) + state.params["w"][0] * 0

    return Method("diverging", init, train_step, sample)

  registry.register("diverging", family="test", description="test only",
                    default_config=default_config, make=make,
                    default_data="toy2d:ring8")
  yield
  registry.unregister("diverging")


def diverging_config(**train):
  config = jaxgen.get_config("diverging")
  config.data.batch_size = 8
  config.train.update(dict(progress=False, coverage_samples=0, steps=10,
                           checkpoint_every=2, log_every=1), **train)
  return config


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, diverging_method):
  with pytest.raises(NonFiniteError) as info:
    jaxgen.fit(diverging_config(), workdir=tmp_path)
  message = str(info.value)
  assert "non-finite loss at step 5" in message
  assert "last good checkpoint is step 4" in message
  checkpointer = Checkpointer(tmp_path / "checkpoints")
  assert checkpointer.latest_step() == 4
  run = jaxgen.load(tmp_path)
  assert int(run.state.step) == 4 and np.all(np.isfinite(run.state.params["w"]))
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert records[-1]["event"] == "nonfinite" and records[-1]["step"] == 5


def test_nan_in_one_replica_can_be_logged_and_survived(diverging_method):
  seeds = tuple(range(6))
  config = diverging_config(seeds=seeds, on_nonfinite="continue", checkpoint_every=0)
  config.model.always = False
  result = jaxgen.fit(config)
  method = registry.get("diverging").make(config, result.spec)
  expected = {s for s in seeds
              if float(method.init(jax.random.PRNGKey(s), None).params["w"][0]) > 0}
  assert 0 < len(expected) < len(seeds)  # the test needs both kinds of replica
  events = [r for r in result.history if r.get("event") == "nonfinite"]
  assert {r["seed"] for r in events} == expected
  assert all(r["step"] == 5 for r in events)
  assert result.status == "completed"
  final = result.metrics["train"]["loss"]
  assert [s for s, v in zip(seeds, final) if not np.isfinite(v)] == sorted(expected)


# ------------------------------------------------------------------ signals
def _cli_train(workdir: pathlib.Path, steps: int) -> subprocess.Popen:
  args = [sys.executable, "-m", "jaxgen", "train", "vae", "--workdir", str(workdir),
          "--steps", str(steps), "--no-progress",
          "--set", "model.hidden=(32,)", "--set", "model.latent_dim=2",
          "--set", "data.batch_size=32", "--set", "optim.learning_rate=0.003",
          "--set", "train.final_eval=False", "--set", "train.log_every=5",
          "--set", "train.checkpoint_every=0", "--set", "train.sample_every=0"]
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for_training(workdir: pathlib.Path, process: subprocess.Popen) -> None:
  deadline = time.time() + 180
  metrics = workdir / "metrics.jsonl"
  while time.time() < deadline:
    if process.poll() is not None:
      raise AssertionError(f"training exited early: {process.communicate()}")
    if metrics.exists() and metrics.read_text().count("\n") >= 2:
      return
    time.sleep(0.2)
  process.kill()
  raise AssertionError("training did not start logging in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_and_resume_is_bitwise_exact(tmp_path, signum):
  workdir = tmp_path / "run"
  process = _cli_train(workdir, steps=1_000_000)
  _wait_for_training(workdir, process)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signum, stderr
  assert f"stopped by {signal.Signals(signum).name} at step" in stderr
  assert "Traceback" not in stderr
  stopped_at = Checkpointer(workdir / "checkpoints").latest_step()
  assert stopped_at is not None and stopped_at >= 10
  if signum != signal.SIGTERM:
    return
  target = stopped_at + 7
  overrides = ["model.hidden=(32,)", "model.latent_dim=2", "data.batch_size=32",
               "optim.learning_rate=0.003", "train.final_eval=False",
               "train.log_every=5", "train.checkpoint_every=0", "train.sample_every=0",
               "train.progress=False"]
  resumed = jaxgen.train("vae", overrides=overrides, steps=target, workdir=workdir,
                         resume=True)
  straight = jaxgen.train("vae", overrides=overrides, steps=target)
  assert int(resumed.state.step) == target
  assert_trees_equal(params_of(straight), params_of(resumed))


# A script that trains through the Python API until a signal stops it. It
# reports what `fit` raised, then lets it propagate: nothing after `fit` runs,
# and `except Exception` does not swallow it.
_API_SCRIPT = """
import json, sys
import jaxgen
from tests.helpers import tiny_vae
config = tiny_vae(steps=1_000_000, log_every=5, checkpoint_every=0, sample_every=0)
try:
  try:
    jaxgen.fit(config, workdir=sys.argv[1])
  except Exception:
    print("swallowed by except Exception")
except KeyboardInterrupt as error:
  print(json.dumps({"type": type(error).__name__, "step": error.step,
                    "signal": error.signal, "workdir": str(error.workdir),
                    "status": error.result.status,
                    "state_step": int(error.result.state.step), "message": str(error)}),
        flush=True)
  raise
print("went on as if training had finished")
"""


@pytest.mark.slow   # a subprocess that imports jax and trains until the signal
def test_a_signal_during_the_api_fit_raises_after_saving(tmp_path):
  workdir = tmp_path / "run"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  process = subprocess.Popen([sys.executable, "-c", _API_SCRIPT, str(workdir)], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  _wait_for_training(workdir, process)
  process.send_signal(signal.SIGTERM)
  stdout, stderr = process.communicate(timeout=120)
  lines = stdout.strip().splitlines()
  assert len(lines) == 1, (stdout, stderr)   # neither "swallowed" nor "went on"
  raised = json.loads(lines[0])
  saved = Checkpointer(workdir / "checkpoints").latest_step()
  assert raised["type"] == "TrainingInterrupted" and raised["signal"] == signal.SIGTERM
  assert raised["status"] == "interrupted" and raised["workdir"] == str(workdir)
  assert saved is not None and saved >= 10
  assert raised["step"] == raised["state_step"] == saved
  assert raised["message"] == (f"training stopped by SIGTERM at step {saved}; checkpoint "
                               f"saved in {workdir}; continue with resume=True")
  # Uncaught, it ends the script with its traceback and a failing status.
  assert process.returncode != 0, stderr
  assert stderr.strip().splitlines()[-1] == (
      f"jaxgen.errors.TrainingInterrupted: {raised['message']}")


def test_saving_small_replicated_arrays_compiles_nothing(tmp_path, caplog):
  """Orbax's replica-parallel save would compile a slicing program per array
  shape (seconds per fit); small arrays are written by one replica instead,
  and read back whole."""
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  state = {f"w{i}": jax.device_put(jnp.full((8, 3 + i), float(i)), replicated)
           for i in range(5)}
  checkpoints = Checkpointer(tmp_path / "checkpoints")
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level("WARNING", logger="jax"):
      checkpoints.save(1, state, [{}], {"model": {}})
  finally:
    jax.config.update("jax_log_compiles", False)
  assert jax.device_count() > 1
  assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
  abstract = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), state)
  restored, _, _ = checkpoints.restore(1, abstract)
  assert_trees_equal(jax.tree.map(np.asarray, state), jax.tree.map(np.asarray, restored))


def test_a_signal_during_the_last_checkpoint_still_stops_the_run(tmp_path, monkeypatch):
  """SIGTERM/SIGINT that arrives while the last step's checkpoint is written
  (after the loop's last check) stops the run before the final evaluation and
  raises; before, it was swallowed and the run went on as if completed."""
  import threading  # pylint: disable=import-outside-toplevel
  from jaxgen.engine import loop  # pylint: disable=import-outside-toplevel
  if threading.current_thread() is not threading.main_thread():
    pytest.skip("signal handlers are installed from the main thread only")
  save = loop.Trainer._save  # pylint: disable=protected-access

  def save_then_signal(self, state, iterators, step):
    save(self, state, iterators, step)
    if step == self.tc.steps:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(loop.Trainer, "_save", save_then_signal)
  workdir = tmp_path / "run"
  config = tiny_vae(steps=3, final_eval=True, checkpoint_every=0)
  with pytest.raises(jaxgen.errors.TrainingInterrupted) as stopped:
    jaxgen.fit(config, workdir=workdir)
  assert stopped.value.result.status == "interrupted"
  assert stopped.value.result.metrics["eval"] is None          # no final evaluation
  assert not (workdir / "eval.json").exists()
  assert Checkpointer(workdir / "checkpoints").latest_step() == 3
