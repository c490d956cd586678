"""Explicit PRNG keys: one key per step, split by purpose, drawn per example.

The key of step t is `fold_in(base_key, t)`; a step splits it once into named
purposes and never reuses a key. Noise that has one value per example (the
reparameterisation noise of a VAE, a diffusion timestep, a corruption mask) is
drawn through the helpers below: they give example i of the *global* batch the
key `split(key, global_batch)[i]`, so the numbers do not depend on how the batch
is spread over devices, under `jit` (the sharded split is computed in place) and
under `pmap` (each device takes its slice of the global keys).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxgen.core import collectives

Shape = Sequence[int]


def step_key(base_key: jax.Array, step: jax.Array | int) -> jax.Array:
  """The key of one training step, derived from the run's base key."""
  return jax.random.fold_in(base_key, step)


def is_per_example(key: jax.Array) -> bool:
  """Whether `key` is a batch of per-example keys rather than one key.

  Evaluation hands a family one key per example (`index_keys`); the helpers of
  this module accept either form, so the same loss code serves training (one
  step key, split over the global batch) and evaluation (keys from indices).
  """
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key.ndim == 1
  return key.ndim == 2


def split(key: jax.Array, *purposes: str) -> dict[str, jax.Array]:
  """Splits `key` into one key per named purpose: `split(k, "noise", "t")`.

  Per-example keys are split per example (see `split_each`).
  """
  if len(set(purposes)) != len(purposes):
    raise ValueError(f"purposes must be distinct, got {purposes}")
  if is_per_example(key):
    return split_each(key, *purposes)
  keys = jax.random.split(key, len(purposes))
  return {name: keys[i] for i, name in enumerate(purposes)}


def example_keys(key: jax.Array, batch_size: int) -> jax.Array:
  """One key per example of this device's share of the global batch.

  Per-example keys (e.g. from `index_keys`) are already that: returned as they are.
  """
  if is_per_example(key):
    if key.shape[0] != batch_size:
      raise ValueError(f"{key.shape[0]} per-example keys for a batch of {batch_size}")
    return key
  axis = collectives.current_pmap_axis()
  if axis is None:
    return jax.random.split(key, batch_size)
  num_devices = jax.lax.psum(1, axis)
  all_keys = jax.random.split(key, batch_size * num_devices)
  start = jax.lax.axis_index(axis) * batch_size
  return jax.lax.dynamic_slice_in_dim(all_keys, start, batch_size)


def per_example(key: jax.Array, batch_size: int,
                draw: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """Maps `draw(example_key)` over the examples of the batch.

  `key` is one key (split over the global batch) or per-example keys
  ([batch], e.g. from `index_keys`), used as they are.
  """
  if is_per_example(key):
    if key.shape[0] != batch_size:
      raise ValueError(f"{key.shape[0]} per-example keys for a batch of {batch_size}")
    return jax.vmap(draw)(key)
  return jax.vmap(draw)(example_keys(key, batch_size))


def normal(key: jax.Array, shape: Shape, dtype=jnp.float32) -> jax.Array:
  """Standard normal noise of `shape`, whose axis 0 is the batch."""
  return per_example(key, shape[0],
                     lambda k: jax.random.normal(k, tuple(shape[1:]), dtype))


def uniform(key: jax.Array, shape: Shape, dtype=jnp.float32,
            minval: float = 0.0, maxval: float = 1.0) -> jax.Array:
  """Uniform noise on [minval, maxval) of `shape`; axis 0 is the batch."""
  return per_example(
      key, shape[0],
      lambda k: jax.random.uniform(k, tuple(shape[1:]), dtype, minval, maxval))


def bernoulli(key: jax.Array, p: jax.Array | float, shape: Shape) -> jax.Array:
  """Bernoulli(p) draws of `shape` (p broadcast to it); axis 0 is the batch."""
  p = jnp.broadcast_to(jnp.asarray(p, jnp.float32), tuple(shape))
  return per_example(key, shape[0],
                     lambda k: jax.random.uniform(k, tuple(shape[1:]))) < p


def randint(key: jax.Array, shape: Shape, minval: int, maxval: int) -> jax.Array:
  """Integers in [minval, maxval) of `shape`; axis 0 is the batch."""
  return per_example(
      key, shape[0],
      lambda k: jax.random.randint(k, tuple(shape[1:]), minval, maxval))


def index_keys(key: jax.Array, index: jax.Array) -> jax.Array:
  """Keys `fold_in(key, index[i])`: one per example, from its global index.

  Evaluation derives each example's noise from its position in the split, so
  an estimate does not depend on the eval batch size or the device count.
  """
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(index)


def each(keys: jax.Array, draw: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """Maps `draw(example_key)` over per-example keys (e.g. from `index_keys`)."""
  return jax.vmap(draw)(keys)


def split_each(keys: jax.Array, *purposes: str) -> dict[str, jax.Array]:
  """Splits every per-example key by purpose: {purpose: [batch] keys}."""
  if len(set(purposes)) != len(purposes):
    raise ValueError(f"purposes must be distinct, got {purposes}")
  split_keys = jax.vmap(lambda k: jax.random.split(k, len(purposes)))(keys)
  return {name: split_keys[:, i] for i, name in enumerate(purposes)}
