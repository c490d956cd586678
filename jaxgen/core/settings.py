"""Typed, range-checked, frozen settings: the only thing traced code reads.

A family's `make(config, spec)` turns the mutable ConfigDict into frozen
dataclasses once; its losses and steps close over those, never over the
config. Each field declares its type and, where it has one, its valid range
or choices, so validation lives in one place and every bad value gets the same
one-line error before anything is written:

  @dataclasses.dataclass(frozen=True)
  class ModelSettings:
    latent_dim: int = field(minimum=1)
    beta: float = field(minimum=0.0)
    likelihood: str = field(choices=("bernoulli", "gaussian"))
    hidden: tuple[int, ...] = field(minimum=1)

  model = settings.resolve(ModelSettings, config.model, "model")

`resolve` reads exactly the dataclass's fields from the section, converts ints
to floats where a float is declared, checks every element of a tuple, and
refuses keys of the section that no field declares (unless listed in
`ignore`). `None` is accepted only for fields annotated `X | None`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from jaxgen.errors import ConfigError, choices as choices_text

_MISSING = dataclasses.MISSING


def field(*, default: Any = _MISSING, minimum: float | None = None,
          maximum: float | None = None, exclusive_minimum: bool = False,
          exclusive_maximum: bool = False, choices: Iterable[Any] | None = None,
          help: str = "") -> Any:  # pylint: disable=redefined-builtin
  """A settings field with its valid range or choices (and an optional default)."""
  metadata = dict(minimum=minimum, maximum=maximum,
                  exclusive_minimum=exclusive_minimum,
                  exclusive_maximum=exclusive_maximum,
                  choices=tuple(choices) if choices is not None else None, help=help)
  if default is _MISSING:
    return dataclasses.field(metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


def _describe(annotation: Any) -> str:
  return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _convert(value: Any, annotation: Any, name: str) -> Any:
  """`value` as `annotation`, or a ConfigError naming the key and the type."""
  origin = typing.get_origin(annotation)
  if origin in (typing.Union, types.UnionType):
    options = typing.get_args(annotation)
    if value is None and type(None) in options:
      return None
    errors = []
    for option in options:
      if option is type(None):
        continue
      try:
        return _convert(value, option, name)
      except ConfigError as error:
        errors.append(error)
    raise errors[0]
  if origin is tuple:
    args = typing.get_args(annotation)
    if not isinstance(value, (tuple, list)):
      raise ConfigError(f"{name} must be a tuple, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
      return tuple(_convert(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
      raise ConfigError(f"{name} must have {len(args)} entries, got {value!r}")
    return tuple(_convert(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
  if origin is typing.Literal:
    allowed = typing.get_args(annotation)
    if value not in allowed:
      raise ConfigError(f"unknown {name} {value!r}; valid: {choices_text(allowed)}")
    return value
  if annotation is bool:
    if not isinstance(value, bool):
      raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value
  if annotation is int:
    if isinstance(value, bool) or not isinstance(value, int):
      raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)
  if annotation is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)
  if annotation is str:
    if not isinstance(value, str):
      raise ConfigError(f"{name} must be a string, got {value!r}")
    return value
  if annotation is Any:
    return value
  raise TypeError(f"settings field {name} has an unsupported type {_describe(annotation)}")


def _check(value: Any, meta: Mapping[str, Any], name: str) -> None:
  """Range and choice checks of one (converted) value, elementwise for tuples."""
  if value is None:
    return
  if isinstance(value, tuple):
    for i, v in enumerate(value):
      _check(v, meta, f"{name}[{i}]")
    return
  if meta.get("choices") is not None and value not in meta["choices"]:
    raise ConfigError(f"unknown {name} {value!r}; valid: {choices_text(meta['choices'])}")
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    if isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f"{name} must be finite, got {value}")
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and (value <= low if meta.get("exclusive_minimum") else value < low):
      bound = ">" if meta.get("exclusive_minimum") else ">="
      raise ConfigError(f"{name} must be {bound} {low}, got {value}")
    if high is not None and (value >= high if meta.get("exclusive_maximum") else value > high):
      bound = "<" if meta.get("exclusive_maximum") else "<="
      raise ConfigError(f"{name} must be {bound} {high}, got {value}")


def resolve(cls: type, section: Mapping[str, Any] | Any, prefix: str, *,
            ignore: Iterable[str] = (), **overrides: Any) -> Any:
  """Builds the frozen settings dataclass `cls` from a config section.

  Args:
    cls: a frozen dataclass whose fields were declared with `field`.
    section: a ConfigDict or mapping (e.g. `config.model`).
    prefix: the section's name, for messages (`"model"`).
    ignore: keys of the section that other settings read.
    **overrides: values that replace the section's (resolved defaults).
  """
  values = dict(section.items()) if hasattr(section, "items") else dict(section)
  values.update(overrides)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(fields) - set(ignore))
  if unknown:
    raise ConfigError(f"unknown key {prefix}.{unknown[0]}; valid: "
                      f"{choices_text(sorted(fields))}")
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for name, f in fields.items():
    key = f"{prefix}.{name}"
    if name not in values:
      if f.default is _MISSING and f.default_factory is _MISSING:
        raise ConfigError(f"missing key {key}")
      continue
    value = _convert(values[name], hints[name], key)
    _check(value, f.metadata, key)
    kwargs[name] = value
  return cls(**kwargs)
