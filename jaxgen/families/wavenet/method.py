"""WaveNet (van den Oord et al. 2016) with Fast WaveNet generation (Paine et al. 2016): `wavenet`.

An autoregressive model of quantised signals: p(x) = Π_t Π_c p(x_t,c | x_<t),
each conditional a softmax over the data's levels (256 μ-law levels with
data.companding='mu_law'). Dilated causal convolutions (`jaxgen.nn.wavenet`)
compute every conditional in one pass, so training maximizes the exact
log-likelihood and `evaluate` reports it per example, in nats and bits per
sample (per value: time step and channel).

  config = jaxgen.get_config("wavenet", "seq1d:sines")   # μ-law, 256 samples
  result = jaxgen.fit(config, workdir="runs/wavenet")
  x = result.method.sample(result.state, key, 8)                 # [8, T, C], companded
  x = result.method.sample(result.state, key, 8, length=4096)    # longer than training
  signal = jaxgen.data.codec.mu_law_expand(x)                    # back to the waveform

Generation draws the samples one at a time inside one `lax.scan`, batched;
example b draws sample t from `fold_in(keys[b], t)` with keys[b] =
`fold_in(key, b)`, so a signal does not depend on how many are drawn. Two
loops give the same signals: "naive" runs the stack on the receptive field
before every sample (O(layers · R) per sample), "cached" keeps a queue of
past activations per layer (O(layers); `model.generation`, default).
Class-conditional models take `labels=` (int [num]; default 0, 1, 2, ...
cycling over the classes).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import registry
from jaxgen.core import optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError
from jaxgen.families.wavenet import losses
from jaxgen.families.wavenet import settings as settings_lib
from jaxgen.families.wavenet.settings import ModelSettings, default_config
from jaxgen.nn import wavenet as wavenet_nn


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """Everything `make` fixes: what the method's functions close over (never a config)."""

  name: str
  settings: ModelSettings
  codec: codec_lib.Codec
  shape: tuple[int, int]  # (T, C)
  network: wavenet_nn.WaveNet
  tx: optax.GradientTransformation
  num_classes: int  # 0 when unconditional

  @property
  def levels(self) -> int:
    return int(self.codec.levels)

  @property
  def channels(self) -> int:
    return int(self.shape[1])

  @property
  def receptive_field(self) -> int:
    return self.network.receptive_field


def make_network(s: ModelSettings, channels: int, levels: int,
                 num_classes: int) -> wavenet_nn.WaveNet:
  """The configured network: one-hot x [B, T, C·L] (+ labels) -> logits [B, T, C, L]."""
  return wavenet_nn.WaveNet(
      levels=levels, channels=channels,
      dilations=wavenet_nn.dilation_schedule(s.depth, s.stacks), kernel_size=s.kernel,
      residual_channels=s.residual_channels, dilation_channels=s.dilation_channels,
      skip_channels=s.skip_channels, output_channels=s.output_channels,
      num_classes=num_classes, name="wavenet")


def one_hot(model: Model, levels: jax.Array) -> jax.Array:
  """int levels [..., C] -> [..., C·L]; level −1 (no sample yet) gives zeros."""
  encoded = jax.nn.one_hot(levels, model.levels, dtype=jnp.float32)
  return encoded.reshape(levels.shape[:-1] + (-1,))


def _network_labels(model: Model, labels: jax.Array | None) -> jax.Array | None:
  return labels if model.num_classes else None


