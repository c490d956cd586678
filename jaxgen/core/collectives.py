"""Collectives a family may call inside its step: means and sums over devices.

Under the default `jit` strategy the global batch is one sharded array and XLA
inserts the reductions, so these are identities. Under `pmap` the step is traced
once per device; the runner marks that with `pmap_axis(name)` and these become
`lax.pmean` / `lax.psum` over that axis.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax

_PMAP_AXIS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jaxgen_pmap_axis", default=None)


@contextlib.contextmanager
def pmap_axis(name: str | None) -> Iterator[None]:
  """Marks code traced inside it as running under `pmap` with axis `name`."""
  token = _PMAP_AXIS.set(name)
  try:
    yield
  finally:
    _PMAP_AXIS.reset(token)


def current_pmap_axis() -> str | None:
  """The pmap axis name while a pmapped step is traced, else None."""
  return _PMAP_AXIS.get()


def mean_over_devices(tree: Any) -> Any:
  """Averages a pytree over devices under `pmap`; identity otherwise."""
  axis = current_pmap_axis()
  if axis is None:
    return tree
  return jax.lax.pmean(tree, axis)


def sum_over_devices(tree: Any) -> Any:
  """Sums a pytree over devices under `pmap`; identity otherwise."""
  axis = current_pmap_axis()
  if axis is None:
    return tree
  return jax.lax.psum(tree, axis)
