"""Errors that jaxgen raises on purpose.

`UserError` and its subclasses mean "the input was wrong": the CLI prints their
one-line message and exits with status 2. Everything else is a bug or a failed
run and keeps its traceback.
"""

from __future__ import annotations

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


def choices(valid: Iterable[object]) -> str:
  """Formats valid choices for an error message: `'a', 'b' or 'c'`."""
  items = [repr(v) if isinstance(v, str) else str(v) for v in valid]
  if not items:
    return "(none)"
  if len(items) == 1:
    return items[0]
  return ", ".join(items[:-1]) + " or " + items[-1]
