"""The contract every family implements: `TrainState` and `Method`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from jaxgen.core import rng

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

# What `Method.init` receives as its example batch during training: the first
# training batch ("batch"), or the whole training split ("split").
INIT_DATA = ("batch", "split")


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue bit-exactly, and nothing else.

  Attributes:
    step: int32 scalar, the number of train steps taken.
    params: named parameter groups, e.g. {"encoder", "decoder"} or
      {"generator", "discriminator"}.
    opt_state: optimizer states, one per optimizer, named like the groups they
      update (a GAN has two).
    model_state: whatever else evolves: batch statistics, EMA weights,
      persistent chains, controller variables (BEGAN's k_t). May be empty.
    key: the run's base PRNG key (uint32[2]); step t uses
      `rng.step_key(key, t)`.
  """

  step: jax.Array
  params: dict[str, PyTree]
  opt_state: dict[str, PyTree]
  model_state: dict[str, PyTree]
  key: jax.Array

  @classmethod
  def create(cls, *, key: jax.Array, params: dict[str, PyTree],
             opt_state: dict[str, PyTree],
             model_state: dict[str, PyTree] | None = None) -> TrainState:
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               opt_state=opt_state, model_state=model_state or {}, key=key)

  def keys(self, *purposes: str) -> dict[str, jax.Array]:
    """This step's keys, one per purpose: `state.keys("noise", "dropout")`."""
    return rng.split(rng.step_key(self.key, self.step), *purposes)


class Method(NamedTuple):
  """A training method as a bundle of pure functions (see docs/architecture.md).

  init(key, example_batch) -> TrainState
  train_step(state, batch) -> (state, metrics): scalar metrics, "loss" among them.
  sample(state, key, num, **conditioning) -> [num, *data_shape] in data space
    (None for a model with no p(x), such as a discriminative classifier).
  evaluate(state, batch, keys) -> {name: [batch]} per-example values; `keys`
    are per-example keys (`keys[i]` = fold_in(eval_key, global index of
    example i)); draw noise from them with `jaxgen.core.rng`. The engine
    averages the values over the split and saves them with `eval_protocol`.
  reconstruct(state, batch, key) -> [batch, *data_shape] (autoencoders).
  encode(state, x, key) / decode(state, z): latent-variable models.
  project(state, images, key, **options) -> (z, reconstructions, losses):
    codes whose decodings reconstruct `images` (`jaxgen.core.projection`);
    None for methods without a generator.
  evaluators: extra evaluators (`jaxgen.core.evaluators`: sample-based,
    model-level or per-example) run beside `evaluate`.
  init_data: what `init` sees during training: "batch" (default), the first
    batch of each seed's stream; "split", the whole training split as one
    batch, in its fixed order and with evaluation's fixed transforms, the same
    arrays on every device, process and seed (k-means++ over the whole set).
    The state's shapes must not depend on the number of rows: resume and
    `jaxgen.load` build the abstract state from a batch of `data.batch_size`.
  """

  name: str
  init: Callable[[jax.Array, Batch], TrainState]
  train_step: Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
  sample: Callable[..., jax.Array] | None   # None: a discriminative model
  evaluate: Callable[[TrainState, Batch, jax.Array], Metrics] | None = None
  reconstruct: Callable[[TrainState, Batch, jax.Array], jax.Array] | None = None
  encode: Callable[..., Any] | None = None
  decode: Callable[..., jax.Array] | None = None
  eval_protocol: dict[str, Any] | None = None
  evaluators: tuple = ()
  init_data: str = "batch"
  project: Callable[..., tuple] | None = None
