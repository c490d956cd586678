"""Checkpoints with Orbax: the whole TrainState, the data position and the config.

Orbax writes each checkpoint into a temporary folder and renames it into place
once complete, and deletes old checkpoints only after the new one is committed,
so an interrupted save never destroys the last good checkpoint.

With several processes every process calls `save` and `restore` (they are
collective): each writes and reads the shards its devices hold (a replicated
array is written once), process 0 writes the JSON items and commits. The
folder must be one that every process sees (a shared filesystem). The data
position is the same on every process (the index of the next global batch),
so a run resumes on any number of processes.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import pathlib
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint._src.metadata import array_metadata_store as ocp_array_metadata_store

from jaxgen.errors import WorkdirError

# Orbax logs every save at INFO; the run's own log says what matters.
logging.getLogger("absl").setLevel(logging.WARNING)

# Replica-parallel saving splits each replicated array among its replicas,
# compiling one slicing program per array shape on the first save of a process:
# about 120 compilations and 2-7 s for a small model on 4 devices, for arrays
# that take microseconds to write. Arrays whose per-replica slice would be under
# 16 MiB are written by one replica instead (the same files); large arrays keep
# the parallel write. Orbax reads this handler from its global registry, so the
# setting applies to every jax.Array that Orbax saves in this process.
_REPLICA_PARALLEL_MIN_BYTES = 16 * 2**20


def _register_array_handler() -> None:
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)   # Orbax warns that it overrides a handler
  try:
    ocp.type_handlers.register_type_handler(
        jax.Array,
        ocp.type_handlers.ArrayHandler(
            min_slice_bytes_for_replica_parallel=_REPLICA_PARALLEL_MIN_BYTES,
            array_metadata_store=ocp_array_metadata_store.Store()),
        override=True)
  finally:
    absl_logger.setLevel(level)


_register_array_handler()


class _DropOrphanedTaskErrors(logging.Filter):
  """Drops asyncio's "Task exception was never retrieved" records.

  When an array file is damaged, Orbax gathers its metadata reads in asyncio
  tasks and lets the first error propagate; the sibling tasks' errors are
  reported by asyncio's logger whenever they are garbage collected, as a
  traceback around the one warning or error line jaxgen prints about it.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return "Task exception was never retrieved" not in record.getMessage()


@contextlib.contextmanager
def _quiet_failed_restore():
  """Restores with asyncio's orphaned-task tracebacks dropped, collecting the
  orphaned tasks before the filter is removed."""
  logger = logging.getLogger("asyncio")
  quiet = _DropOrphanedTaskErrors()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    gc.collect()
    logger.removeFilter(quiet)


class Checkpointer:
  """Saves and restores (state, data positions, config) under one folder."""

  def __init__(self, directory: str | pathlib.Path, keep: int = 3):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max(keep, 1),
        # Synchronous saves: the state is small next to a step's compute, and a
        # save that has returned is on disk, which the signal handler relies on.
        enable_async_checkpointing=False,
        create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    self._manager.reload()
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    self._manager.reload()
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_states: list[dict[str, Any]],
           config: dict[str, Any]) -> None:
    """Writes checkpoint `step`; returns once it is committed to disk."""
    self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave({"iterators": data_states}),
            config=ocp.args.JsonSave(config)),
        force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, abstract_state: Any
              ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Reads checkpoint `step` into arrays shaped and placed like `abstract_state`."""
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=ocp.args.JsonRestore(),
            config=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]["iterators"], restored["config"]

  def restore_newest(self, abstract_state: Any, step: int | None = None, *,
                     quarantine: bool = False
                     ) -> tuple[int, Any, list[dict[str, Any]], dict[str, Any]]:
    """Restores checkpoint `step`, or the newest one that can be read.

    A checkpoint that fails to restore (a truncated array file, missing
    metadata, an empty folder) is skipped with a one-line warning naming it,
    and the next older one is tried. Raises WorkdirError when `step` does not
    exist or nothing can be restored. Returns (step, state, data, config).

    With `quarantine` (a trainer resuming), the skipped checkpoints are moved
    to `<checkpoints>.damaged/<step>`, kept for inspection but out of the way of
    the steps the run is about to redo and save again.
    """
    steps = sorted(self.all_steps(), reverse=True)
    if step is not None:
      if step not in steps:
        raise WorkdirError(f"no checkpoint {step} in {self.directory}; saved steps: "
                           f"{', '.join(map(str, sorted(steps))) or 'none'}")
      steps = [step]
    skipped = []
    for candidate in steps:
      try:
        with _quiet_failed_restore():
          state, data, config = self.restore(candidate, abstract_state)
      except Exception as error:  # pylint: disable=broad-except
        # Orbax raises many types for damaged files (ValueError, OSError,
        # FileNotFoundError, tensorstore errors); any of them means "unreadable".
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else (
            type(error).__name__)
        if step is not None:
          raise WorkdirError(f"checkpoint {candidate} in {self.directory} cannot be "
                             f"restored: {reason}") from None
        skipped.append((candidate, reason))
        continue
      # Warned only now, so that a total failure is the one line below.
      for skipped_step, reason in skipped:
        warnings.warn(f"checkpoint {skipped_step} in {self.directory} cannot be "
                      f"restored ({reason}); using step {candidate}", stacklevel=2)
      if quarantine and skipped:
        self._quarantine([s for s, _ in skipped])
      return candidate, state, data, config
    raise WorkdirError(
        f"no restorable checkpoint in {self.directory}"
        + (f" (tried steps {', '.join(map(str, steps))}; step {skipped[0][0]}: "
           f"{skipped[0][1]})" if skipped else ""))

  def _quarantine(self, steps: list[int]) -> None:
    damaged = self.directory.with_name(self.directory.name + ".damaged")
    damaged.mkdir(exist_ok=True)
    for step in steps:
      target = damaged / str(step)
      suffix = 0
      while target.exists():
        suffix += 1
        target = damaged / f"{step}.{suffix}"
      (self.directory / str(step)).rename(target)
    self._manager.reload()

  def close(self) -> None:
    self._manager.close()


def abstract_like(tree: Any, sharding: Any) -> Any:
  """ShapeDtypeStructs of `tree` (e.g. from `jax.eval_shape`) placed on `sharding`:
  one Sharding for every array, or a tree of them shaped like `tree` (fsdp)."""
  if isinstance(sharding, jax.sharding.Sharding):
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
  return jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, sharding)
