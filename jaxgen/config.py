"""Run configs: ml_collections ConfigDicts, read in one place and checked.

A run's config has four parts: `method` (a registry name), `data` (see
`jaxgen.data.default_config`), `train` (the loop, below) and the method's own
sections (`model`, `optim`, ...). Config files are Python files whose
`get_config()` returns the whole ConfigDict (see experiments/).

Configs are locked: `get_config` and a config file's `get_config()` return a
ConfigDict to which no key can be added, so a misspelt key is the usual
one-line "unknown config key" error instead of a silently ignored value.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.util
import json
import pathlib
import re
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from jaxgen import registry
from jaxgen.errors import ConfigError, choices

# Keys that may differ when a run is resumed: they change how the loop reports
# and where it runs, never the numbers it computes.
RESUMABLE_KEYS = (
    "train.steps", "train.progress", "train.tensorboard", "train.log_every",
    "train.eval_every", "train.sample_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.num_samples", "train.strategy",
    "train.num_devices", "train.eval_batch_size", "train.final_eval", "train.on_nonfinite")
# (train.coverage_samples changes evaluation numbers, and train.seed_strategy
# the float operations of the step (vmap vs loop differ at ~1e-8), so they
# must match.)
# Schedules whose shape depends on `decay_steps` (0: derived from train.steps).
DECAYING_SCHEDULES = ("cosine", "warmup_cosine", "linear")


def train_config() -> ml_collections.ConfigDict:
  """The loop's settings, shared by every method."""
  return ml_collections.ConfigDict(dict(
      steps=2000,
      # The horizon of learning-rate schedules (0: train.steps of the run's
      # first session). Resolved into the saved config when a run starts, so
      # that `--resume --steps N` extends a run without changing its schedules.
      schedule_steps=0,
      seed=0,
      seeds=(),              # non-empty: train one replica per seed, in one program
      # How the train step runs the replicas: "vmap" (batched; fastest for
      # dense layers and on accelerators) or "loop" (one after the other inside
      # the compiled step, `lax.map`; for conv nets on a CPU, where vmapping
      # turns convolutions into slow grouped convolutions). Init, evaluation
      # and sampling are vmapped either way.
      seed_strategy="vmap",
      strategy="jit",        # "jit" (device mesh + shardings), "fsdp" (state sharded too) or "pmap"
      num_devices=0,         # 0: all devices
      log_every=50,
      eval_every=500,        # 0: only at the end
      sample_every=500,      # 0: only at the end
      checkpoint_every=500,  # 0: only at the end
      keep_checkpoints=3,
      # Also keep the checkpoint with the best value of this evaluation metric
      # (its name in eval.json, e.g. "fid_lenet_digits" or "elbo"; the mean over
      # seeds) in the run's best/ folder, for `--step best`; "" keeps none.
      keep_best="",
      keep_best_mode="min",   # "min" or "max": which values are better
      num_samples=64,
      eval_batch_size=0,     # 0: data.batch_size
      final_eval=True,       # evaluate on the test split when training ends
      coverage_samples=2500,  # data with known modes: samples for mode coverage
      # Sample metrics at every evaluation (docs/metrics.md), e.g. ("fid", "kid"):
      # eval_metric_samples samples each, against the train split's features.
      eval_metrics=(),
      eval_metric_samples=2000,
      # NaN/Inf in a metric: "stop" (save nothing more; the last good checkpoint
      # stays) or "continue" (log it; for multi-seed studies where one replica
      # may diverge while the others go on).
      on_nonfinite="stop",
      progress=True,
      tensorboard="auto",    # "auto": when tensorboardX is installed; "on"; "off"
      # "bfloat16": matmuls and convolutions in bfloat16, parameters, optimizer
      # state and losses in float32 (jaxgen.core.precision).
      compute_dtype="float32",
  ))


def base_config() -> ml_collections.ConfigDict:
  """The method-independent part of every config."""
  from jaxgen import data  # pylint: disable=import-outside-toplevel
  config = ml_collections.ConfigDict()
  config.method = ""
  config.data = data.default_config()
  config.train = train_config()
  return config


def get_config(method: str, data: str | None = None) -> ml_collections.ConfigDict:
  """The full default config of `method`, optionally on dataset `data`."""
  entry = registry.get(method)
  config = base_config()
  config.method = method
  config.data.name = data or entry.default_data
  sections = entry.default_config(config.data.name)
  for name, section in sections.items():
    if name in ("data", "train"):
      for key, value in section.items():
        _set(config[name], f"{name}.{key}", key, value, strict=True)
    else:
      config[name] = section
  config.lock()
  return config


