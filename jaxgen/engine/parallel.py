"""Device strategies: a device mesh for `jax.jit` (replicated or fsdp), or `pmap`.

Families stay device-agnostic. They write their train step for the global
batch and follow two rules, which cost nothing under the default strategy and
keep the `pmap` strategy exact:

1. Average gradients (and any batch statistic that feeds an update) with
   `mean_over_devices` — an identity under `jit`, a `lax.pmean` under `pmap`.
2. Draw per-example randomness with `jaxgen.core.rng` (e.g. `rng.normal`), so
   each device draws its own slice of the global batch's noise.

Under `jit` the global batch is one array sharded along the mesh axis "data";
XLA inserts the reductions, so the same program gives the same numbers on 1 or
N devices (up to float reduction order). `fsdp` is the same program with the
parameters, optimizer state and model state sharded over that axis too (ZeRO-3
style: each array's largest axis that the device count divides, small or
indivisible arrays replicated); XLA gathers each array where the step uses it
and reduce-scatters its gradient. Under `pmap` the step is traced once per
device with the axis name `AXIS`; the helpers above read it from a context
variable that the engine sets while tracing.

Several processes (`jax.distributed`, see `maybe_initialize_distributed` and
docs/scaling.md): the mesh spans every process's devices, each process feeds
the rows of the global batch its own devices hold (`data_shard`), and the few
host decisions every process must take alike (the workdir is usable, a stop
signal arrived) are agreed through small collectives (`broadcast_from_main`,
`max_over_processes`).
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
STRATEGIES = ("jit", "fsdp", "pmap")
# fsdp keeps arrays with fewer elements than this replicated: biases, norms and
# scalars cost more to gather than they save.
FSDP_MIN_SIZE = 1024

# Set by `jaxgen launch` (and by you, on several machines); read here.
COORDINATOR_VARIABLE = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_VARIABLE = "JAX_NUM_PROCESSES"
PROCESS_ID_VARIABLE = "JAX_PROCESS_ID"


def _env_int(name: str, env: dict[str, str]) -> int:
  value = env.get(name, "")
  try:
    return int(value)
  except ValueError:
    raise ConfigError(f"{name}={value!r} must be an integer") from None


def distributed_arguments(env: dict[str, str] | None = None) -> dict[str, Any] | None:
  """The `jax.distributed.initialize` arguments the environment asks for, or None.

  Recognised, in order: JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES and
  JAX_PROCESS_ID (what `jaxgen launch` sets; one set per process on several
  machines); a SLURM job step (`srun`) or an Open MPI job of more than one task,
  whose ids JAX reads itself (`{}`: no arguments). None: a one-process run.
  """
  env = dict(os.environ if env is None else env)
  if COORDINATOR_VARIABLE in env and (NUM_PROCESSES_VARIABLE in env
                                      or PROCESS_ID_VARIABLE in env):
    missing = [v for v in (NUM_PROCESSES_VARIABLE, PROCESS_ID_VARIABLE) if v not in env]
    if missing:
      raise ConfigError(f"{COORDINATOR_VARIABLE} is set but {missing[0]} is not; set "
                        f"{COORDINATOR_VARIABLE}, {NUM_PROCESSES_VARIABLE} and "
                        f"{PROCESS_ID_VARIABLE} for every process (or use `jaxgen launch`)")
    count = _env_int(NUM_PROCESSES_VARIABLE, env)
    index = _env_int(PROCESS_ID_VARIABLE, env)
    if count < 1 or not 0 <= index < count:
      raise ConfigError(f"{PROCESS_ID_VARIABLE}={index} must be in [0, "
                        f"{NUM_PROCESSES_VARIABLE}={count})")
    return {"coordinator_address": env[COORDINATOR_VARIABLE],
            "num_processes": count, "process_id": index}
  # srun sets SLURM_STEP_NUM_TASKS; SLURM_NTASKS alone is also set in a batch
  # script outside srun, where only one process runs.
  if (int(env.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1
      or int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1):
    return {}
  return None


def maybe_initialize_distributed() -> bool:
  """Calls `jax.distributed.initialize` when the environment describes several processes.

  Must run before any other JAX call (the CLI calls it first; `fit` calls it
  too). CPU collectives go over gloo unless JAX_CPU_COLLECTIVES_IMPLEMENTATION
  says otherwise. Returns whether it initialised.
  """
  arguments = distributed_arguments()
  if arguments is None or jax.distributed.is_initialized():
    return False
  if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**arguments)
  return True


def is_main_process() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def broadcast_from_main(value: int) -> int:
  """Process 0's `value` on every process (a collective: every process calls it)."""
  if jax.process_count() == 1:
    return int(value)
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def max_over_processes(value: int) -> int:
  """The largest `value` over processes (a collective: every process calls it)."""
  if jax.process_count() == 1:
    return int(value)
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def fsdp_spec(shape: Sequence[int], num_devices: int, skip_leading: bool = False) -> P:
  """The fsdp partition of an array: its largest axis divisible by `num_devices`.

  Arrays smaller than FSDP_MIN_SIZE elements, or with no such axis, are
  replicated (P()). `skip_leading` keeps a multi-seed axis whole.
  """
  shape = tuple(shape)
  if num_devices <= 1 or int(np.prod(shape, dtype=np.int64)) < FSDP_MIN_SIZE:
    return P()
  first = 1 if skip_leading else 0
  candidates = [a for a in range(first, len(shape)) if shape[a] % num_devices == 0]
  if not candidates:
    return P()
  axis = max(candidates, key=lambda a: (shape[a], -a))  # largest; first on ties
  return P(*([None] * axis + [AXIS]))


