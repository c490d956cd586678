"""PixelCNN (van den Oord et al. 2016a) and Gated PixelCNN (2016b): the `pixelcnn` method.

An autoregressive model of discrete images: p(x) = Π_k p(x_k | x_<k) over the
values in raster order, R → G → B within a pixel, each conditional a softmax
over the data's levels (2 for binarized data, the data's levels otherwise,
from the shared `jaxgen.data.codec`). Masked convolutions (`jaxgen.nn.masked`)
compute all conditionals in one pass, so training maximizes the exact
log-likelihood and `evaluate` reports it per example, in nats and bits/dim.

  config = jaxgen.get_config("pixelcnn")            # binarized digits, 8x8
  config.model.architecture = "gated"               # vertical + horizontal stacks
  result = jaxgen.fit(config, workdir="runs/pixelcnn")
  x = result.method.sample(result.state, key, 16)   # ancestral, one compiled loop
  x = result.method.sample(result.state, key, 16, observed=images, mask=mask)
  x = pixelcnn.complete(result.method, result.state, key, images, mask)  # the same

Sampling draws the values one at a time in the model's order inside one
`lax.fori_loop` (one network pass per value), batched; example i draws from
`fold_in(key, i)`, so it does not depend on how many are drawn. *Completion*
(`observed=`, `mask=`; mask 1 = observed) runs the same loop but keeps every
observed value as it is: an unobserved value is drawn from p(x_k | x_<k) with
the observed earlier values fed in ("completion: feed in the actual values for
the known x_i"). This is the exact conditional p(x_unobserved | x_observed) when
every observed value comes before every unobserved one (e.g. the bottom half
of an image is missing); otherwise later observed values are ignored when
earlier ones are drawn. Class-conditional gated models take `labels=` (int
[num]; default 0, 1, 2, ... cycling over the classes).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from jaxgen import registry
from jaxgen.core import optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError
from jaxgen.families.pixelcnn import losses
from jaxgen.families.pixelcnn import settings as settings_lib
from jaxgen.families.pixelcnn.settings import ModelSettings, default_config
from jaxgen.nn import masked


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """Everything `make` fixes: what the method's functions close over (never a config)."""

  name: str
  settings: ModelSettings
  codec: codec_lib.Codec
  shape: tuple[int, int, int]
  network: nn.Module
  tx: optax.GradientTransformation
  num_classes: int  # 0 when unconditional

  @property
  def levels(self) -> int:
    return int(self.codec.levels)

  @property
  def dims(self) -> int:
    return math.prod(self.shape)


def make_network(s: ModelSettings, shape: tuple[int, ...], levels: int,
                 num_classes: int) -> nn.Module:
  """The configured network: x [B, H, W, C] in [-1, 1] (+ labels) -> logits [B, H, W, C, levels]."""
  common = dict(features=s.features, layers=s.layers, output_features=s.output_features,
                colors=int(shape[-1]), levels=int(levels), first_kernel=s.first_kernel,
                kernel=s.kernel)
  if s.architecture == "gated":
    return masked.GatedPixelCNN(num_classes=num_classes, name="gated", **common)
  return masked.PixelCNN(name="pixelcnn", **common)


def apply_network(model: Model, params, levels: jax.Array, labels: jax.Array | None
                  ) -> jax.Array:
  """Logits [B, H, W, C, L] of level indices [B, H, W, C] (fed in as data in [-1, 1])."""
  x = model.codec.encode(model.codec.from_level_index(levels))
  return model.network.apply({"params": params}, x, labels if model.num_classes else None)


