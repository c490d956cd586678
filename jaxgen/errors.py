"""Errors that jaxgen raises on purpose.

`UserError` and its subclasses mean "the input was wrong": the CLI prints their
one-line message and exits with status 2. Everything else is a bug or a failed
run and keeps its traceback.
"""

from __future__ import annotations

import signal as signal_lib
from collections.abc import Iterable


class UserError(ValueError):
  """Bad input from the user: a config key, a value, a dataset, a workdir."""

  exit_code = 2


class ConfigError(UserError):
  """A config key or value that does not exist or does not fit."""


class DataError(UserError):
  """A dataset that cannot be found, read or fed to the chosen model."""


class WorkdirError(UserError):
  """A workdir that holds something other than what the command expects."""


class NonFiniteError(RuntimeError):
  """The loss or a metric became NaN/Inf; the run stopped without saving it."""

  exit_code = 1


class TrainingInterrupted(KeyboardInterrupt):
  """SIGTERM or SIGINT stopped `jaxgen.fit`/`jaxgen.train` before train.steps.

  Raised after the checkpoint of the step it stopped at is committed (for a run
  with a workdir), so `resume=True` continues bit-exactly. A KeyboardInterrupt,
  so that a script's `except Exception` does not swallow it and an uncaught one
  ends the script (traceback, failing status) instead of it going on as if
  training had finished. The CLI exits with `exit_code` (128 + the signal number).

  Attributes:
    signal: the signal number (signal.SIGTERM or signal.SIGINT).
    step: the last step taken (and saved).
    workdir: the run directory, or None for an in-memory run.
    result: the RunResult at that step (status "interrupted").
  """

  def __init__(self, signal: int, step: int, workdir: object = None,
               result: object = None):
    self.signal, self.step, self.workdir, self.result = int(signal), int(step), workdir, result
    name = signal_lib.Signals(self.signal).name
    where = (f"checkpoint saved in {workdir}; continue with resume=True"
             if workdir is not None else "an in-memory run: nothing was saved")
    super().__init__(f"training stopped by {name} at step {self.step}; {where}")

  @property
  def exit_code(self) -> int:
    return 128 + self.signal

  def __reduce__(self):
    return (type(self), (self.signal, self.step, self.workdir))   # not the RunResult (device arrays)


def choices(valid: Iterable[object]) -> str:
  """Formats valid choices for an error message: `'a', 'b' or 'c'`."""
  items = [repr(v) if isinstance(v, str) else str(v) for v in valid]
  if not items:
    return "(none)"
  if len(items) == 1:
    return items[0]
  return ", ".join(items[:-1]) + " or " + items[-1]
