"""The `realnvp` method: exact likelihood by a normalizing flow (Dinh et al. 2017).

Images go through uniform dequantization, the logit transform with α and
the multi-scale flow; vectors (2-D toy data) through affine couplings with
MLP networks and alternating masks. Training minimises the exact negative
log-likelihood in bits/dim (plus the paper's L2 penalty); `evaluate` returns
per example −log p in nats and bits/dim, with every change of variables —
the flow's log-det, the logit's and the codec's scaling — counted (losses.py).

  config = jaxgen.get_config("realnvp")                 # digits, multi-scale, batch norm
  result = jaxgen.fit(config)
  x = result.method.sample(result.state, key, 16, temperature=0.7)
  model = realnvp.model_of(result.method)
  path = realnvp.interpolate(model, result.state, x_a, x_b, 8)   # [B, 8, H, W, C]
  log_p = realnvp.log_density(model, result.state, points)      # continuous data
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError, choices
from jaxgen.families.realnvp import losses
from jaxgen.families.realnvp import settings as settings_lib
from jaxgen.nn import flows

PATHS = ("linear", "elliptic")


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """Everything `make` fixes: what the method's functions close over (never a config)."""

  settings: settings_lib.Settings
  flow: nn.Module
  tx: optax.GradientTransformation
  codec: codec_lib.Codec  # of the data the likelihood is reported for (after dequantization)

  @property
  def dims(self) -> int:
    return math.prod(self.settings.shape)

  @property
  def batch_norm(self) -> bool:
    return self.settings.model.normalization == "batch"


def make_flow(s: settings_lib.Settings) -> nn.Module:
  """The flow of the settings: `RealNVP` (multiscale) or `MLPFlow`."""
  m = s.model
  norm = dict(normalization=m.normalization, momentum=m.batch_norm_momentum,
              epsilon=m.batch_norm_epsilon)
  if s.architecture == "multiscale":
    return flows.RealNVP(shape=s.shape, num_scales=m.num_scales, features=m.features,
                         blocks=m.blocks, **norm)
  return flows.MLPFlow(shape=s.shape, num_couplings=m.couplings, hidden=m.hidden, **norm)


def preprocess(model: Model, x: jax.Array, key: jax.Array | None
               ) -> tuple[jax.Array, jax.Array]:
  """Data x -> (flow input y, log|det ∂y/∂m| [B]), m = x in model space.

  Discrete data are dequantized with `key` (one key or per-example keys);
  key=None puts each value in the middle of its bin (deterministic encodings).
  """
  s = model.settings
  if s.dequantize:
    if key is None:
      k = s.codec.level_index(x).astype(x.dtype)
      x = s.codec.low + (k + 0.5) * ((s.codec.high - s.codec.low) / s.codec.levels)
    else:
      x = s.codec.dequantize(key, x)
  m = model.codec.encode(x)
  if s.logit:
    return losses.logit_transform(m=m, alpha=s.model.alpha)
  return m, jnp.zeros(x.shape[0])


def postprocess(model: Model, y: jax.Array) -> jax.Array:
  """Flow input y -> data (clipped to the data's range where it is bounded)."""
  m = losses.logit_inverse(y=y, alpha=model.settings.model.alpha) if model.settings.logit else y
  return model.codec.decode(m)


def _variables(state: TrainState, params=None) -> dict[str, Any]:
  params = state.params["flow"] if params is None else params
  return {"params": params, **state.model_state}


def flow_forward(model: Model, variables, y: jax.Array, train: bool = False):
  """(z [B, D], log_det [B]) and the new model_state (batch statistics)."""
  if train and model.batch_norm:
    (z, log_det), updates = model.flow.apply(variables, y, train=True,
                                             method=model.flow.forward,
                                             mutable=["batch_stats"])
    return (z, log_det), {"batch_stats": updates["batch_stats"]}
  out = model.flow.apply(variables, y, train=False, method=model.flow.forward)
  return out, {k: v for k, v in variables.items() if k != "params"}