def lock(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Locks `config` (no key can be added; values can change) and returns it."""
  config.lock()
  return config


def check_known_keys(config: ml_collections.ConfigDict,
                     reference: ml_collections.ConfigDict, source: str) -> None:
  """Raises a one-line ConfigError for a key of `config` that `reference` lacks."""
  for dotted in flatten(config.to_dict()):
    node = reference
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:depth])
        valid = (_keys_hint(node, part) if isinstance(node, ml_collections.ConfigDict)
                 else "(none: it is a value)")
        raise ConfigError(f"unknown config key {dotted!r} in {source}; valid keys "
                          f"in {where or 'the config'}: {valid}")
      node = node[part]


def resolve_derived(config: ml_collections.ConfigDict,
                    saved: dict[str, Any] | None = None) -> list[str]:
  """Writes values that default to a derived one into `config`; returns their keys.

  Today: `train.schedule_steps` = 0 (the horizon families give their
  optimizers' schedules, e.g. the GAN discriminator's schedule_steps ×
  n_critic) and an optimizer section's `decay_steps` = 0 with a decaying schedule
  becomes `train.steps` — or, when resuming (`saved`: the run's saved config),
  the run's resolved value, so `--steps N` extends a run without changing its
  schedule. A resolved value is saved in config.json like any other.
  """
  saved_flat = flatten(saved) if saved else {}
  resolved = []
  if "schedule_steps" in config.train and not config.train.schedule_steps:
    previous = saved_flat.get("train.schedule_steps")
    config.train.schedule_steps = (previous if isinstance(previous, int) and previous > 0
                                   else int(config.train.steps))
    resolved.append("train.schedule_steps")
  for path, section in _sections(config):
    if (section.get("decay_steps") == 0 and isinstance(section.get("schedule"), str)
        and section.schedule in DECAYING_SCHEDULES):
      dotted = f"{path}.decay_steps"
      previous = saved_flat.get(dotted)
      section.decay_steps = (previous if isinstance(previous, int) and previous > 0
                             else int(config.train.steps))
      resolved.append(dotted)
  return resolved


def _sections(config: ml_collections.ConfigDict, prefix: str = ""):
  """(dotted path, section) of every nested ConfigDict below `config`."""
  for name, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield prefix + name, value
      yield from _sections(value, prefix + name + ".")


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """Runs a config file's `get_config()` and returns its ConfigDict."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise ConfigError(f"config file {str(path)!r} does not exist")
  spec = importlib.util.spec_from_file_location(f"jaxgen_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {str(path)!r} defines no get_config()")
  try:
    config = module.get_config()
  except (AttributeError, KeyError) as error:
    raise _locked_error(error, path) from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() in {str(path)!r} must return an "
                      f"ml_collections.ConfigDict, got {type(config).__name__}")
  return config


def _locked_error(error: Exception, path: pathlib.Path) -> Exception:
  """A one-line ConfigError for a key added to a locked config in a config file."""
  message = (str(error.args[0]) if error.args else str(error)).replace("\\", "")
  match = re.search(r'Key "([^"]+)" does not exist and cannot be added', message)
  if match is None:
    return error
  key = match.group(1)
  valid = sorted(re.findall(r"'([^']+)':", message.split("Other fields present:")[-1]))
  close = difflib.get_close_matches(key, valid, n=1)
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if pathlib.Path(f.filename).resolve() == path.resolve()]
  where = f"{str(path)!r}"
  if frames:
    where += f" line {frames[-1].lineno} ({(frames[-1].line or '').strip()})"
  return ConfigError(f"unknown config key {key!r} set in {where}; valid keys in "
                     f"its section: {choices(valid)}"
                     + (f" (did you mean {close[0]!r}?)" if close else ""))