def init(model: Model, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Parameters and the optimizer state; only the example shape is read from `batch`."""
  del batch
  keys = rng.split(key, "network", "base")
  levels = jnp.zeros((1,) + model.shape, jnp.int32)
  labels = jnp.zeros((1,), jnp.int32)
  # Non-partitionable threefry here only, as in the other families: XLA on
  # CPU compiles flax's one draw per parameter faster so.
  with jax.threefry_partitionable(False):
    x = model.codec.encode(model.codec.from_level_index(levels))
    params = model.network.init(keys["network"], x, labels if model.num_classes else None)
  params = {"network": params["params"]}
  return TrainState.create(key=keys["base"], params=params,
                           opt_state={"network": model.tx.init(params["network"])})


def example_nll(model: Model, params, batch: dict[str, jax.Array]) -> jax.Array:
  """Exact −log p(x) (−log p(x | y) when conditional) per example, in nats: [B]."""
  levels = model.codec.level_index(batch["x"])
  logits = apply_network(model, params, levels, batch.get("label"))
  return losses.nll(logits=logits, levels=levels)


def train_step(model: Model, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One maximum-likelihood step: the mean exact NLL of the batch (no randomness)."""
  new_state, loss, nats, grads = optim.maximum_likelihood_step(
      model.tx, state, lambda params: example_nll(model, params, batch))
  bits = model.codec.bits_per_dim(nats, dims=model.dims)
  return new_state, {"loss": loss, "bits_per_dim": jnp.mean(bits),
                     "grad_norm": optax.tree.norm(grads)}


def evaluate(model: Model, state: TrainState, batch: dict[str, jax.Array],
             key: jax.Array) -> dict[str, jax.Array]:
  """Exact NLL per example in nats and bits/dim; deterministic (`key` is not used)."""
  del key
  nats = example_nll(model, state.params["network"], batch)
  return {"nll_nats": nats, "nll_bits_per_dim": model.codec.bits_per_dim(nats, dims=model.dims)}


def fill(model: Model, params, keys: jax.Array, levels: jax.Array, observed: jax.Array,
         labels: jax.Array | None, start: Any = 0, stop: Any = None) -> jax.Array:
  """Draws every value not `observed`, in the model's order, in one compiled loop.

  keys: [B] per-example keys (value n of example b uses fold_in(keys[b], n));
  levels: int [B, H, W, C], the observed values (others are overwritten);
  observed: bool [B, H, W, C]. Only values n in [start, stop) (raster-order
  indices; default all) are drawn, so running the loop in consecutive ranges
  gives what one call gives. Returns the completed level indices.
  """
  height, width, colors = model.shape
  stop = height * width * colors if stop is None else stop

  def body(n, levels):
    i, rest = jnp.divmod(n, width * colors)
    j, c = jnp.divmod(rest, colors)
    logits = apply_network(model, params, levels, labels)[:, i, j, c]  # [B, L]
    draw = jax.vmap(lambda k, l: jax.random.categorical(jax.random.fold_in(k, n), l))(
        keys, logits)
    value = jnp.where(observed[:, i, j, c], levels[:, i, j, c], draw.astype(levels.dtype))
    return levels.at[:, i, j, c].set(value)

  return jax.lax.fori_loop(start, stop, body, levels)


def _fill_rows_impl(model: Model, params, keys, levels, observed, labels, start, stop):
  return fill(model, params, keys, levels, observed, labels, start, stop)


# start/stop travel as arrays, so every chunk of rows reuses one compiled
# program; `model` is static (one per method, hashed by identity).
_fill_rows = jax.jit(_fill_rows_impl, static_argnums=0)


def _is_traced(tree: Any) -> bool:
  return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def fill_in_chunks(model: Model, params, keys: jax.Array, levels: jax.Array,
                   observed: jax.Array, labels: jax.Array | None, *, rows_per_chunk: int = 1,
                   progress: bool = True) -> jax.Array:
  """`fill` as compiled chunks of `rows_per_chunk` image rows, with a tqdm bar between them.

  The values drawn are those of one `fill` call: value n of example b uses
  fold_in(keys[b], n) whichever chunk draws it.
  """
  if rows_per_chunk < 1:
    raise ConfigError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
  height, width, colors = model.shape
  per_row = width * colors
  # Rows observed in every image draw nothing: skipped (completion of a bottom
  # half runs half the network passes).
  known_rows = np.asarray(observed).reshape(observed.shape[0], height, -1).all(axis=(0, 2))
  bar = tqdm.tqdm(total=height, desc=f"{model.name} sampling {levels.shape[0]} images",
                  unit="row", disable=not progress, dynamic_ncols=True, file=sys.stderr)
  try:
    for row in range(0, height, rows_per_chunk):
      end = min(row + rows_per_chunk, height)
      if not known_rows[row:end].all():
        levels = _fill_rows(model, params, keys, levels, observed, labels,
                            jnp.int32(row * per_row), jnp.int32(end * per_row))
        levels.block_until_ready()
      bar.update(end - row)
  finally:
    bar.close()
  return levels


def _labels(model: Model, num: int, labels: Any) -> jax.Array | None:
  if not model.num_classes:
    if labels is not None:
      raise ConfigError(f"method {model.name!r} is not class-conditional; sample it without "
                        "labels (or train with model.architecture='gated' and "
                        "model.conditional=True)")
    return None
  if labels is None:
    return jnp.arange(num, dtype=jnp.int32) % model.num_classes
  return jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (num,))


