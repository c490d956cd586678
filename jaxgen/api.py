"""The Python API that experiment scripts call; the CLI is a thin layer over it.

  import jaxgen
  result = jaxgen.train("vae", steps=2000, workdir="runs/vae")   # or fit(config)
  result.metrics["eval"]["elbo"]
  run = jaxgen.load("runs/vae")
  images = jaxgen.sample("runs/vae", num=16, seed=1)
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.engine import checkpoint as checkpoint_lib
from jaxgen.engine import evaluation, logs, loop, parallel
from jaxgen.engine import workdir as workdir_lib
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError, WorkdirError

get_config = config_lib.get_config
fit = loop.fit
RunResult = loop.RunResult


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
  """
  if resume and workdir is not None and has_run(workdir):
    cfg = resume_config(workdir, method=method, data=data, config=config,
                        overrides=overrides, steps=steps, seed=seed, seeds=seeds)
  else:
    if method is None:
      raise ConfigError("train() needs a method to start a run"
                        + (f" (workdir {str(workdir)!r} holds no run to resume)"
                           if resume and workdir is not None else ""))
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


@dataclasses.dataclass
class LoadedRun:
  """A trained run read back from its workdir."""

  method: Method
  state: TrainState
  config: ml_collections.ConfigDict
  spec: Any
  workdir: pathlib.Path
  step: int
  seeds: list[int]

  @property
  def multi(self) -> bool:
    return bool(self.config.train.seeds)

  def replica(self, index: int = 0) -> TrainState:
    """The state of one seed's replica (the state itself for single-seed runs)."""
    if not self.multi:
      if index:
        raise ConfigError(f"replica {index} requested, but the run has one seed")
      return self.state
    if not 0 <= index < len(self.seeds):
      raise ConfigError(f"replica {index} does not exist; valid: 0 to "
                        f"{len(self.seeds) - 1} (seeds {self.seeds})")
    return jax.tree.map(lambda x: x[index], self.state)


def load(workdir: str | pathlib.Path, step: int | None = None) -> LoadedRun:
  """Restores a run's method and state (the latest checkpoint, or `step`)."""
  path = pathlib.Path(workdir)
  config_dict, run = workdir_lib.read_run(path)
  config = config_lib.from_dict(config_dict)
  entry = registry.get(config.method)
  spec = (data_lib.DataSpec.from_json(run["data_spec"]) if "data_spec" in run
          else data_lib.from_config(config.data).spec)
  method = entry.make(config, spec)
  seeds = config_lib.seeds_of(config)
  multi = bool(config.train.seeds)
  checkpointer = checkpoint_lib.Checkpointer(path / workdir_lib.CHECKPOINT_DIR)
  try:
    steps = checkpointer.all_steps()
    if not steps:
      raise WorkdirError(f"workdir {str(path)!r} has no checkpoint yet")
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise WorkdirError(f"workdir {str(path)!r} has no checkpoint at step {step}; "
                         f"valid: {', '.join(map(str, steps))}")
    init = jax.vmap(method.init) if multi else method.init
    example = spec.example_batch(config.data.batch_size)
    if multi:
      example = {k: np.stack([v] * len(seeds)) for k, v in example.items()}
    abstract = jax.eval_shape(init, loop.init_keys(seeds, multi), example)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    state, _, _ = checkpointer.restore(step, checkpoint_lib.abstract_like(abstract, device))
  finally:
    checkpointer.close()
  return LoadedRun(method, state, config, spec, path, step, seeds)


def _as_run(run: LoadedRun | str | pathlib.Path) -> LoadedRun:
  return run if isinstance(run, LoadedRun) else load(run)


def sample(run: LoadedRun | str | pathlib.Path, num: int = 64, seed: int = 0,
           replica: int = 0, **conditioning: Any) -> np.ndarray:
  """Draws `num` samples [num, *data_shape] from a trained run."""
  run = _as_run(run)
  if num < 1:
    raise ConfigError(f"num must be at least 1, got {num}")
  state = run.replica(replica)
  fn = jax.jit(lambda s, k: run.method.sample(s, k, num, **conditioning))
  return np.asarray(fn(state, jax.random.PRNGKey(seed)))


def evaluate(run: LoadedRun | str | pathlib.Path, seed: int | None = None,
             split: str = "test", batch_size: int | None = None,
             save: bool = True,
             overrides: Mapping[str, Any] | Iterable[str] = ()) -> dict[str, Any]:
  """Evaluates a trained run on a whole split; deterministic for a run and seed.

  With `seed=None` each replica uses the run's own evaluation key, so the
  numbers repeat the run's final evaluation record. `overrides` change
  evaluation-time settings of the saved config (e.g.
  {"model.eval_importance_samples": 5000}); settings that change the shapes of
  the parameters cannot be changed here. The result (with its protocol, and
  the overrides) is appended to metrics.jsonl and written to eval.json when
  `save`.
  """
  run = _as_run(run)
  if overrides:
    config = config_lib.from_dict(config_lib.to_dict(run.config))
    _apply(config, overrides)
    method = registry.get(config.method).make(config, run.spec)
    run = dataclasses.replace(run, method=method, config=config)
  evaluators = evaluation.evaluators_for(run.method, run.spec,
                                         run.config.train.coverage_samples)
  if not evaluators:
    raise ConfigError(f"method {run.config.method!r} has no evaluation on "
                      f"{run.spec.name!r}")
  strategy = parallel.Strategy("jit", 1, seed_axis=run.multi)
  state = jax.device_put(run.state, strategy.replicated_sharding())
  runner = evaluation.Evaluation(
      run.method, run.spec, evaluators, strategy=strategy, seeds=run.seeds,
      multi=run.multi, seed=seed,
      batch_size=(batch_size or run.config.train.eval_batch_size
                  or run.config.data.batch_size))
  dataset = (data_lib.from_config(run.config.data) if runner.per_example else None)
  config_dict = config_lib.to_dict(run.config)
  means, protocol = runner.run(state, dataset, run.step, split, config_dict)
  if overrides:
    protocol["config_overrides"] = (dict(overrides) if isinstance(overrides, Mapping)
                                    else list(overrides))
  writer = logs.MetricWriter(run.workdir if save else None, tensorboard="off")
  try:
    metrics = evaluation.log_eval(writer, means, run.seeds, run.multi, run.step,
                                  split, protocol)
  finally:
    writer.close()
  if save:
    evaluation.write_eval_file(run.workdir / workdir_lib.EVAL_FILE, run.step,
                               run.seeds, metrics, protocol)
  return {"step": run.step, "metrics": metrics, "protocol": protocol}


def list_methods() -> dict[str, str]:
  """Method names and one-line descriptions."""
  return {name: f"[{e.family}] {e.description}"
          for name, e in registry.methods().items()}


def list_datasets() -> dict[str, str]:
  """Dataset names (or patterns) and one-line descriptions."""
  return data_lib.list_datasets()
