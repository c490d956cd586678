"""Trained runs read back from their workdirs, and the methods built for them.

`load` restores a run (the API's `jaxgen.load`); `build_method` makes a
method for a config, loading first the trained runs the method requires
(`registry.MethodEntry.requires`, e.g. latent diffusion's autoencoder), so
that families never read workdirs themselves.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core.state import INIT_DATA, Method, TrainState
from jaxgen.engine import checkpoint as checkpoint_lib
from jaxgen.engine import workdir as workdir_lib
from jaxgen.errors import ConfigError, WorkdirError, choices


def init_keys(seeds: list[int], multi: bool) -> jax.Array:
  """The base key of each seed's state (stacked for multi-seed runs)."""
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
  return keys if multi else keys[0]


def init_function(method: Method, multi: bool) -> Callable[[jax.Array, Any], TrainState]:
  """`method.init`, over the seed axis when `multi`.

  With `init_data="split"` every replica gets the same (unstacked) split.
  """
  if method.init_data not in INIT_DATA:
    raise ValueError(f"method {method.name!r}: init_data={method.init_data!r} is "
                     f"not one of {choices(INIT_DATA)}")
  if not multi:
    return method.init
  return jax.vmap(method.init, in_axes=(0, None) if method.init_data == "split" else 0)


def build_method(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """`make(config, spec)` of the config's method, given the trained runs it requires."""
  entry = registry.get(config.method)
  required = entry.requires(config) if entry.requires is not None else {}
  return entry.make(config, spec, **{name: load(workdir) for name, workdir in required.items()})


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


def load(workdir: str | pathlib.Path, step: int | str | None = None) -> LoadedRun:
  """Restores a run's method and state: checkpoint `step`, or the newest restorable.

  step="best": the checkpoint kept by `train.keep_best` (best/best.json says
  which step and value).

  A damaged newest checkpoint is skipped with a one-line warning naming it (the
  files stay where they are); a `step` that does not exist or cannot be read,
  or a run with nothing restorable, is a one-line WorkdirError.
  """
  path = pathlib.Path(workdir)
  config_dict, run = workdir_lib.read_run(path)
  config = config_lib.from_dict(config_dict)
  # File data given as a relative path is found from any directory (#12.3).
  config.data.name = data_lib.relocate(config.data.name, run.get("data_source"), path)
  spec = (data_lib.DataSpec.from_json(run["data_spec"]) if "data_spec" in run
          else data_lib.from_config(config.data).spec)
  method = build_method(config, spec)
  seeds = config_lib.seeds_of(config)
  multi = bool(config.train.seeds)
  folder = workdir_lib.CHECKPOINT_DIR
  if step == "best":
    best = workdir_lib.read_best(path)
    if best is None:
      raise WorkdirError(f"workdir {str(path)!r} has no best checkpoint (train.keep_best "
                         "names the metric that keeps one)")
    folder, step = workdir_lib.BEST_DIR, None
  elif step is not None and not isinstance(step, int):
    raise ConfigError(f"step must be a step number or 'best', got {step!r}")
  checkpointer = checkpoint_lib.Checkpointer(path / folder)
  try:
    if not checkpointer.all_steps():
      raise WorkdirError(f"workdir {str(path)!r} has no checkpoint yet")
    abstract = abstract_state(method, config, spec, seeds, multi)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    # Readers never move files (quarantine=False): a trainer may own them.
    step, state, _, _ = checkpointer.restore_newest(
        checkpoint_lib.abstract_like(abstract, device), step, quarantine=False)
  finally:
    checkpointer.close()
  return LoadedRun(method, state, config, spec, path, step, seeds)


def abstract_state(method: Method, config: ml_collections.ConfigDict, spec: Any,
                    seeds: list[int], multi: bool) -> Any:
  """The shapes and dtypes of the state `method.init` builds (nothing computed)."""
  init = init_function(method, multi)
  example = spec.example_batch(config.data.batch_size)
  if multi and method.init_data != "split":   # a split is shared by the replicas
    example = {k: np.stack([v] * len(seeds)) for k, v in example.items()}
  return jax.eval_shape(init, init_keys(seeds, multi), example)