def parse_value(text: str) -> Any:
  """A `--set` value: a Python literal (1, 0.5, True, (1, 2), None) or a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
      return lowered == "true"
    return text


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Iterable[str]) -> None:
  """Applies `key=value` strings (the CLI's `--set`) to `config` in place."""
  for item in overrides:
    key, sep, raw = item.partition("=")
    if not sep or not key:
      # Neutral wording: the CLI's --set and the API's overrides= both land here.
      raise ConfigError(f"an override expects key=value (e.g. model.latent_dim=16), "
                        f"got {item!r}")
    set_value(config, key.strip(), parse_value(raw.strip()), raw=raw.strip())


def set_value(config: ml_collections.ConfigDict, dotted: str, value: Any,
              raw: str | None = None) -> None:
  """Sets `config[dotted]`, checking that the key exists and the type fits."""
  parts = dotted.split(".")
  node = config
  for depth, part in enumerate(parts[:-1]):
    child = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(child, ml_collections.ConfigDict):
      where = ".".join(parts[:depth]) or "the config"
      raise ConfigError(f"unknown config key {dotted!r}: {where} has no section "
                        f"{part!r}; valid: {_keys_hint(node, part)}")
    node = child
  _set(node, dotted, parts[-1], value, raw=raw, strict=True)


def _keys_hint(node: ml_collections.ConfigDict, wrong: str) -> str:
  keys = sorted(node.keys())
  close = difflib.get_close_matches(wrong, keys, n=1)
  hint = choices(keys)
  return hint + (f" (did you mean {close[0]!r}?)" if close else "")


def _set(node: ml_collections.ConfigDict, dotted: str, leaf: str, value: Any,
         raw: str | None = None, strict: bool = True) -> None:
  if leaf not in node:
    section = dotted.rsplit(".", 1)[0] if "." in dotted else "the config"
    raise ConfigError(f"unknown config key {dotted!r}; valid keys in {section}: "
                      f"{_keys_hint(node, leaf)}")
  current = node[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"config key {dotted!r} is a section; set one of its keys: "
                      f"{choices(sorted(current.keys()))}")
  node[leaf] = _coerce(dotted, current, value, raw)


def _coerce(dotted: str, current: Any, value: Any, raw: str | None) -> Any:
  """Converts `value` to the type of the key's default, or explains why not."""
  shown = raw if raw is not None else repr(value)

  def wrong(kind: str) -> ConfigError:
    return ConfigError(f"config key {dotted!r} takes {kind}, got {shown} "
                       f"({type(value).__name__})")

  if current is None:
    return value
  if isinstance(current, bool):
    if isinstance(value, bool):
      return value
    raise wrong("True or False")
  if isinstance(current, int):
    if isinstance(value, int) and not isinstance(value, bool):
      return value
    if isinstance(value, float) and value.is_integer():
      return int(value)
    raise wrong("an integer")
  if isinstance(current, float):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
    raise wrong("a number")
  if isinstance(current, str):
    if isinstance(value, str):
      return value
    if raw is not None:  # e.g. data.name=123: keep the text as typed
      return raw
    raise wrong("a string")
  if isinstance(current, (tuple, list)):
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
      value = (value,)
    if not isinstance(value, (tuple, list)):
      raise wrong("a sequence like (1, 2)")
    if current:
      kind = type(current[0])
      if kind is float:
        value = [float(v) if isinstance(v, int) else v for v in value]
      if not all(isinstance(v, kind) for v in value):
        raise wrong(f"a sequence of {kind.__name__}")
    return tuple(value)
  return value


def to_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A JSON-ready plain dict (tuples become lists)."""
  return json.loads(json.dumps(config.to_dict(), default=_json_default))


def _json_default(obj: Any) -> Any:
  if isinstance(obj, tuple):
    return list(obj)
  if hasattr(obj, "tolist"):
    return obj.tolist()
  raise TypeError(f"config value {obj!r} is not JSON serialisable")


def from_dict(values: dict[str, Any]) -> ml_collections.ConfigDict:
  """Rebuilds a config saved with `to_dict` (lists become tuples), locked."""

  def convert(obj: Any) -> Any:
    if isinstance(obj, dict):
      return ml_collections.ConfigDict({k: convert(v) for k, v in obj.items()})
    if isinstance(obj, list):
      return tuple(convert(v) for v in obj)
    return obj

  return lock(convert(copy.deepcopy(values)))


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  """{"a": {"b": 1}} -> {"a.b": 1}."""
  flat = {}
  for key, value in values.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def differences(saved: dict[str, Any], current: dict[str, Any],
                ignore: Sequence[str] = RESUMABLE_KEYS) -> list[str]:
  """Human-readable differences between two configs, outside `ignore`."""
  a, b = flatten(saved), flatten(current)
  lines = []
  for key in sorted(set(a) | set(b)):
    if key in ignore or a.get(key) == b.get(key):
      continue
    lines.append(f"{key} is {a.get(key, '(absent)')!r} there, "
                 f"{b.get(key, '(absent)')!r} here")
  return lines


def seeds_of(config: ml_collections.ConfigDict) -> list[int]:
  """The seeds a run trains: `train.seeds` when set, else `[train.seed]`."""
  seeds = list(config.train.seeds or ())
  if not seeds:
    return [int(config.train.seed)]
  if len(set(seeds)) != len(seeds) or not all(
      isinstance(s, int) and s >= 0 for s in seeds):
    raise ConfigError(f"train.seeds must be distinct non-negative integers, "
                      f"got {tuple(seeds)}")
  return seeds


def parse_seed_range(text: str) -> tuple[int, ...]:
  """'0-7' -> (0, ..., 7); '1,3,5' -> (1, 3, 5); '4' -> (4,)."""
  seeds: list[int] = []
  try:
    for part in text.split(","):
      part = part.strip()
      if "-" in part:
        lo, hi = part.split("-", 1)
        lo_i, hi_i = int(lo), int(hi)
        if hi_i < lo_i:
          raise ValueError
        seeds.extend(range(lo_i, hi_i + 1))
      else:
        seeds.append(int(part))
  except ValueError:
    raise ConfigError(f"--seeds expects a range like 0-7 or a list like 1,3,5; "
                      f"got {text!r}") from None
  return tuple(seeds)
