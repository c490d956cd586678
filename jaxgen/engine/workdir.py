"""The run directory: what a run writes, and the rules that protect it.

Layout:
  config.json          the effective config (what `--resume` compares against)
  run.json             versions, devices, data spec and one entry per session
  metrics.jsonl        train and evaluation records (see engine.logs)
  checkpoints/<step>/  Orbax checkpoints: state, data position, config
  samples/, reconstructions/   PNG grids written during training
  samples.png, reconstructions.png, eval.json   the final ones
  eval/<what was asked>.json   later `jaxgen eval` results (never eval.json)
  tensorboard/         event files, when a writer package is installed
  .lock                held by the one process training in it (see `lock`)
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import pathlib
import platform
import shutil
import sys
import warnings
from typing import Any, TextIO

from jaxgen import config as config_lib
from jaxgen.errors import WorkdirError

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"          # the best checkpoint by train.keep_best, and best.json
BEST_FILE = "best.json"
EVAL_FILE = "eval.json"
LOCK_FILE = ".lock"
# Only these (names and glob patterns) are removed by --overwrite; anything
# else in the folder stays.
OWNED = (CONFIG_FILE, RUN_FILE, METRICS_FILE, CHECKPOINT_DIR, BEST_DIR, EVAL_FILE, "eval",
         "samples", "reconstructions", "samples*.png", "reconstructions*.png",
         "tensorboard")
# Files that do not make a folder "hold something": the lock of a trainer.
_IGNORED = (LOCK_FILE,)

# Locks this process holds: resolved path -> open lock file. A process may
# train in the same workdir several times in a row (fit, then fit --resume).
_HELD: dict[pathlib.Path, TextIO] = {}


def lock(workdir: str | pathlib.Path) -> None:
  """Takes the exclusive training lock of `workdir` (kept until `unlock`).

  An advisory `flock` on `workdir/.lock`: the kernel releases it when the
  process ends, however it ends (kill -9 included), so a stale lock cannot
  outlive its trainer. The file records the holder's pid, host and start time
  for the refusal message. Re-entrant within one process.
  """
  path = pathlib.Path(workdir).resolve()
  if path in _HELD:
    return
  _make_dir(path)
  file = open(path / LOCK_FILE, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as error:
    if error.errno not in (errno.EAGAIN, errno.EACCES):
      file.close()
      raise WorkdirError(f"cannot lock workdir {str(workdir)!r}: {error.strerror}") from None
    file.seek(0)
    holder = file.read().strip() or "another process"
    file.close()
    raise WorkdirError(
        f"workdir {str(workdir)!r} is in use by a running trainer ({holder}); "
        "wait for it to finish or stop it") from None
  file.seek(0)
  file.truncate()
  file.write(f"pid {os.getpid()} on {platform.node()} since "
             f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
  file.flush()
  _HELD[path] = file


def unlock(workdir: str | pathlib.Path) -> None:
  """Releases the lock taken by `lock` (a no-op if this process holds none)."""
  file = _HELD.pop(pathlib.Path(workdir).resolve(), None)
  if file is not None:
    fcntl.flock(file.fileno(), fcntl.LOCK_UN)
    file.close()


def _make_dir(path: pathlib.Path) -> None:
  """mkdir -p with one-line errors for a parent that is a file or unwritable."""
  try:
    path.mkdir(parents=True, exist_ok=True)
  except FileExistsError:
    raise WorkdirError(f"workdir {str(path)!r}: a part of the path is a file, "
                       "not a directory") from None
  except NotADirectoryError:
    raise WorkdirError(f"workdir {str(path)!r}: a part of the path is a file, "
                       "not a directory") from None
  except PermissionError:
    raise WorkdirError(f"workdir {str(path)!r}: permission denied; choose a "
                       "writable directory") from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise WorkdirError(f"workdir {str(path)!r} is not writable; choose a writable "
                       "directory")


def _entries(path: pathlib.Path) -> list[pathlib.Path]:
  return [p for p in path.iterdir() if p.name not in _IGNORED]


def _remove_owned(path: pathlib.Path) -> None:
  for pattern in OWNED:
    for target in path.glob(pattern):
      if target.is_dir():
        shutil.rmtree(target)
      elif target.exists():
        target.unlink()


def remove_temporary(path: pathlib.Path) -> list[str]:
  """Deletes Orbax's `*.orbax-checkpoint-tmp*` folders left by a killed save."""
  removed = []
  checkpoints = path / CHECKPOINT_DIR
  if checkpoints.is_dir():
    for target in checkpoints.glob("*.orbax-checkpoint-tmp*"):
      shutil.rmtree(target, ignore_errors=True)
      removed.append(target.name)
  return removed


