"""The method registry: names to families' `make` functions and default configs.

A family module registers its methods at import time:

  registry.register("vae", family="vae", description="...",
                    default_config=vae_default_config, make=make_vae)

Every module under `jaxgen.families` is imported on first lookup, so a new
method is one `register` call in its family's module.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING

import ml_collections

from jaxgen.errors import ConfigError, choices

if TYPE_CHECKING:
  from jaxgen.core.state import Method


@dataclasses.dataclass(frozen=True)
class MethodEntry:
  """One registered method.

  Attributes:
    name: the name used on the CLI and in `config.method`.
    family: the family it belongs to (for `jaxgen list`).
    description: one line.
    default_config: `default_config(data_name)` returns the method's config
      sections (`model`, `optim`, and optionally `data`/`train` values that
      differ from the base config) for training on dataset `data_name`.
    make: `make(config, data_spec) -> Method`; validates the config against
      the data and raises ConfigError/DataError with a one-line message.
    default_data: the dataset used when the user names none.
    requires: `requires(config) -> {argument: workdir}`, the trained runs
      `make` takes besides (config, data_spec), or None. The runner loads each
      (`jaxgen.load`) and passes it as `make(config, spec, argument=run)`, so a
      family that builds on a trained model never reads a workdir itself.
  """

  name: str
  family: str
  description: str
  default_config: Callable[[str], ml_collections.ConfigDict]
  make: Callable[..., "Method"]
  default_data: str = "digits"
  requires: Callable[[ml_collections.ConfigDict], dict[str, str]] | None = None


_METHODS: dict[str, MethodEntry] = {}
_LOADED = False


def register(name: str, *, family: str, description: str,
             default_config: Callable[[str], ml_collections.ConfigDict],
             make: Callable[..., "Method"], default_data: str = "digits",
             requires: Callable[[ml_collections.ConfigDict], dict[str, str]] | None = None
             ) -> None:
  """Adds a method to the registry (a name may be registered once)."""
  if name in _METHODS and _METHODS[name].make is not make:
    raise ValueError(f"method {name!r} is already registered")
  _METHODS[name] = MethodEntry(name, family, description, default_config, make,
                               default_data, requires)


def unregister(name: str) -> None:
  """Removes a method (for tests that register throwaway methods)."""
  _METHODS.pop(name, None)


def _load_builtin() -> None:
  global _LOADED
  if _LOADED:
    return
  _LOADED = True
  import jaxgen.families as families  # pylint: disable=import-outside-toplevel
  for module in pkgutil.iter_modules(families.__path__, families.__name__ + "."):
    importlib.import_module(module.name)


def get(name: str) -> MethodEntry:
  """The registered method `name`; a ConfigError lists the valid names."""
  _load_builtin()
  if name not in _METHODS:
    raise ConfigError(f"unknown method {name!r}; valid: {choices(sorted(_METHODS))}")
  return _METHODS[name]


def methods() -> dict[str, MethodEntry]:
  """All registered methods, by name."""
  _load_builtin()
  return dict(sorted(_METHODS.items()))