def flow_inverse(model: Model, state: TrainState, z: jax.Array) -> jax.Array:
  """z [B, D] -> y [B, *shape] with the running statistics."""
  return model.flow.apply(_variables(state), z, method=model.flow.inverse)


def init(model: Model, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Parameters from the first real batch (ActNorm and the batch-norm averages)."""
  keys = rng.split(key, "flow", "dequantize", "base")
  y, _ = preprocess(model, batch["x"], keys["dequantize"])
  # Non-partitionable threefry here only, as in the diffusion family: XLA on
  # CPU compiles flax's one draw per parameter faster so.
  with jax.threefry_partitionable(False):
    variables = model.flow.init(keys["flow"], y, method=model.flow.forward)
  params = {"flow": variables["params"]}
  model_state = {k: v for k, v in variables.items() if k != "params"}
  return TrainState.create(key=keys["base"], params=params,
                           opt_state={"flow": model.tx.init(params["flow"])},
                           model_state=model_state)


def nll_nats(model: Model, variables, y: jax.Array, log_det_pre: jax.Array,
             train: bool = False) -> tuple[jax.Array, dict[str, Any]]:
  """−log p(m) in model space (nats) per example, and the new model_state."""
  (z, log_det), model_state = flow_forward(model, variables, y, train)
  return losses.negative_log_likelihood(z=z, log_det=log_det + log_det_pre), model_state


def train_step(model: Model, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One Adam step on the mean bits/dim plus the L2 penalty."""
  keys = state.keys("dequantize")
  y, log_det_pre = preprocess(model, batch["x"], keys["dequantize"])
  l2_weight = model.settings.model.l2_weight

  def loss_fn(params):
    nats, model_state = nll_nats(model, _variables(state, params), y, log_det_pre,
                                 train=True)
    bits = jnp.mean(model.codec.bits_per_dim(nats, dims=model.dims))
    penalty = losses.l2_penalty(params=params)
    return bits + l2_weight * penalty, (bits, penalty, model_state)

  (loss, (bits, penalty, model_state)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params["flow"])
  grads = collectives.mean_over_devices(grads)
  params, opt_state = optim.apply_gradients(model.tx, grads, state.opt_state["flow"],
                                            state.params["flow"])
  new_state = state.replace(step=state.step + 1, params={"flow": params},
                            opt_state={"flow": opt_state}, model_state=model_state)
  return new_state, {"loss": loss, "bits_per_dim": bits, "l2": penalty,
                     "grad_norm": optax.tree.norm(grads)}


def evaluate(model: Model, state: TrainState, batch: dict[str, jax.Array],
             key: jax.Array) -> dict[str, jax.Array]:
  """Per-example −log p in nats (reported units) and bits/dim; eval-mode statistics.

  `key` is one key or per-example keys (`rng.index_keys`): the dequantization
  noise of an example then does not depend on the batch it is in.
  """
  keys = rng.split(key, "dequantize")
  y, log_det_pre = preprocess(model, batch["x"], keys["dequantize"])
  nats, _ = nll_nats(model, _variables(state), y, log_det_pre)
  return {"nll": nats - model.dims * model.codec.log_jacobian,
          "bits_per_dim": model.codec.bits_per_dim(nats, dims=model.dims)}


def log_density(model: Model, state: TrainState, x: jax.Array,
                key: jax.Array | None = None) -> jax.Array:
  """log p(x) per example in the reported units (the data's own for continuous data)."""
  y, log_det_pre = preprocess(model, x, key)
  nats, _ = nll_nats(model, _variables(state), y, log_det_pre)
  return -(nats - model.dims * model.codec.log_jacobian)


def sample(model: Model, state: TrainState, key: jax.Array, num: int,
           temperature: float | jax.Array | None = None) -> jax.Array:
  """num samples in data space: z ~ N(0, T² I) through the inverse flow."""
  if temperature is None:
    temperature = model.settings.model.temperature
  z = temperature * jax.random.normal(key, (num, model.dims))
  return postprocess(model, flow_inverse(model, state, z))


def encode(model: Model, state: TrainState, x: jax.Array,
           key: jax.Array | None = None) -> jax.Array:
  """x -> z [B, D] (eval mode); key=None dequantizes to the bins' centres."""
  y, _ = preprocess(model, x, key)
  (z, _), _ = flow_forward(model, _variables(state), y)
  return z


def decode(model: Model, state: TrainState, z: jax.Array) -> jax.Array:
  """z [B, D] -> data [B, *shape]."""
  return postprocess(model, flow_inverse(model, state, z))


def interpolate(model: Model, state: TrainState, x_a: jax.Array, x_b: jax.Array,
                num: int, key: jax.Array | None = None, path: str = "linear"
                ) -> jax.Array:
  """Decoded latents between x_a and x_b [B, *shape] -> [B, num, *shape].

  path 'linear': z = (1 − t) z_a + t z_b; 'elliptic': z = cos(θ) z_a + sin(θ) z_b,
  θ ∈ [0, π/2], which keeps the norm of independent Gaussian latents (the
  paper's latent manifolds, Dinh et al. 2017, §5).
  """
  if path not in PATHS:
    raise ConfigError(f"unknown interpolation path {path!r}; valid: {choices(PATHS)}")
  if num < 2:
    raise ConfigError(f"an interpolation needs num >= 2 points, got {num}")
  z_a, z_b = encode(model, state, x_a, key), encode(model, state, x_b, key)
  t = jnp.linspace(0.0, 1.0, num)[None, :, None]
  if path == "linear":
    z = (1.0 - t) * z_a[:, None] + t * z_b[:, None]
  else:
    theta = 0.5 * jnp.pi * t
    z = jnp.cos(theta) * z_a[:, None] + jnp.sin(theta) * z_b[:, None]
  batch = z_a.shape[0]
  x = decode(model, state, z.reshape(batch * num, -1))
  return x.reshape((batch, num) + x.shape[1:])


def protocol(model: Model) -> dict[str, Any]:
  """How `evaluate`'s numbers are obtained, saved beside them."""
  s = model.settings
  steps = []
  if s.dequantize:
    steps.append(f"uniform dequantization of the {s.codec.levels} levels, one draw per "
                 "example (key from its index)")
  steps.append(f"scaling to [-1, 1] (codec, log-Jacobian {model.codec.log_jacobian:.6g} "
               "per dimension)")
  if s.logit:
    steps.append(f"logit(α + (1 − 2α)(m + 1)/2), α = {s.model.alpha:g}, log-Jacobian "
                 "counted")
  m = s.model
  return {
      "estimator": "exact −log p by the change of variables (one dequantization draw "
                   "per example where the data are discrete), eval-mode statistics",
      "units": model.codec.units + "; nll in nats per example in the same units",
      "preprocessing": "; ".join(steps),
      "architecture": (f"multiscale, {m.num_scales} scales, ResNet {m.blocks} blocks x "
                       f"{m.features}" if s.architecture == "multiscale" else
                       f"mlp, {m.couplings} couplings, hidden {list(m.hidden)}"),
      "normalization": m.normalization,
  }


def model_of(method: Method) -> Model:
  """The `Model` a realnvp `Method` closes over (for log_density, interpolate)."""
  return method.train_step.args[0]


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `realnvp` method for `config` on data described by `spec`."""
  s = settings_lib.resolve(config, spec)
  codec = s.codec.dequantized_codec() if s.dequantize else s.codec
  model = Model(settings=s, flow=precision.wrap(make_flow(s), precision.compute_dtype(config)),
                tx=optim.make(config.optim, optim.schedule_horizon(config.train)),
                codec=codec)
  return Method(name="realnvp", init=functools.partial(init, model),
                train_step=functools.partial(train_step, model),
                # Jitted here: the flow's inverse run op by op costs seconds of
                # dispatch per call (jit inside the engine's programs is a no-op).
                sample=jax.jit(functools.partial(sample, model), static_argnames="num"),
                evaluate=functools.partial(evaluate, model),
                encode=functools.partial(encode, model),
                decode=functools.partial(decode, model),
                eval_protocol=protocol(model))