class Strategy:
  """How a step runs on devices: placement of state and batches, compilation.

  `jit`: one program over a 1-D mesh of `num_devices` devices (of every
  process); batches are sharded along their batch axis, the state is
  replicated. `fsdp`: the same, with the state sharded by `fsdp_spec`. `pmap`:
  the state carries a leading device axis and the batch is split into
  per-device shards. `seed_axis` tells whether states and batches carry a
  leading multi-seed axis (the batch axis is then axis 1).
  """

  def __init__(self, name: str = "jit", num_devices: int = 0,
               seed_axis: bool = False):
    if name not in STRATEGIES:
      raise ConfigError(
          f"unknown train.strategy {name!r}; valid: {choices(STRATEGIES)}")
    devices = jax.local_devices() if name == "pmap" else jax.devices()
    if num_devices < 0 or num_devices > len(devices):
      raise ConfigError(
          f"train.num_devices={num_devices} but {len(devices)} devices are "
          f"available; valid: 0 (all) to {len(devices)}")
    if num_devices and name != "pmap" and jax.process_count() > 1:
      raise ConfigError(
          "train.num_devices must be 0 (all devices) in a multi-host run")
    self.name = name
    self.devices: Sequence[jax.Device] = devices[:num_devices or len(devices)]
    self.seed_axis = seed_axis
    self.mesh = Mesh(np.asarray(self.devices), (AXIS,))
    self._state_shardings: Any = None

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def on_mesh(self) -> bool:
    """Whether arrays are global arrays on the mesh (jit, fsdp), not pmap's."""
    return self.name != "pmap"

  @property
  def num_processes(self) -> int:
    return jax.process_count() if self.on_mesh else 1

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

  def data_shard(self) -> tuple[int, int]:
    """(index, count): this process feeds rows [index*B/count, (index+1)*B/count)
    of every global batch of B rows, the rows its devices hold on the mesh."""
    if not self.on_mesh or jax.process_count() == 1:
      return jax.process_index(), jax.process_count()
    count = jax.process_count()
    sharding = NamedSharding(self.mesh, P(AXIS))
    rows = sorted(index[0].start for index in
                  sharding.addressable_devices_indices_map((self.num_devices,)).values())
    per_process = self.num_devices // count
    if (self.num_devices % count or len(rows) != per_process
        or rows != list(range(rows[0], rows[0] + per_process))):
      raise ConfigError(f"this process holds devices {rows} of the {self.num_devices}-"
                        "device mesh; every process needs the same number of devices, "
                        "in one block")
    return rows[0] // per_process, count

  def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Places this process's slice of the global batch on the devices."""
    if self.on_mesh:
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

  def state_sharding(self, abstract_state: Any) -> Any:
    """The sharding of each array of a state shaped like `abstract_state` (jit, fsdp).

    Also remembered as the state's sharding for `compile_step` and `compile_eval`.
    """
    if self.name == "fsdp":
      shardings = jax.tree.map(
          lambda x: NamedSharding(self.mesh, fsdp_spec(
              np.shape(x), self.num_devices, skip_leading=self.seed_axis)),
          abstract_state)
    else:
      shardings = jax.tree.map(lambda _: self.replicated_sharding(), abstract_state)
    self._state_shardings = shardings
    return shardings

  def _state_in_sharding(self) -> Any:
    if self._state_shardings is not None:
      return self._state_shardings
    if self.name == "fsdp":
      raise RuntimeError("fsdp: place the state (init or state_sharding) before compiling")
    return self.replicated_sharding()

  def put_state(self, state: Any) -> Any:
    """Places a host or single-device state for this strategy."""
    if self.on_mesh:
      return jax.device_put(state, self.state_sharding(state))
    n = self.num_devices
    return jax.tree.map(
        lambda x: _put_leading(np.broadcast_to(np.asarray(x), (n,) + np.shape(x)),
                               self.devices), state)

  def unreplicate(self, tree: Any) -> Any:
    """The state as one copy (drops pmap's device axis)."""
    if self.on_mesh:
      return tree
    # The first local device's copy, as it is: indexing the device axis (x[0])
    # would run a program across all the devices for every leaf shape.
    return jax.tree.map(_first_copy, tree)

  def replicated_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  def put_replicated(self, tree: Any) -> Any:
    """Host arrays that every process holds whole, as replicated arrays (jit)."""
    sharding = self.replicated_sharding()
    if jax.process_count() == 1:
      return jax.device_put(tree, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                        tree)

  def restore_sharding(self, abstract_state: Any) -> Any:
    """Where a checkpoint is restored to: the state's sharding (jit, fsdp), or
    the first device (pmap, which `put_state` then copies everywhere)."""
    if self.on_mesh:
      return self.state_sharding(abstract_state)
    device = jax.sharding.SingleDeviceSharding(self.devices[0])
    return jax.tree.map(lambda _: device, abstract_state)

  # -------------------------------------------------------------- compilation
  def init(self, init_fn, keys: jax.Array, host_batch: dict[str, np.ndarray],
           replicated_batch: bool = False):
    """Runs `init_fn(keys, batch) -> state` and places the state (replicated or sharded).

    `replicated_batch`: the batch is the same whole array on every device (a
    training split handed to `init`, of any length), not sharded by rows.
    """
    if self.on_mesh:
      batch = (self.put_replicated(host_batch) if replicated_batch
               else self.put_batch(host_batch))
      shardings = self.state_sharding(jax.eval_shape(init_fn, keys, batch))
      return jax.jit(init_fn, out_shardings=shardings)(keys, batch)
    # Under pmap the state is created once and then copied to every device, so
    # initialisation is identical to the single-device one.
    return self.put_state(jax.jit(init_fn)(keys, host_batch))

  def compile_step(self, step_fn, donate: bool = True):
    """Compiles `step_fn(state, batch) -> (state, metrics)` for this strategy."""
    if self.on_mesh:
      state_sharding = self._state_in_sharding()
      return jax.jit(
          step_fn,
          in_shardings=(state_sharding, NamedSharding(self.mesh, self._batch_spec())),
          out_shardings=(state_sharding, self.replicated_sharding()),
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
    if self.on_mesh:
      replicated = self.replicated_sharding()
      return jax.jit(
          eval_fn,
          in_shardings=(self._state_in_sharding(), NamedSharding(self.mesh, P(AXIS)),
                        replicated),
          out_shardings=replicated)
    return jax.jit(eval_fn)

  def compile_replicated(self, fn):
    """Jits `fn` (sampling, reconstructions, model-level evaluators) with its
    outputs replicated, so every process can read them whole."""
    if self.on_mesh:
      return jax.jit(fn, out_shardings=self.replicated_sharding())
    return jax.jit(fn)

  def put_eval_batch(self, batch: dict[str, np.ndarray]) -> Any:
    """Places this process's slice of an evaluation batch (no seed axis)."""
    if self.on_mesh:
      sharding = NamedSharding(self.mesh, P(AXIS))
      return jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
    return jax.tree.map(jnp.asarray, batch)


def _put_leading(x: np.ndarray, devices: Sequence[jax.Device]) -> jax.Array:
  """Puts x[i] on devices[i] as one array with a leading device axis."""
  mesh = Mesh(np.asarray(devices), ("devices",))
  sharding = NamedSharding(mesh, P("devices"))
  return jax.device_put(np.asarray(x), sharding)


def _first_copy(x: Any) -> Any:
  """One replica of a pmap-replicated array: its first local device's shard."""
  if not isinstance(x, jax.Array):
    return x[0]
  shard = x.addressable_shards[0].data   # [1, ...] (or the whole array, unsharded)
  return shard.reshape(x.shape[1:]) if shard.shape[0] == 1 else shard[0]