def init(model: Model, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Parameters and the optimizer state; only the example shape is read from `batch`."""
  del batch
  keys = rng.split(key, "network", "base")
  inputs = jnp.zeros((1, 2, model.channels * model.levels), jnp.float32)
  labels = jnp.zeros((1,), jnp.int32) if model.num_classes else None
  # Non-partitionable threefry here only, as in the other families: XLA on
  # CPU compiles flax's one draw per parameter faster so.
  with jax.threefry_partitionable(False):
    params = model.network.init(keys["network"], inputs, labels)
  params = {"network": params["params"]}
  return TrainState.create(key=keys["base"], params=params,
                           opt_state={"network": model.tx.init(params["network"])})


def example_nll(model: Model, params, batch: dict[str, jax.Array]) -> jax.Array:
  """Exact −log p(x) (−log p(x | y) when conditional) per example, in nats: [B]."""
  levels = model.codec.level_index(batch["x"])
  logits = model.network.apply({"params": params}, one_hot(model, levels),
                               _network_labels(model, batch.get("label")))
  return losses.nll(logits=logits, levels=levels)


def bits_per_sample(model: Model, nats: jax.Array, length: int) -> jax.Array:
  """nats per signal [B] -> bits per sample (per time step and channel)."""
  return model.codec.bits_per_dim(nats, dims=length * model.channels)


def train_step(model: Model, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One maximum-likelihood step: the mean exact NLL of the batch (no randomness)."""
  new_state, loss, nats, grads = optim.maximum_likelihood_step(
      model.tx, state, lambda params: example_nll(model, params, batch))
  bits = bits_per_sample(model, nats, batch["x"].shape[1])
  return new_state, {"loss": loss, "bits_per_sample": jnp.mean(bits),
                     "grad_norm": optax.tree.norm(grads)}


def evaluate(model: Model, state: TrainState, batch: dict[str, jax.Array],
             key: jax.Array) -> dict[str, jax.Array]:
  """Exact NLL per example in nats and bits per sample; deterministic (`key` is not used)."""
  del key
  nats = example_nll(model, state.params["network"], batch)
  return {"nll_nats": nats,
          "nll_bits_per_sample": bits_per_sample(model, nats, batch["x"].shape[1])}


def _draw(keys: jax.Array, logits: jax.Array, t: jax.Array) -> jax.Array:
  """Level [B, C] of time step t from logits [B, C, L]: example b uses fold_in(keys[b], t)."""
  return jax.vmap(lambda k, l: jax.random.categorical(jax.random.fold_in(k, t), l))(
      keys, logits).astype(jnp.int32)


def generate_cached(model: Model, params, keys: jax.Array, labels: jax.Array | None,
                    length: int) -> jax.Array:
  """Fast WaveNet: one `step` per sample with a queue per convolution in the scan carry."""
  variables = {"params": params}
  batch = keys.shape[0]
  queues = model.network.apply(variables, batch, method=wavenet_nn.WaveNet.initial_queues)

  def body(carry, t):
    previous, queues = carry
    logits, queues = model.network.apply(variables, one_hot(model, previous), queues, t,
                                         labels, method=wavenet_nn.WaveNet.step)
    x = _draw(keys, logits, t)
    return (x, queues), x

  start = jnp.full((batch, model.channels), -1, jnp.int32)  # no x_{-1}: zero input
  _, levels = jax.lax.scan(body, (start, queues), jnp.arange(length))
  return levels.transpose(1, 0, 2)


def generate_naive(model: Model, params, keys: jax.Array, labels: jax.Array | None,
                   length: int) -> jax.Array:
  """The stack run on the receptive field (R shifted inputs) before every sample."""
  variables = {"params": params}
  batch, field = keys.shape[0], model.receptive_field
  # Slot field − 1 + s holds x_{s−1}, the shifted input at s; −1 (zeros) before.
  history = jnp.full((batch, field + length, model.channels), -1, jnp.int32)

  def body(history, t):
    window = jax.lax.dynamic_slice_in_dim(history, t, field, axis=1)
    valid = (jnp.arange(field) + t - field + 1 >= 0).astype(jnp.float32)
    logits = model.network.apply(variables, one_hot(model, window), labels, valid,
                                 method=wavenet_nn.WaveNet.stack)[:, -1]
    x = _draw(keys, logits, t)
    return jax.lax.dynamic_update_slice_in_dim(history, x[:, None], t + field, axis=1), x

  _, levels = jax.lax.scan(body, history, jnp.arange(length))
  return levels.transpose(1, 0, 2)


def generate(model: Model, params, keys: jax.Array, labels: jax.Array | None, length: int,
             *, cached: bool = True) -> jax.Array:
  """Levels int [B, length, C] drawn sample by sample from per-example keys [B]."""
  fn = generate_cached if cached else generate_naive
  return fn(model, params, keys, _network_labels(model, labels), length)


def _labels(model: Model, num: int, labels: Any) -> jax.Array | None:
  if not model.num_classes:
    if labels is not None:
      raise ConfigError(f"method {model.name!r} is not class-conditional; sample it without "
                        "labels (or train with model.conditional=True on labelled data)")
    return None
  if labels is None:
    return jnp.arange(num, dtype=jnp.int32) % model.num_classes
  return jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (num,))