def has_checkpoint(path: pathlib.Path) -> bool:
  """Whether `path` holds at least one committed checkpoint folder."""
  checkpoints = path / CHECKPOINT_DIR
  return checkpoints.is_dir() and any(
      p.is_dir() and p.name.isdigit() for p in checkpoints.iterdir())


def prepare(workdir: str | pathlib.Path, config: dict[str, Any], *,
            resume: bool, overwrite: bool) -> pathlib.Path:
  """Checks `workdir` against the requested run, locks it and writes config.json.

  Errors name the arguments of `jaxgen.fit` (`resume=True`); the CLI shows
  them as its flags.

  A fresh or empty folder starts a run; so does a folder left by a start that
  failed before its first checkpoint (it holds config.json and nothing that
  can be resumed). A folder holding a run needs `resume` (and the same config,
  outside config.RESUMABLE_KEYS) or `overwrite`. A non-empty folder that holds
  no run is never touched. All checks run before anything is written.
  """
  path = pathlib.Path(workdir)
  if resume and overwrite:
    raise WorkdirError("resume=True and overwrite=True exclude each other; choose one")
  if path.exists() and not path.is_dir():
    raise WorkdirError(f"workdir {str(path)!r} is a file, not a directory")
  saved_path = path / CONFIG_FILE
  if path.is_dir() and _entries(path) and not saved_path.exists():
    raise WorkdirError(
        f"workdir {str(path)!r} is not empty and holds no jaxgen run; "
        "choose a new or empty directory")
  lock(path)
  if saved_path.exists():
    if overwrite or not has_checkpoint(path):
      _remove_owned(path)   # a failed start is not a run: start afresh
    elif resume:
      saved = _read_json(saved_path, "config")
      _check_resumable(path, saved, config)
      _check_steps(path, config)
    else:
      unlock(path)
      raise WorkdirError(
          f"workdir {str(path)!r} already holds a run; pass resume=True to continue "
          "it or overwrite=True to replace it")
  remove_temporary(path)
  (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
  return path


def _check_resumable(path: pathlib.Path, saved: dict[str, Any] | None,
                     config: dict[str, Any]) -> None:
  """Refuses to resume a run with another method or config (unlocking first)."""
  if saved is None:
    return   # unreadable config.json: the checkpoint's own config is checked later
  message = None
  if saved.get("method") != config.get("method"):
    message = (f"workdir {str(path)!r} holds a {saved.get('method')!r} run; you asked "
               f"for {config.get('method')!r}")
  else:
    diffs = config_lib.differences(saved, config)
    if diffs:
      more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
      message = (f"workdir {str(path)!r} holds a run with a different config: "
                 f"{diffs[0]}{more}; resume with the same settings or pass overwrite=True")
  if message:
    unlock(path)
    raise WorkdirError(message)


def newest_step(path: pathlib.Path) -> int | None:
  """The newest committed checkpoint folder's step, or None."""
  checkpoints = path / CHECKPOINT_DIR
  steps = [int(p.name) for p in checkpoints.iterdir()
           if p.is_dir() and p.name.isdigit()] if checkpoints.is_dir() else []
  return max(steps) if steps else None


def _check_steps(path: pathlib.Path, config: dict[str, Any]) -> None:
  """Refuses to resume to fewer steps than the run has done (unlocking first).

  Training would stop at once and config.json would say a length the
  checkpoints contradict; nothing is written.
  """
  done = newest_step(path)
  steps = config.get("train", {}).get("steps")
  if done is not None and isinstance(steps, int) and steps < done:
    unlock(path)
    raise WorkdirError(f"train.steps={steps} is below step {done}, where the run in "
                       f"{str(path)!r} stands; resume with {done} steps or more")


def read_best(path: str | pathlib.Path) -> dict[str, Any] | None:
  """best/best.json of a run (train.keep_best), or None when it has none."""
  file = pathlib.Path(path) / BEST_DIR / BEST_FILE
  return _read_json(file, "best-checkpoint record") if file.exists() else None


def _read_json(file: pathlib.Path, what: str) -> dict[str, Any] | None:
  """A workdir JSON file, or None (with a warning) when it is damaged."""
  try:
    value = json.loads(file.read_text(encoding="utf-8"))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
    warnings.warn(f"{file} is unreadable ({type(error).__name__}); "
                  f"ignoring the {what} it held", stacklevel=3)
    return None
  return value if isinstance(value, dict) else None


def truncate_log(path: pathlib.Path, step: int) -> int:
  """Cuts metrics.jsonl before its first record after `step` (or a torn line).

  A run resumed from checkpoint `step` redoes the steps after it, so their
  records, written before a kill, would otherwise appear twice; a kill during a
  write leaves a torn last line. Records are in step order, so what is dropped
  is a suffix: the file is truncated in place (a writer that has it open in
  append mode goes on at the new end). Returns the number of lines dropped.
  """
  file = path / METRICS_FILE
  if not file.exists():
    return 0
  data = file.read_bytes()
  offset, cut = 0, None
  lines = data.split(b"\n")
  for index, line in enumerate(lines):
    if not line.strip():
      offset += len(line) + 1
      continue
    try:
      record = json.loads(line)
      torn = index == len(lines) - 1   # no newline after it: not fully written
    except (json.JSONDecodeError, UnicodeDecodeError):
      record, torn = None, True
    if torn or (isinstance(record, dict) and isinstance(record.get("step"), int)
                and record["step"] > step):
      cut = offset
      break
    offset += len(line) + 1
  if cut is None:
    return 0
  dropped = sum(1 for line in data[cut:].split(b"\n") if line.strip())
  os.truncate(file, cut)
  return dropped


def record_session(path: pathlib.Path, info: dict[str, Any]) -> None:
  """Appends this session's environment to run.json."""
  run_file = path / RUN_FILE
  run = (_read_json(run_file, "session records") or {}) if run_file.exists() else {}
  run.setdefault("sessions", []).append({
      "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "command": sys.argv,
      "host": platform.node(),
      "python": platform.python_version(),
      **info,
  })
  for key in ("data_spec", "method", "data_source"):
    if key in info:
      run[key] = info[key]
  run_file.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")


def version_changes(path: pathlib.Path, versions: dict[str, str]) -> list[str]:
  """'name a -> b' for each library whose version differs from the last session's.

  Bit-exact resume holds for the same library versions on the same machine;
  a resumed run with other versions continues, but the numbers may differ in
  the last bits from an uninterrupted run.
  """
  run_file = path / RUN_FILE
  run = (_read_json(run_file, "session records") or {}) if run_file.exists() else {}
  sessions = run.get("sessions") or []
  before = sessions[-1].get("versions", {}) if sessions else {}
  return [f"{name} {before[name]} -> {version}" for name, version in versions.items()
          if name in before and before[name] != version]


def read_run(path: str | pathlib.Path) -> tuple[dict[str, Any], dict[str, Any]]:
  """(config, run info) of an existing run; a WorkdirError if there is none."""
  path = pathlib.Path(path)
  if not (path / CONFIG_FILE).exists():
    raise WorkdirError(f"workdir {str(path)!r} holds no jaxgen run "
                       f"(no {CONFIG_FILE}); train one with `jaxgen train`")
  config = _read_json(path / CONFIG_FILE, "config")
  if config is None:
    config = _config_from_checkpoints(path)
  run_file = path / RUN_FILE
  run = (_read_json(run_file, "session records") or {}) if run_file.exists() else {}
  return config, run


def _config_from_checkpoints(path: pathlib.Path) -> dict[str, Any]:
  """The config saved inside the newest checkpoint that holds a readable one."""
  checkpoints = path / CHECKPOINT_DIR
  steps = sorted((int(p.name) for p in checkpoints.iterdir()
                  if p.is_dir() and p.name.isdigit()), reverse=True) if (
                      checkpoints.is_dir()) else []
  for step in steps:
    for file in sorted((checkpoints / str(step) / "config").glob("*")):
      try:
        value = json.loads(file.read_text(encoding="utf-8"))
      except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        continue
      if isinstance(value, dict) and "method" in value:
        warnings.warn(f"{path / CONFIG_FILE} is damaged; using the config saved in "
                      f"checkpoint {step}", stacklevel=3)
        return value
  raise WorkdirError(f"workdir {str(path)!r}: {CONFIG_FILE} is damaged and no "
                     "checkpoint holds a readable config")
