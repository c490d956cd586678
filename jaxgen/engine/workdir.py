"""The run directory: what a run writes, and the rules that protect it.

Layout:
  config.json          the effective config (what `--resume` compares against)
  run.json             versions, devices, data spec and one entry per session
  metrics.jsonl        train and evaluation records (see engine.logs)
  checkpoints/<step>/  Orbax checkpoints: state, data position, config
  samples/, reconstructions/   PNG grids written during training
  samples.png, reconstructions.png, eval.json   the final ones
  tensorboard/         event files, when a writer package is installed
"""

from __future__ import annotations

import datetime
import json
import pathlib
import platform
import shutil
import sys
from typing import Any

from jaxgen import config as config_lib
from jaxgen.errors import WorkdirError

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
EVAL_FILE = "eval.json"
# Only these are removed by --overwrite; anything else in the folder stays.
OWNED = (CONFIG_FILE, RUN_FILE, METRICS_FILE, CHECKPOINT_DIR, EVAL_FILE,
         "samples", "reconstructions", "samples.png", "reconstructions.png",
         "tensorboard")


def prepare(workdir: str | pathlib.Path, config: dict[str, Any], *,
            resume: bool, overwrite: bool) -> pathlib.Path:
  """Checks `workdir` against the requested run and writes config.json.

  A fresh or empty folder starts a run. A folder holding a run needs `resume`
  (and the same config, outside config.RESUMABLE_KEYS) or `overwrite`. A
  non-empty folder that holds no run is never touched.
  """
  path = pathlib.Path(workdir)
  if resume and overwrite:
    raise WorkdirError("--resume and --overwrite exclude each other; choose one")
  if path.exists() and not path.is_dir():
    raise WorkdirError(f"workdir {str(path)!r} is a file, not a directory")
  if path.exists() and any(path.iterdir()):
    saved_path = path / CONFIG_FILE
    if not saved_path.exists():
      raise WorkdirError(
          f"workdir {str(path)!r} is not empty and holds no jaxgen run; "
          "choose a new or empty directory")
    if overwrite:
      for name in OWNED:
        target = path / name
        if target.is_dir():
          shutil.rmtree(target)
        elif target.exists():
          target.unlink()
    elif resume:
      saved = json.loads(saved_path.read_text(encoding="utf-8"))
      diffs = config_lib.differences(saved, config)
      if diffs:
        more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
        raise WorkdirError(
            f"workdir {str(path)!r} holds a run with a different config: "
            f"{diffs[0]}{more}; resume with the same settings or pass --overwrite")
    else:
      raise WorkdirError(
          f"workdir {str(path)!r} already holds a run; pass --resume to continue "
          "it or --overwrite to replace it")
  path.mkdir(parents=True, exist_ok=True)
  (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
  return path


def record_session(path: pathlib.Path, info: dict[str, Any]) -> None:
  """Appends this session's environment to run.json."""
  run_file = path / RUN_FILE
  run = json.loads(run_file.read_text(encoding="utf-8")) if run_file.exists() else {}
  run.setdefault("sessions", []).append({
      "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "command": sys.argv,
      "host": platform.node(),
      "python": platform.python_version(),
      **info,
  })
  for key in ("data_spec", "method"):
    if key in info:
      run[key] = info[key]
  run_file.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")


def read_run(path: str | pathlib.Path) -> tuple[dict[str, Any], dict[str, Any]]:
  """(config, run info) of an existing run; a WorkdirError if there is none."""
  path = pathlib.Path(path)
  if not (path / CONFIG_FILE).exists():
    raise WorkdirError(f"workdir {str(path)!r} holds no jaxgen run "
                       f"(no {CONFIG_FILE}); train one with `jaxgen train`")
  config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
  run_file = path / RUN_FILE
  run = json.loads(run_file.read_text(encoding="utf-8")) if run_file.exists() else {}
  return config, run