def sample(model: Model, state: TrainState, key: jax.Array, num: int, labels: Any = None,
           length: int | None = None) -> jax.Array:
  """num signals [num, length, C] in data space (companded values), drawn sample by sample.

  length: samples per signal (default: the data's length); any length works.
  """
  length = model.shape[0] if length is None else int(length)
  if length < 1:
    raise ConfigError(f"length must be at least 1, got {length}")
  labels = _labels(model, num, labels)
  keys = rng.index_keys(key, jnp.arange(num))
  levels = generate(model, state.params["network"], keys, labels, length,
                    cached=model.settings.generation == "cached")
  return model.codec.from_level_index(levels)


def protocol(model: Model) -> dict[str, Any]:
  """How `evaluate`'s numbers are obtained, saved beside them."""
  s = model.settings
  return {
      "estimator": "exact −log p(x) = −Σ_t Σ_c log p(x_t,c | x_<t) over the whole "
                   "signal, one network pass (causal: zero activations before t = 0)",
      "units": "nats per signal (nll_nats) and bits per sample, i.e. per time step and "
               "channel (nll_bits_per_sample), of the " + f"{model.levels}-level data",
      "distribution": f"softmax over {model.levels} levels per sample",
      "conditioning": ("−log p(x | y) with the true labels" if model.num_classes
                       else "unconditional"),
      "receptive_field": model.receptive_field, "depth": s.depth, "stacks": s.stacks,
      "kernel": s.kernel, "residual_channels": s.residual_channels,
  }


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `wavenet` method for `config` on data described by `spec`."""
  s, codec = settings_lib.resolve(config.model, spec)
  num_classes = int(spec.num_classes or 0) if s.conditional else 0
  model = Model(name="wavenet", settings=s, codec=codec, shape=tuple(spec.shape),
                network=precision.wrap(make_network(s, int(spec.shape[1]), codec.levels,
                                                    num_classes),
                                       precision.compute_dtype(config)),
                tx=optim.make(config.optim, optim.schedule_horizon(config.train)),
                num_classes=num_classes)
  return Method(name="wavenet", init=functools.partial(init, model),
                train_step=functools.partial(train_step, model),
                sample=functools.partial(sample, model),
                evaluate=functools.partial(evaluate, model),
                eval_protocol=protocol(model))


def model_of(config: ml_collections.ConfigDict, spec: Any) -> Model:
  """The `Model` that `make` closes over (for benchmarks and tests of the two loops)."""
  return make(config, spec).sample.args[0]


__all__ = ["Model", "default_config", "example_nll", "generate", "generate_cached",
           "generate_naive", "make", "make_network", "model_of", "one_hot", "sample"]

registry.register(
    "wavenet", family="wavenet",
    description="WaveNet: dilated causal convolutions, exact likelihood of μ-law signals, "
                "cached (Fast WaveNet) generation",
    default_config=default_config, make=make, default_data="seq1d:sines")