def _observed(model: Model, num: int, observed: Any, mask: Any
              ) -> tuple[jax.Array, jax.Array]:
  """(levels, observed flags) [num, H, W, C] of `sample`'s completion arguments."""
  shape = (num,) + model.shape
  if observed is None and mask is None:
    return jnp.zeros(shape, jnp.int32), jnp.zeros(shape, bool)
  if observed is None or mask is None:
    raise ConfigError("completion needs both observed= (images) and mask= (1 = observed)")
  observed, mask = jnp.asarray(observed, jnp.float32), jnp.asarray(mask)
  if observed.shape != shape:
    raise ConfigError(f"observed images must have shape {shape}, got {observed.shape}")
  if mask.shape == shape[:-1]:  # one flag per pixel, for every channel
    mask = mask[..., None]
  try:
    mask = jnp.broadcast_to(mask, shape)
  except ValueError as error:
    raise ConfigError(f"mask of shape {mask.shape} does not fit images {shape}") from error
  return model.codec.level_index(observed), mask > 0


def sample(model: Model, state: TrainState, key: jax.Array, num: int, labels: Any = None,
           observed: Any = None, mask: Any = None, progress: bool = False) -> jax.Array:
  """num images in data space, drawn (or completed) value by value; see the module docstring.

  progress=True (called eagerly, as `jaxgen.sample` and `jaxgen sample` do):
  the loop runs in compiled chunks of one image row with a progress bar; the
  images are the same as those of one compiled call.
  """
  labels = _labels(model, num, labels)
  levels, known = _observed(model, num, observed, mask)
  keys = rng.index_keys(key, jnp.arange(num))
  params = state.params["network"]
  if progress and not _is_traced((params, key, levels)):
    levels = fill_in_chunks(model, params, keys, levels, known, labels)
  else:
    levels = fill(model, params, keys, levels, known, labels)
  return model.codec.from_level_index(levels)


def complete(method: Method, state: TrainState, key: jax.Array, images: jax.Array,
             mask: jax.Array, labels: Any = None) -> jax.Array:
  """Fills the unobserved values of `images` [B, H, W, C] (mask 1 = observed; [B, H, W] or
  [B, H, W, C]) from the model, in raster order: `method.sample` with observed=, mask=."""
  return method.sample(state, key, images.shape[0], labels=labels, observed=images, mask=mask)


def protocol(model: Model) -> dict[str, Any]:
  """How `evaluate`'s numbers are obtained, saved beside them."""
  s = model.settings
  return {
      "estimator": "exact −log p(x) = −Σ_k log p(x_k | x_<k) over all values in raster "
                   "order (R → G → B within a pixel), one network pass",
      "units": "nats per image (nll_nats) and " + model.codec.units + " (nll_bits_per_dim)",
      "distribution": f"softmax over {model.levels} levels per value",
      "conditioning": ("−log p(x | y) with the true labels" if model.num_classes
                       else "unconditional"),
      "architecture": s.architecture, "layers": s.layers, "features": s.features,
  }


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `pixelcnn` method for `config` on data described by `spec`."""
  dequantized = bool(config.get("data", {}).get("dequantize", False))
  s, codec = settings_lib.resolve(config.model, spec, dequantized=dequantized)
  num_classes = int(spec.num_classes or 0) if s.conditional else 0
  model = Model(name="pixelcnn", settings=s, codec=codec, shape=tuple(spec.shape),
                network=precision.wrap(make_network(s, spec.shape, codec.levels, num_classes),
                                       precision.compute_dtype(config)),
                tx=optim.make(config.optim, optim.schedule_horizon(config.train)),
                num_classes=num_classes)
  return Method(name="pixelcnn", init=functools.partial(init, model),
                train_step=functools.partial(train_step, model),
                sample=functools.partial(sample, model),
                evaluate=functools.partial(evaluate, model),
                eval_protocol=protocol(model))


__all__ = ["Model", "apply_network", "complete", "default_config", "example_nll", "fill",
           "fill_in_chunks", "make", "make_network", "sample"]

registry.register(
    "pixelcnn", family="pixelcnn",
    description="PixelCNN / Gated PixelCNN: exact likelihood, ancestral sampling, completion",
    default_config=default_config, make=make)
