"""Run logging: JSONL metrics, a tqdm progress bar, optional TensorBoard events.

Every record in `metrics.jsonl` is one JSON object with at least `step` and
`split` ("train" or "test"); multi-seed runs write one record per seed with a
`seed` field. Evaluation records carry a `protocol` object that says how the
numbers were obtained (estimator, split, number of examples, keys).
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time
from typing import Any

import numpy as np
import tqdm


def plain(value: Any, nonfinite: str = "string") -> Any:
  """`value` as plain JSON types; NaN/Inf floats as strings ("nan") or None.

  JSON has no NaN: metrics.jsonl keeps them readable as strings, eval.json
  writes null (`nonfinite="null"`), as docs/reliability.md says.
  """
  if isinstance(value, (np.floating, np.integer)):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None if nonfinite == "null" else str(value)
  if isinstance(value, dict):
    return {k: plain(v, nonfinite) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [plain(v, nonfinite) for v in value]
  if isinstance(value, np.ndarray):
    return plain(value.tolist(), nonfinite)
  return value


def per_seed(values: dict[str, np.ndarray], seeds: list[int], multi: bool
             ) -> list[tuple[int | None, dict[str, float]]]:
  """[(seed, {name: float})], one entry per replica (seed None for one-seed runs)."""
  if not multi:
    return [(None, {k: float(v) for k, v in values.items()})]
  return [(s, {k: float(v[i]) for k, v in values.items()})
          for i, s in enumerate(seeds)]


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, Any]]:
  """All records of a metrics file."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  """Appends records to `workdir/metrics.jsonl` and mirrors scalars to TensorBoard."""

  def __init__(self, workdir: pathlib.Path | None, tensorboard: str = "auto",
               enabled: bool = True):
    self.records: list[dict[str, Any]] = []
    self._file = None
    self._tb = None
    if workdir is None or not enabled:
      return
    self._file = open(workdir / "metrics.jsonl", "a", encoding="utf-8")
    if tensorboard in ("auto", "on"):
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
        self._tb = SummaryWriter(str(workdir / "tensorboard"))
      except ImportError:
        if tensorboard == "on":
          raise
    elif tensorboard != "off":
      from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
      raise ConfigError(f"train.tensorboard must be 'auto', 'on' or 'off', "
                        f"got {tensorboard!r}")

  def write(self, record: dict[str, Any]) -> None:
    record = plain(record)
    self.records.append(record)
    if self._file is not None:
      self._file.write(json.dumps(record) + "\n")
      self._file.flush()
    if self._tb is not None:
      tag_prefix = record.get("split", "train")
      if "seed" in record:
        tag_prefix += f"/seed{record['seed']}"
      for name, value in record.items():
        if name in ("step", "split", "seed", "time") or not isinstance(
            value, (int, float)) or isinstance(value, bool):
          continue
        self._tb.add_scalar(f"{tag_prefix}/{name}", value, record["step"])

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def phase_bar(description: str, total: int, unit: str, enabled: bool = True
              ) -> tqdm.tqdm:
  """A tqdm bar on stderr for one long phase (an evaluation, a sampling run)
  with what is being done and an ETA; it disappears when closed."""
  return tqdm.tqdm(total=total, desc=description, unit=unit, file=sys.stderr,
                   disable=not enabled, dynamic_ncols=True, leave=False)


class Progress:
  """A tqdm bar over the train steps with the loss and steps/s.

  Until `start` it shows "compiling the train step…" (the first step compiles
  the program); the step bar, and its clock, start after the first step, so
  its first ETA does not count compilation.
  """

  def __init__(self, total: int, initial: int, description: str, enabled: bool):
    self._total, self._description, self._enabled = total, description, enabled
    self._bar: tqdm.tqdm | None = None
    self._status = tqdm.tqdm(total=None, desc=f"{description}: compiling the train "
                             "step…", bar_format="{desc} {elapsed}", file=sys.stderr,
                             disable=not enabled, leave=False)
    self._last_time = time.perf_counter()
    self._last_step = initial

  def start(self, step: int) -> None:
    """The first step has run (compiled): show the step bar from `step`."""
    if self._bar is not None:
      return
    self._status.close()
    self._bar = tqdm.tqdm(total=self._total, initial=step, desc=self._description,
                          unit="step", file=sys.stderr, disable=not self._enabled,
                          dynamic_ncols=True, smoothing=0.1)
    self._last_time, self._last_step = time.perf_counter(), step

  def update(self, step: int, loss: float | None = None) -> float:
    """Moves the bar to `step`; returns steps/s since the previous update."""
    self.start(step)
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._bar.update(step - self._bar.n)
    if loss is not None:
      self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    self._last_time, self._last_step = now, step
    return rate

  def write(self, message: str) -> None:
    tqdm.tqdm.write(message, file=sys.stderr)

  def close(self) -> None:
    self._status.close()
    if self._bar is not None:
      self._bar.close()
