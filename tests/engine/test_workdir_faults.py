"""Workdir faults: the training lock, failed starts, damaged files, torn logs, bad checkpoints."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.engine import checkpoint as checkpoint_lib
from jaxgen.engine import workdir as workdir_lib
from jaxgen.errors import WorkdirError

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = {"method": "vae", "data": {"name": "digits"}, "train": {"steps": 10}}


def _holder(path: pathlib.Path) -> subprocess.Popen:
  """A second process that takes the lock of `path` and waits."""
  code = ("import sys, time; from jaxgen.engine import workdir; "
          f"workdir.lock({str(path)!r}); print('locked', flush=True); time.sleep(60)")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
  assert proc.stdout.readline().strip() == "locked"
  return proc


def test_a_second_trainer_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path):
  path = tmp_path / "run"
  proc = _holder(path)
  try:
    with pytest.raises(WorkdirError) as error:
      workdir_lib.prepare(path, CONFIG, resume=False, overwrite=False)
    assert f"is in use by a running trainer (pid {proc.pid} on" in str(error.value)
    assert not (path / workdir_lib.CONFIG_FILE).exists()   # nothing written
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  # kill -9 released the lock: the next trainer starts.
  workdir_lib.prepare(path, CONFIG, resume=False, overwrite=False)
  assert json.loads((path / workdir_lib.CONFIG_FILE).read_text())["method"] == "vae"
  workdir_lib.unlock(path)
  # ...and the lock is re-entrant within one process (fit, then fit --resume).
  workdir_lib.lock(path)
  workdir_lib.lock(path)
  workdir_lib.unlock(path)


def test_a_failed_start_does_not_block_the_retry(tmp_path):
  path = tmp_path / "run"
  path.mkdir()
  (path / workdir_lib.CONFIG_FILE).write_text(json.dumps({**CONFIG, "x": 1}))
  (path / workdir_lib.METRICS_FILE).write_text("")
  (path / workdir_lib.CHECKPOINT_DIR).mkdir()
  workdir_lib.prepare(path, CONFIG, resume=False, overwrite=False)
  assert json.loads((path / workdir_lib.CONFIG_FILE).read_text()) == CONFIG
  assert not (path / workdir_lib.METRICS_FILE).exists()
  workdir_lib.unlock(path)


def _fake_run(path: pathlib.Path, method: str = "gan") -> None:
  (path / workdir_lib.CHECKPOINT_DIR / "100").mkdir(parents=True)
  (path / workdir_lib.CONFIG_FILE).write_text(json.dumps({**CONFIG, "method": method}))
  (path / "samples_seed0.png").write_bytes(b"png")
  (path / "notes.txt").write_text("mine")


def test_resume_with_another_method_names_the_method_first(tmp_path):
  _fake_run(tmp_path)
  with pytest.raises(WorkdirError, match="holds a 'gan' run; you asked for 'vae'"):
    workdir_lib.prepare(tmp_path, CONFIG, resume=True, overwrite=False)
  # The refusal released the lock.
  workdir_lib.lock(tmp_path)
  workdir_lib.unlock(tmp_path)


def test_overwrite_removes_everything_the_old_run_wrote_and_nothing_else(tmp_path):
  _fake_run(tmp_path)
  workdir_lib.prepare(tmp_path, CONFIG, resume=False, overwrite=True)
  names = sorted(p.name for p in tmp_path.iterdir())
  assert names == [".lock", "config.json", "notes.txt"]
  workdir_lib.unlock(tmp_path)


def test_unusable_paths_are_one_line_errors(tmp_path):
  (tmp_path / "afile").write_text("x")
  with pytest.raises(WorkdirError, match="is a file, not a directory"):
    workdir_lib.prepare(tmp_path / "afile", CONFIG, resume=False, overwrite=False)
  with pytest.raises(WorkdirError, match="a part of the path is a file"):
    workdir_lib.prepare(tmp_path / "afile" / "run", CONFIG, resume=False, overwrite=False)
  if os.geteuid() != 0:   # root may write anywhere
    locked = tmp_path / "readonly"
    locked.mkdir(mode=0o500)
    with pytest.raises(WorkdirError, match="not writable|permission denied"):
      workdir_lib.prepare(locked / "run", CONFIG, resume=False, overwrite=False)


def test_truncate_log_drops_redone_steps_and_a_torn_line(tmp_path):
  records = [{"step": s, "split": "train", "loss": float(s)} for s in (50, 100, 150, 200)]
  text = "".join(json.dumps(r) + "\n" for r in records)
  text += '{"step": 250, "split": "tr'          # torn by kill -9
  (tmp_path / workdir_lib.METRICS_FILE).write_text(text)
  assert workdir_lib.truncate_log(tmp_path, 100) == 3
  kept = [json.loads(l) for l in (tmp_path / workdir_lib.METRICS_FILE).read_text().splitlines()]
  assert [r["step"] for r in kept] == [50, 100]
  assert workdir_lib.truncate_log(tmp_path, 100) == 0


def test_leftover_temporary_checkpoints_are_removed(tmp_path):
  tmp = tmp_path / workdir_lib.CHECKPOINT_DIR / "300.orbax-checkpoint-tmp-1234"
  tmp.mkdir(parents=True)
  assert workdir_lib.remove_temporary(tmp_path) == [tmp.name]
  assert not tmp.exists()


# ------------------------------------------------------------ checkpoints

def _state(value: float):
  return {"w": jnp.full((3, 4), value), "step": jnp.asarray(int(value), jnp.int32)}


def _saved(tmp_path: pathlib.Path) -> checkpoint_lib.Checkpointer:
  checkpointer = checkpoint_lib.Checkpointer(tmp_path / "checkpoints", keep=3)
  for step in (1, 2, 3):
    checkpointer.save(step, _state(step), [{"position": step}],
                      {**CONFIG, "train": {"steps": step}})
  return checkpointer


def _abstract():
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return checkpoint_lib.abstract_like(jax.eval_shape(lambda: _state(0.0)), sharding)


def _truncate_arrays(folder: pathlib.Path) -> None:
  files = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 64
           and "metadata" not in p.name.lower()]
  assert files, f"no array files under {folder}"
  for file in files:
    file.write_bytes(file.read_bytes()[:16])


def test_a_missing_state_metadata_file_is_not_fatal(tmp_path):
  """Restoring with the abstract state needs no `_METADATA`: step 3 still loads exactly."""
  checkpointer = _saved(tmp_path)
  (tmp_path / "checkpoints" / "3" / "state" / "_METADATA").unlink()
  step, state, _, _ = checkpointer.restore_newest(_abstract())
  assert step == 3
  np.testing.assert_array_equal(state["w"], np.full((3, 4), 3.0))
  checkpointer.close()


@pytest.mark.parametrize("damage", ["truncated_arrays", "no_state", "empty_folder"])
def test_a_damaged_newest_checkpoint_falls_back_to_an_older_one(tmp_path, damage):
  checkpointer = _saved(tmp_path)
  newest = tmp_path / "checkpoints" / "3"
  if damage == "truncated_arrays":
    _truncate_arrays(newest / "state")
  elif damage == "no_state":
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.rmtree(newest / "state")
  else:
    for child in list(newest.iterdir()):
      import shutil  # pylint: disable=import-outside-toplevel
      shutil.rmtree(child) if child.is_dir() else child.unlink()
  with pytest.warns(UserWarning, match="checkpoint 3 in .* cannot be restored"):
    step, state, data, config = checkpointer.restore_newest(_abstract())
  assert step == 2
  np.testing.assert_array_equal(state["w"], np.full((3, 4), 2.0))
  assert data == [{"position": 2}] and config["train"]["steps"] == 2
  # Asking for the damaged step by number is a one-line error.
  with pytest.raises(WorkdirError, match="checkpoint 3 in .* cannot be restored"):
    checkpointer.restore_newest(_abstract(), step=3)
  with pytest.raises(WorkdirError, match="no checkpoint 7 in .*; saved steps: 1, 2, 3"):
    checkpointer.restore_newest(_abstract(), step=7)
  checkpointer.close()


def test_nothing_restorable_is_one_line(tmp_path):
  checkpointer = _saved(tmp_path)
  for step in (1, 2, 3):
    _truncate_arrays(tmp_path / "checkpoints" / str(step) / "state")
  with warnings.catch_warnings():
    warnings.simplefilter("error")   # the error is the one line: no warnings first
    with pytest.raises(WorkdirError,
                       match=r"no restorable checkpoint in .* \(tried steps 3, 2, 1; step 3: "):
      checkpointer.restore_newest(_abstract())
  checkpointer.close()


def test_a_damaged_config_json_is_read_from_the_checkpoint(tmp_path):
  _saved(tmp_path).close()
  (tmp_path / workdir_lib.CONFIG_FILE).write_text("{garbage")
  (tmp_path / workdir_lib.RUN_FILE).write_text("\x00\x01")
  with pytest.warns(UserWarning, match="using the config saved in checkpoint 3"):
    config, run = workdir_lib.read_run(tmp_path)
  assert config["train"]["steps"] == 3 and run == {}


def test_version_changes_against_the_last_session(tmp_path):
  workdir_lib.record_session(tmp_path, {"versions": {"jax": "0.10.2", "numpy": "2.4.6"}})
  assert workdir_lib.version_changes(tmp_path, {"jax": "0.10.2", "numpy": "2.4.6"}) == []
  assert workdir_lib.version_changes(tmp_path, {"jax": "0.11.0", "numpy": "2.4.6",
                                                "new": "1"}) == ["jax 0.10.2 -> 0.11.0"]
