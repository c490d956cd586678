"""The Python API that experiment scripts call; the CLI is a thin layer over it.

  import jaxgen
  result = jaxgen.train("vae", steps=2000, workdir="runs/vae")   # or fit(config)
  result.metrics["eval"]["elbo"]
  run = jaxgen.load("runs/vae")
  images = jaxgen.sample("runs/vae", num=16, seed=1)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import pathlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import _npz
from jaxgen import projection as projection_lib
from jaxgen import registry
from jaxgen.engine import evaluation, logs, loop, parallel
from jaxgen.engine import runs as runs_lib
from jaxgen.engine import workdir as workdir_lib
from jaxgen.core.state import Method
from jaxgen.errors import ConfigError, choices
from jaxgen.metrics import sample_metrics

get_config = config_lib.get_config
fit = loop.fit
RunResult = loop.RunResult
LoadedRun = runs_lib.LoadedRun
load = runs_lib.load
_abstract_state = runs_lib.abstract_state
# Projection onto a trained generator and latent edits (jaxgen/projection.py).
project = projection_lib.project
train_encoder = projection_lib.train_encoder


def train(method: str | None = None, *, data: str | None = None,
          config: ml_collections.ConfigDict | str | None = None,
          overrides: Mapping[str, Any] | Iterable[str] = (),
          workdir: str | pathlib.Path | None = None, steps: int | None = None,
          seed: int | None = None, seeds: Iterable[int] | None = None,
          resume: bool = False, overwrite: bool = False) -> loop.RunResult:
  """Trains `method` and returns the final state and metrics.

  Args:
    method: a registered method name (`jaxgen.list_methods()`); may be left
      out with `resume=True` on a workdir that holds a run.
    data: a dataset name (`jaxgen.list_datasets()`); default: the method's.
    config: a full ConfigDict or the path of a config file; default: the
      method's defaults.
    overrides: {"model.latent_dim": 4} or ["model.latent_dim=4"].
    workdir: where the run is written; None trains in memory.
    steps, seed, seeds: shorthands for train.steps, train.seed, train.seeds.
    resume, overwrite: see `fit`. With `resume` on a workdir that holds a run,
      the run's own config is used (`resume_config`): the other arguments may
      be left out, and those given must agree with it.

  Raises jaxgen.errors.TrainingInterrupted, as `fit` does, when SIGTERM/SIGINT
  stopped the run (after saving its checkpoint).
  """
  if resume and workdir is not None and has_run(workdir):
    cfg = resume_config(workdir, method=method, data=data, config=config,
                        overrides=overrides, steps=steps, seed=seed, seeds=seeds)
  else:
    if method is None:
      raise ConfigError("train() needs a method to start a run"
                        + (f" (workdir {str(workdir)!r} holds no run to resume)"
                           if resume and workdir is not None else ""))
    if resume and workdir is not None:
      warnings.warn(f"no run to resume in {str(workdir)!r} (no checkpoint): starting "
                    f"a new {method} run", stacklevel=2)
    cfg = build_config(method, data=data, config=config, overrides=overrides,
                       steps=steps, seed=seed, seeds=seeds)
  return loop.fit(cfg, workdir=workdir, resume=resume, overwrite=overwrite)


def has_run(workdir: str | pathlib.Path) -> bool:
  """Whether `workdir` holds a run that `resume` continues (a committed checkpoint)."""
  path = pathlib.Path(workdir)
  return path.is_dir() and workdir_lib.has_checkpoint(path)


def _api_spelling(name: str, value: Any) -> str:
  """How an argument is shown in an error raised through the Python API."""
  return f"{name}={value!r}"


def resume_config(workdir: str | pathlib.Path, *, method: str | None = None,
                  data: str | None = None,
                  config: ml_collections.ConfigDict | str | None = None,
                  overrides: Mapping[str, Any] | Iterable[str] = (),
                  steps: int | None = None, seed: int | None = None,
                  seeds: Iterable[int] | None = None,
                  spelling: Callable[[str, Any], str] = _api_spelling
                  ) -> ml_collections.ConfigDict:
  """The config that continues the run in `workdir`: its saved one, `steps` applied.

  Every other argument is optional; one that is given must agree with the
  saved run, or a ConfigError names it as the caller typed it (`spelling`
  formats an argument: `data='digits'` here, `--data digits` on the CLI).
  `overrides` may change only settings that a resumed run may change
  (`config.RESUMABLE_KEYS`: reporting, checkpoints, devices).
  """
  saved_dict, _ = workdir_lib.read_run(workdir)
  saved = config_lib.from_dict(saved_dict)

  def refuse(name: str, used: Any, given: Any, given_name: str = "") -> ConfigError:
    return ConfigError(f"{spelling(name, used)} was used for this run; you passed "
                       f"{spelling(given_name or name, given)}")

  if method is not None and method != saved.method:
    raise refuse("method", saved.method, method)
  if data is not None and data != saved.data.name:
    raise refuse("data", saved.data.name, data)
  saved_seeds = tuple(saved.train.seeds or ())
  if seeds is not None and tuple(seeds) != saved_seeds:
    raise refuse("seeds", list(saved_seeds) if saved_seeds else None, list(seeds))
  if seed is not None and (saved_seeds or seed != saved.train.seed):
    raise (refuse("seeds", list(saved_seeds), seed, "seed") if saved_seeds
           else refuse("seed", saved.train.seed, seed))
  if config is not None:
    given = build_config(saved.method, data=saved.data.name, config=config)
    config_lib.resolve_derived(given, saved_dict)
    diffs = config_lib.differences(saved_dict, config_lib.to_dict(given))
    if diffs:
      more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
      raise ConfigError(f"{spelling('config', config)} differs from this run's "
                        f"config: {diffs[0]}{more}")
  items = (list(overrides.items()) if isinstance(overrides, Mapping)
           else list(overrides))
  for item in items:
    before = config_lib.to_dict(saved)
    _apply(saved, dict([item]) if isinstance(item, tuple) else [item])
    diffs = config_lib.differences(before, config_lib.to_dict(saved))
    if diffs:
      shown = f"{item[0]}={item[1]!r}" if isinstance(item, tuple) else item
      raise ConfigError(f"{spelling('overrides', shown)} would change this run: "
                        f"{diffs[0]}; a resumed run keeps its settings (only "
                        "train reporting, checkpoint and device keys may change)")
  if steps is not None:
    config_lib.set_value(saved, "train.steps", steps)
  return saved


def build_config(method: str, *, data: str | None = None,
                 config: ml_collections.ConfigDict | str | None = None,
                 overrides: Mapping[str, Any] | Iterable[str] = (),
                 steps: int | None = None, seed: int | None = None,
                 seeds: Iterable[int] | None = None) -> ml_collections.ConfigDict:
  """The effective config of a run, as `train` and the CLI build it."""
  if config is None:
    cfg = config_lib.get_config(method, data)
  else:
    if isinstance(config, ml_collections.ConfigDict):
      cfg, source = ml_collections.ConfigDict(config.to_dict()), "the config given"
    else:
      cfg, source = config_lib.load_config_file(config), f"config file {str(config)!r}"
    if cfg.get("method", method) != method:
      raise ConfigError(f"the config is for method {cfg.method!r}, not {method!r}; "
                        f"run `jaxgen train {cfg.method} ...` or change config.method")
    registry.get(method)  # unknown methods fail here, with the valid names
    data_name = cfg.get("data", {}).get("name") or None
    config_lib.check_known_keys(cfg, config_lib.get_config(method, data_name), source)
    cfg.method = method
    cfg = config_lib.lock(cfg)
  cfg.method = method
  if data is not None:
    cfg.data.name = data
  _apply(cfg, overrides)
  if steps is not None:
    config_lib.set_value(cfg, "train.steps", steps)
  if seed is not None:
    config_lib.set_value(cfg, "train.seed", seed)
  if seeds is not None:
    config_lib.set_value(cfg, "train.seeds", tuple(seeds))
  return cfg


def _apply(config: ml_collections.ConfigDict,
           overrides: Mapping[str, Any] | Iterable[str]) -> None:
  """Applies {"key": value} or ["key=value"] overrides, type-checked."""
  if isinstance(overrides, Mapping):
    for key, value in overrides.items():
      config_lib.set_value(config, key, value)
  else:
    config_lib.apply_overrides(config, overrides)


def _as_run(run: LoadedRun | str | pathlib.Path, step: int | None = None) -> LoadedRun:
  if isinstance(run, LoadedRun):
    if step is not None and step != run.step:
      raise ConfigError(f"step={step} was given with a run loaded at step {run.step}; "
                        "pass the workdir, or load(workdir, step=...)")
    return run
  return load(run, step)


# Keys of the loop's section that only change how a run is evaluated.
_EVALUATION_TRAIN_KEYS = ("train.eval_batch_size", "train.coverage_samples")


def _with_settings(run: LoadedRun, overrides: Mapping[str, Any] | Iterable[str]
                   ) -> LoadedRun:
  """`run` with evaluation- or sampling-time settings changed (the method rebuilt).

  The family's `make` validates the new values. A key of the data, the loop
  (but its evaluation keys) or an optimizer, or one that changes the shapes of
  the trained state (a layer width, a latent size), is refused in one line.
  """
  overrides = dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
  if not overrides:
    return run
  config = config_lib.from_dict(config_lib.to_dict(run.config))
  _apply(config, overrides)
  before = config_lib.flatten(config_lib.to_dict(run.config))
  after = config_lib.flatten(config_lib.to_dict(config))
  changed = [k for k in after if after[k] != before.get(k)]
  for key in changed:
    section = key.split(".")[0]
    if key not in _EVALUATION_TRAIN_KEYS and (
        section in ("method", "data", "train") or "optim" in section):
      raise ConfigError(f"{key} is a training setting and cannot change after "
                        "training; only evaluation- and sampling-time settings can "
                        "(e.g. model.* sampler or estimator keys)")
  method = runs_lib.build_method(config, run.spec)
  trained = jax.eval_shape(lambda s: s, run.state)
  rebuilt = _abstract_state(method, config, run.spec, run.seeds, run.multi)
  same = (jax.tree.structure(trained) == jax.tree.structure(rebuilt) and all(
      a.shape == b.shape and a.dtype == b.dtype
      for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(rebuilt))))
  if not same:
    raise ConfigError(f"{', '.join(changed)} would change the shapes of the trained "
                      "parameters; only evaluation- and sampling-time settings can "
                      "change after training")
  return dataclasses.replace(run, method=method, config=config)


def sample(run: LoadedRun | str | pathlib.Path, num: int = 64, seed: int = 0,
           replica: int = 0, *, step: int | None = None,
           overrides: Mapping[str, Any] | Iterable[str] = (),
           progress: bool = True, **conditioning: Any) -> np.ndarray:
  """Draws `num` samples [num, *data_shape] from a trained run.

  Args:
    run: a LoadedRun or a workdir (then checkpoint `step`, or the newest).
    num, seed, replica: how many, the sampling key's seed, which replica of a
      multi-seed run.
    overrides: sampling-time settings, e.g. {"model.sampler": "ddim",
      "model.sample_steps": 50} (see `_with_settings` for what is refused).
    progress: a bar with an ETA for samplers that report one (diffusion).
    conditioning: what the method's `sample` takes, e.g. `labels=` (an int or
      [num] ints) for conditional models, `guidance=` for guided diffusion.
  """
  run = _with_settings(_as_run(run, step), overrides)
  if num < 1:
    raise ConfigError(f"num must be at least 1, got {num}")
  if run.method.sample is None:
    raise ConfigError(f"method {run.method.name!r} models p(y|x) only: it has no "
                      "samples to draw")
  conditioning = _check_conditioning(run, num, conditioning)
  state = run.replica(replica)
  if progress and "progress" in inspect.signature(run.method.sample).parameters:
    # Iterative samplers run eagerly in compiled chunks with their own bar.
    fn = functools.partial(run.method.sample, num=num, progress=True, **conditioning)
  else:
    fn = jax.jit(lambda s, k: run.method.sample(s, k, num, **conditioning))
  try:
    return np.asarray(fn(state, jax.random.PRNGKey(seed)))
  except TypeError as error:
    # Methods whose sample takes **conditioning reject unknown names this way.
    if conditioning and "conditioning" in str(error):
      raise ConfigError(f"method {run.config.method!r}: {error}") from None
    raise


# What a method's `sample` takes to complete images (PixelCNN): the images and
# a mask of their observed values.
COMPLETION_ARGUMENTS = ("observed", "mask")


def can_complete(method: Method) -> bool:
  """Whether `method.sample` completes images (takes observed= and mask=)."""
  if method.sample is None:
    return False
  parameters = inspect.signature(method.sample).parameters
  return all(name in parameters for name in COMPLETION_ARGUMENTS)


@functools.lru_cache(maxsize=1)
def completion_methods() -> tuple[str, ...]:
  """The registered methods that complete images, each built with its defaults."""
  names = []
  for name, entry in registry.methods().items():
    if entry.family == "test":
      continue
    try:
      config = config_lib.get_config(name)
      method = entry.make(config, data_lib.from_config(config.data).spec)
    except Exception:  # pylint: disable=broad-except
      # Only for the list in an error message: a method whose defaults need
      # another run's artefact or absent data is left out of it.
      continue
    if can_complete(method):
      names.append(name)
  return tuple(sorted(names))


def read_completion_file(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray | None]:
  """(x, mask or None) from an .npz file of arrays; nothing is unpickled."""
  contents = _npz.read(path, "completion file")
  if "x" not in contents:
    raise ConfigError(f"completion file {str(path)!r} holds no array 'x' (images "
                      f"[N, H, W, C]); it holds: {choices(sorted(contents)) or 'nothing'}")
  return contents["x"], contents.get("mask")


def _read_image_array(path: str | pathlib.Path, what: str, keys: tuple[str, ...]
                      ) -> np.ndarray:
  """The first of `keys` in the .npz file at `path`, checked as images [N, H, W, C]
  (grey [N, H, W] gets a channel axis) of finite numbers; float32.

  Read by the shared safe reader (nothing is unpickled); every error is one
  line that names the file as `what` ("source file", "low-res file").
  """
  contents = _npz.read(path, what)
  shown = f"{what} {str(path)!r}"
  key = next((k for k in keys if k in contents), None)
  if key is None:
    wanted = " or ".join(repr(k) for k in keys)
    raise ConfigError(f"{shown} holds no array {wanted} (images [N, H, W, C]); it "
                      f"holds: {choices(sorted(contents)) or 'nothing'}")
  images = contents[key]
  if images.dtype.kind not in "fiub":
    raise ConfigError(f"{shown}: array {key!r} must hold numbers, got dtype {images.dtype}")
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or not len(images):
    raise ConfigError(f"{shown}: array {key!r} must be images [N, H, W(, C)] with N >= 1, "
                      f"got shape {list(contents[key].shape)}")
  images = images.astype(np.float32)
  if not np.all(np.isfinite(images)):
    raise ConfigError(f"{shown}: array {key!r} holds {int(np.sum(~np.isfinite(images)))} "
                      "non-finite value(s) (NaN or Inf)")
  return images


def read_source_file(path: str | pathlib.Path) -> np.ndarray:
  """The source images of `jaxgen sample --source FILE.npz` (pix2pix): array
  'source' (or 'x'), [N, H, W, C] float32."""
  return _read_image_array(path, "source file", ("source", "x"))


def read_low_res_file(path: str | pathlib.Path) -> np.ndarray:
  """The low-resolution images of `jaxgen sample --low-res FILE.npz` (srgan):
  array 'x', [N, H/s, W/s, C] float32."""
  return _read_image_array(path, "low-res file", ("x",))


def _completion_inputs(spec: Any, images: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
  """Checked images [N, *shape] and a boolean mask of their shape (default: top half)."""
  shape = tuple(spec.shape)
  images = np.asarray(images)
  if len(shape) == 3 and shape[-1] == 1 and images.shape[1:] == shape[:2]:
    images = images[..., None]   # grey images given as [N, H, W]
  if images.ndim != len(shape) + 1 or images.shape[1:] != shape or not len(images):
    raise ConfigError(f"images to complete must have shape [N, {', '.join(map(str, shape))}] "
                      f"for {spec.name!r}, got {list(images.shape)}")
  if not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
    raise ConfigError(f"images to complete must be numbers, got dtype {images.dtype}")
  images = images.astype(np.float32)
  low, high = (float(v) for v in spec.value_range)
  if not np.all(np.isfinite(images)) or images.min() < low or images.max() > high:
    raise ConfigError(f"images to complete must lie in the data range [{low:g}, {high:g}] "
                      f"of {spec.name!r}; got values in [{np.nanmin(images):g}, "
                      f"{np.nanmax(images):g}]" + (" and non-finite ones"
                                                   if not np.all(np.isfinite(images)) else ""))
  if spec.binary and not np.all((images == low) | (images == high)):
    raise ConfigError(f"{spec.name!r} is binary: images to complete must be {low:g} or "
                      f"{high:g}")
  if mask is None:   # the top half observed, the bottom half to fill in
    mask = np.zeros(images.shape, bool)
    mask[:, :shape[0] // 2] = True
    return images, mask
  mask = np.asarray(mask)
  if mask.shape == images.shape[:-1]:
    mask = mask[..., None]
  if mask.shape[:-1] != images.shape[:-1] or mask.shape[-1] not in (1, images.shape[-1]):
    raise ConfigError(f"mask must have the images' shape {list(images.shape)} (or without "
                      f"the channel axis), got {list(np.shape(mask))}")
  if not np.all((mask == 0) | (mask == 1)):
    raise ConfigError("mask values must be 1 (observed) or 0 (to complete)")
  return images, np.broadcast_to(mask.astype(bool), images.shape)


def complete(run: LoadedRun | str | pathlib.Path, images: Any, mask: Any = None, *,
             seed: int = 0, replica: int = 0, step: int | None = None,
             overrides: Mapping[str, Any] | Iterable[str] = (),
             **conditioning: Any) -> tuple[np.ndarray, np.ndarray]:
  """Completes `images` [N, *data_shape] from a trained run: (completions, mask).

  `mask` (1 = observed; the images' shape, or without the channel axis) marks
  the values kept; by default the top half of every image is observed. Values
  must lie in the data's range (and be 0/1 for binary data). Only methods whose
  `sample` takes observed= and mask= complete (`completion_methods()`).
  """
  run = _with_settings(_as_run(run, step), overrides)
  if not can_complete(run.method):
    raise ConfigError(f"method {run.config.method!r} cannot complete images; methods "
                      f"that can: {choices(completion_methods()) or 'none'}")
  images, mask = _completion_inputs(run.spec, images, mask)
  completions = sample(run, num=len(images), seed=seed, replica=replica,
                       observed=images, mask=mask, **conditioning)
  return completions, mask


def _check_conditioning(run: LoadedRun, num: int, conditioning: dict[str, Any]
                        ) -> dict[str, Any]:
  """`conditioning` with one label spread to [num]; one-line errors for what
  the method does not take or what does not fit."""
  parameters = inspect.signature(run.method.sample).parameters
  takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
  # After (state, key, num): what a user may pass (`progress` is the engine's).
  named = [n for n, p in list(parameters.items())[3:]
           if p.kind is not inspect.Parameter.VAR_KEYWORD and n != "progress"]
  for name in conditioning:
    if name not in named and not takes_any:
      raise ConfigError(f"method {run.config.method!r} takes no {name}= when "
                        f"sampling; it takes: {choices(named)}")
  labels = conditioning.get("labels")
  if labels is not None:
    values = np.atleast_1d(np.asarray(labels))
    classes = run.spec.num_classes
    if not np.issubdtype(values.dtype, np.integer):
      raise ConfigError(f"labels must be integers, got {values.tolist()}")
    if values.shape[0] not in (1, num):
      raise ConfigError(f"labels must be one label or {num} (one per sample), "
                        f"got {values.shape[0]}")
    if classes and (values.min() < 0 or values.max() >= classes):
      raise ConfigError(f"labels must lie in 0 to {classes - 1} "
                        f"({run.spec.name!r} has {classes} classes), got "
                        f"{values.min() if values.min() < 0 else values.max()}")
    conditioning = {**conditioning,
                    "labels": np.broadcast_to(values, (num,)).astype(np.int32)}
  return conditioning


def eval_file_name(seed: int | None = None, step: int | None = None,
                   num: int | None = None,
                   overrides: Mapping[str, Any] | Iterable[str] = (),
                   metrics: Iterable[str] | None = None) -> str:
  """`eval/<what was asked>.json`: e.g. eval/seed3.json, eval/step200-num100.json,
  eval/fid+kid-num10000.json."""
  parts = []
  if metrics:
    parts.append("+".join(metrics))
  if seed is not None:
    parts.append(f"seed{seed}")
  if step is not None:
    parts.append("best" if step == "best" else f"step{step}")
  if num is not None:
    parts.append(f"num{num}")
  items = ([f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping)
           else list(overrides))
  if items:
    text = "+".join(items)
    safe = "".join(c if c.isalnum() or c in "._=+-" else "_" for c in text)
    if len(safe) > 80:
      safe = "set-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    parts.append(safe)
  return f"eval/{'-'.join(parts) or 'default'}.json"


# Samples drawn for sample metrics when `num` is not given (the issue's
# `--num 10000`; papers use 10,000 or 50,000).
DEFAULT_METRIC_SAMPLES = 10_000


def _split_metric_overrides(items: dict[str, Any] | list[str]
                            ) -> tuple[dict[str, Any], dict[str, Any] | list[str]]:
  """({"metrics.KEY": value}, the other overrides): metrics.* are no config keys."""
  if isinstance(items, dict):
    metric = {k: v for k, v in items.items() if k.startswith("metrics.")}
    return metric, {k: v for k, v in items.items() if k not in metric}
  metric, rest = {}, []
  for item in items:
    key, sep, raw = item.partition("=")
    if sep and key.strip().startswith("metrics."):
      metric[key.strip()] = raw.strip()
    else:
      rest.append(item)
  return metric, rest


def evaluate(run: LoadedRun | str | pathlib.Path, seed: int | None = None,
             split: str = "test", batch_size: int | None = None,
             save: bool = True,
             overrides: Mapping[str, Any] | Iterable[str] = (), *,
             step: int | None = None, num: int | None = None,
             metrics: str | Iterable[str] | None = None,
             out: str | pathlib.Path | None = None,
             progress: bool = True) -> dict[str, Any]:
  """Evaluates a trained run on a split; deterministic for a run and seed.

  With `seed=None` each replica uses the run's own evaluation key, so the
  numbers repeat the run's final evaluation record. `step` picks a checkpoint
  (default: the newest restorable); `num` evaluates the first `num` examples
  of the split (each keeps its own key, so they are the numbers those
  examples have in the whole-split run). `overrides` change evaluation-time
  settings (e.g. {"model.eval_importance_samples": 5000}); training settings
  and settings that change the shapes of the parameters are refused. When
  `save`, the result (with its protocol and the overrides) is appended to
  metrics.jsonl and written to `out`, by default
  `workdir/eval/<what was asked>.json` (`eval_file_name`) — never over the
  run's own eval.json. `progress` shows bars with ETAs on stderr.

  `metrics` (e.g. "fid,kid,is,pr" or ["fid", "modes"]; the names of
  `jaxgen.metrics.sample_metrics.METRICS`) evaluates those sample metrics
  instead of the method's own evaluation: `num` samples (default 10,000) drawn
  in chunks from keys of `seed`, compared through the feature network of the
  run's data with its reference split. `metrics.*` overrides set them
  (`metrics.inception_weights=PATH`, `metrics.network`, `metrics.chunk_size`,
  `metrics.reference_split`, ...: `sample_metrics.MetricOptions`).
  """
  items = dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
  metric_items, config_items = _split_metric_overrides(items)
  if metric_items and metrics is None:
    raise ConfigError(f"{', '.join(metric_items)} set, but no metric asked for; "
                      "name them with --metrics (metrics=)")
  run = _with_settings(_as_run(run, step), config_items)
  if num is not None and num < 1:
    raise ConfigError(f"num must be at least 1, got {num}")
  names = None if metrics is None else sample_metrics.parse_metrics(metrics)
  path = pathlib.Path(out) if out is not None else (
      run.workdir / eval_file_name(seed, step, num, items, metrics=names))
  if save:
    check_writable(path, "out")
  if names is None:
    evaluators = evaluation.evaluators_for(run.method, run.spec,
                                           run.config.train.coverage_samples)
  else:
    options = sample_metrics.MetricOptions.from_overrides(metric_items)
    config_dict = config_lib.to_dict(run.config)
    evaluators = evaluation.metric_evaluators(
        run.method, run.spec, config_dict["data"], names,
        num or DEFAULT_METRIC_SAMPLES, options,
        seed=seed if seed is not None else run.seeds[0],
        sampler_settings=config_dict.get("model", {}), progress=progress)
    num = None   # it counted samples, not test examples
  if not evaluators:
    raise ConfigError(f"method {run.config.method!r} has no evaluation on "
                      f"{run.spec.name!r}")
  strategy = parallel.Strategy("jit", 1, seed_axis=run.multi)
  state = jax.device_put(run.state, strategy.replicated_sharding())
  runner = evaluation.Evaluation(
      run.method, run.spec, evaluators, strategy=strategy, seeds=run.seeds,
      multi=run.multi, seed=seed, num_examples=num, progress=progress,
      batch_size=(batch_size or run.config.train.eval_batch_size
                  or run.config.data.batch_size))
  dataset = (data_lib.from_config(run.config.data) if runner.per_example else None)
  config_dict = config_lib.to_dict(run.config)
  means, protocol = runner.run(state, dataset, run.step, split, config_dict)
  if names is not None:
    # No test example was evaluated: the per-example keys do not apply.
    for key in ("split", "num_examples", "eval_key"):
      protocol.pop(key, None)
    protocol["metrics_asked"] = list(names)
  if items:
    protocol["config_overrides"] = items
  writer = logs.MetricWriter(run.workdir if save else None, tensorboard="off")
  try:
    metrics = evaluation.log_eval(writer, means, run.seeds, run.multi, run.step,
                                  split, protocol)
  finally:
    writer.close()
  if save:
    path.parent.mkdir(parents=True, exist_ok=True)
    evaluation.write_eval_file(path, run.step, run.seeds, metrics, protocol)
  return {"step": run.step, "metrics": metrics, "protocol": protocol,
          "path": path if save else None}


def fid(path_a: str | pathlib.Path, path_b: str | pathlib.Path, *,
        network: str = "inception", metrics: str | Iterable[str] = "fid",
        overrides: Mapping[str, Any] | Iterable[str] = (), seed: int = 0
        ) -> dict[str, Any]:
  """FID (and other metrics) between two folders of images or .npz files, as
  pytorch-fid's command does; A is the real set.

  `network`: "inception" (pytorch-fid's; the weights from
  `metrics.inception_weights` in `overrides` or $JAXGEN_INCEPTION_WEIGHTS),
  "lenet_mnist" (28x28 grey) or "lenet_digits" (8x8 grey). Returns
  {"metrics": {name: value}, "protocol": {...}}.
  """
  items = dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
  metric_items, rest = _split_metric_overrides(items)
  if rest:
    raise ConfigError(f"only metrics.* settings apply here, got {choices(list(rest))}")
  if network not in sample_metrics.NETWORKS[1:-1]:
    raise ConfigError(f"network {network!r} is not valid; choose "
                      f"{choices(sample_metrics.NETWORKS[1:-1])}")
  options = sample_metrics.MetricOptions.from_overrides(metric_items)
  names = sample_metrics.parse_metrics(metrics)
  if "modes" in names:
    raise ConfigError("metric 'modes' needs a model's data with known modes, not images")
  images_a, range_a = sample_metrics.read_images(path_a)
  images_b, range_b = sample_metrics.read_images(path_b)
  feature_network = sample_metrics.load_network(network, options)
  values, protocol = sample_metrics.compare_images(
      images_a, images_b, names, feature_network, options,
      value_ranges=(range_a, range_b), seed=seed)
  protocol.update({"path_a": str(path_a), "path_b": str(path_b)})
  return {"metrics": values, "protocol": protocol}


def check_writable(path: str | pathlib.Path, name: str = "out") -> None:
  """A one-line error naming argument `name` when `path` cannot be written."""
  path = pathlib.Path(path)
  shown = f"{name} {str(path)!r}"
  for parent in [path.parent, *path.parent.parents]:
    if parent.exists():
      if not parent.is_dir():
        raise ConfigError(f"cannot write {shown}: {str(parent)!r} is a file, "
                          "not a directory")
      if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {shown}: {str(parent)!r} is not writable")
      break
  if path.is_dir():
    raise ConfigError(f"cannot write {shown}: it is a directory")


def list_methods() -> dict[str, str]:
  """Method names and one-line descriptions."""
  return {name: f"[{e.family}] {e.description}"
          for name, e in registry.methods().items()}


def list_datasets() -> dict[str, str]:
  """Dataset names (or patterns) and one-line descriptions."""
  return data_lib.list_datasets()
