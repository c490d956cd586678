"""Data parallelism: a device mesh for `jax.jit`, or the `pmap` strategy.

Families stay device-agnostic. They write their train step for the global
batch and follow two rules, which cost nothing under the default strategy and
keep the `pmap` strategy exact:

1. Average gradients (and any batch statistic that feeds an update) with
   `mean_over_devices` — an identity under `jit`, a `lax.pmean` under `pmap`.
2. Draw per-example randomness with `jaxgen.core.rng` (e.g. `rng.normal`), so
   each device draws its own slice of the global batch's noise.

Under `jit` the global batch is one array sharded along the mesh axis "data";
XLA inserts the reductions, so the same program gives the same numbers on 1 or
N devices (up to float reduction order). Under `pmap` the step is traced once per
device with the axis name `AXIS`; the helpers above read it from a context
variable that the engine sets while tracing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxgen.core.collectives import pmap_axis
from jaxgen.errors import ConfigError, choices

AXIS = "data"
STRATEGIES = ("jit", "pmap")

def maybe_initialize_distributed() -> bool:
  """Calls `jax.distributed.initialize()` when a cluster environment is set.

  Recognised: an explicit JAX coordinator (JAX_COORDINATOR_ADDRESS), SLURM with
  more than one task, and Open MPI with more than one rank. Must run before any
  other JAX call. Returns whether it initialised.
  """
  env = os.environ
  multi = (
      "JAX_COORDINATOR_ADDRESS" in env
      or int(env.get("SLURM_NTASKS", "1")) > 1
      or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1)
  if not multi or jax.distributed.is_initialized():
    return False
  jax.distributed.initialize()
  return True


class Strategy:
  """How a step runs on devices: placement of state and batches, compilation.

  `jit`: one program over a 1-D mesh of `num_devices` devices; batches are
  sharded along their batch axis, the state is replicated. `pmap`: the state
  carries a leading device axis and the batch is split into per-device shards.
  `seed_axis` tells whether states and batches carry a leading multi-seed axis
  (the batch axis is then axis 1).
  """

  def __init__(self, name: str = "jit", num_devices: int = 0,
               seed_axis: bool = False):
    if name not in STRATEGIES:
      raise ConfigError(
          f"unknown train.strategy {name!r}; valid: {choices(STRATEGIES)}")
    devices = jax.devices() if name == "jit" else jax.local_devices()
    if num_devices < 0 or num_devices > len(devices):
      raise ConfigError(
          f"train.num_devices={num_devices} but {len(devices)} devices are "
          f"available; valid: 0 (all) to {len(devices)}")
    if num_devices and name == "jit" and jax.process_count() > 1:
      raise ConfigError(
          "train.num_devices must be 0 (all devices) in a multi-host run")
    self.name = name
    self.devices: Sequence[jax.Device] = devices[:num_devices or len(devices)]
    self.seed_axis = seed_axis
    self.mesh = Mesh(np.asarray(self.devices), (AXIS,))

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def num_processes(self) -> int:
    return jax.process_count() if self.name == "jit" else 1

  # ---------------------------------------------------------------- placement
  def _batch_spec(self, seed_axis: bool | None = None) -> P:
    seed_axis = self.seed_axis if seed_axis is None else seed_axis
    return P(None, AXIS) if seed_axis else P(AXIS)

  def check_batch_size(self, batch_size: int, name: str = "data.batch_size") -> None:
    """Raises when the global batch does not split evenly over devices."""
    total = self.num_devices * (jax.process_count() if self.name == "pmap" else 1)
    if batch_size % total:
      raise ConfigError(
          f"{name}={batch_size} does not split over {total} devices; "
          f"use a multiple of {total}")

  def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Places this process's slice of the global batch on the devices."""
    if self.name == "jit":
      sharding = NamedSharding(self.mesh, self._batch_spec())
      if jax.process_count() == 1:  # one batched transfer: cheaper per step
        return jax.device_put(batch, sharding)
      return jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
    n = self.num_devices

    def split(x: np.ndarray) -> jax.Array:
      if self.seed_axis:  # [K, B, ...] -> [n, K, B/n, ...]
        k, b = x.shape[:2]
        x = x.reshape((k, n, b // n) + x.shape[2:]).swapaxes(0, 1)
      else:
        x = x.reshape((n, x.shape[0] // n) + x.shape[1:])
      return _put_leading(x, self.devices)

    return jax.tree.map(split, batch)

  def put_state(self, state: Any) -> Any:
    """Places a host or single-device state for this strategy."""
    if self.name == "jit":
      return jax.device_put(state, NamedSharding(self.mesh, P()))
    n = self.num_devices
    return jax.tree.map(
        lambda x: _put_leading(np.broadcast_to(np.asarray(x), (n,) + np.shape(x)),
                               self.devices), state)

  def unreplicate(self, tree: Any) -> Any:
    """The state as one copy (drops pmap's device axis)."""
    if self.name == "jit":
      return tree
    return jax.tree.map(lambda x: x[0], tree)

  def replicated_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  def put_replicated(self, tree: Any) -> Any:
    """Host arrays that every process holds whole, as replicated arrays (jit)."""
    sharding = self.replicated_sharding()
    if jax.process_count() == 1:
      return jax.device_put(tree, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                        tree)

  # -------------------------------------------------------------- compilation
  def init(self, init_fn, keys: jax.Array, host_batch: dict[str, np.ndarray],
           replicated_batch: bool = False):
    """Runs `init_fn(keys, batch) -> state` and places the state replicated.

    `replicated_batch`: the batch is the same whole array on every device (a
    training split handed to `init`, of any length), not sharded by rows.
    """
    if self.name == "jit":
      batch = (self.put_replicated(host_batch) if replicated_batch
               else self.put_batch(host_batch))
      return jax.jit(init_fn, out_shardings=self.replicated_sharding())(keys, batch)
    # Under pmap the state is created once and then copied to every device, so
    # initialisation is identical to the single-device one.
    return self.put_state(jax.jit(init_fn)(keys, host_batch))

  def compile_step(self, step_fn, donate: bool = True):
    """Compiles `step_fn(state, batch) -> (state, metrics)` for this strategy."""
    if self.name == "jit":
      replicated = self.replicated_sharding()
      return jax.jit(
          step_fn,
          in_shardings=(replicated, NamedSharding(self.mesh, self._batch_spec())),
          out_shardings=(replicated, replicated),
          donate_argnums=(0,) if donate else ())

    def traced(state, batch):
      with pmap_axis(AXIS):
        new_state, metrics = step_fn(state, batch)
        # Per-device metrics are means over equal shards: their mean is the
        # global-batch mean.
        return new_state, jax.lax.pmean(metrics, AXIS)

    pmapped = jax.pmap(traced, axis_name=AXIS, devices=self.devices,
                       donate_argnums=(0,) if donate else ())

    def run(state, batch):
      new_state, metrics = pmapped(state, batch)
      return new_state, jax.tree.map(lambda m: m[0], metrics)

    return run

  def compile_eval(self, eval_fn):
    """Jits `eval_fn(state, batch, key) -> per-example metrics`.

    Evaluation batches carry no seed axis (every replica sees the same test
    data). Under pmap, evaluation runs as one jitted program on the first
    device with the unreplicated state.
    """
    if self.name == "jit":
      replicated = self.replicated_sharding()
      return jax.jit(
          eval_fn,
          in_shardings=(replicated, NamedSharding(self.mesh, P(AXIS)), replicated),
          out_shardings=replicated)
    return jax.jit(eval_fn)

  def put_eval_batch(self, batch: dict[str, np.ndarray]) -> Any:
    """Places this process's slice of an evaluation batch (no seed axis)."""
    if self.name == "jit":
      sharding = NamedSharding(self.mesh, P(AXIS))
      return jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
    return jax.tree.map(jnp.asarray, batch)


def _put_leading(x: np.ndarray, devices: Sequence[jax.Device]) -> jax.Array:
  """Puts x[i] on devices[i] as one array with a leading device axis."""
  mesh = Mesh(np.asarray(devices), ("devices",))
  sharding = NamedSharding(mesh, P("devices"))
  return jax.device_put(np.asarray(x), sharding)
