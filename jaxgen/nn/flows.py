"""Invertible layers and RealNVP flows (Dinh et al. 2017, "Density estimation using Real NVP").

Every layer maps x to (y, log_det), log_det = log |det ∂y/∂x| per example,
and back: `layer(x, inverse=False, train=...)` -> (y, log_det) and
`layer(y, inverse=True)` -> (x, −log_det); `forward` and `inverse` are the
two directions by name:

  flow = RealNVP(shape=(8, 8, 1), num_scales=2, features=32, blocks=2)
  variables = flow.init(key, x, method=flow.forward)   # data-dependent init
  (z, log_det), updates = flow.apply(variables, x, train=True,
                                     method=flow.forward, mutable=["batch_stats"])
  x_back = flow.apply(variables, z, method=flow.inverse)   # eval statistics

* `AffineCoupling`: y = b⊙x + (1−b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x)) with
  s = scale·tanh(·) per channel (Dinh et al. §4.1), a checkerboard mask,
  a channel-wise mask (images, ResNet coupling network) or an alternating
  mask over the coordinates of a vector (MLP coupling network). The
  network's last layer starts at zero: every coupling starts as the identity.
* `BatchNorm` (Dinh et al. §3.7): train mode normalises with the batch's
  statistics (means over devices) and updates running averages in the
  "batch_stats" collection; eval mode, and the inverse always, use the
  running averages. Its log-det is Σ (log γ − ½ log(σ² + ε)).
* `ActNorm` (Kingma & Dhariwal 2018): y = (x + b)·exp(log s) per channel,
  b and log s initialised from the first batch `init` sees so that its
  output has zero mean and unit variance per channel.
* `squeeze` / `unsqueeze`: [H, W, C] <-> [H/2, W/2, 4C], each 2×2 square into
  channels (log-det 0).
* `RealNVP`: the multi-scale architecture; each scale but the last is 3
  checkerboard couplings, a squeeze, 3 channel-wise couplings and the
  factoring-out of half the channels; the last scale is 4 checkerboard
  couplings. z is the concatenation of the factored-out latents, flat [B, D].
* `MLPFlow`: couplings with alternating masks on vectors (2-D toy data).

With `normalization` 'batch' or 'actnorm', a normalization layer precedes
every coupling (the first one normalises the input; the paper puts batch
normalization after each coupling, the same chain but for the first and last
layer).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.core import collectives
from jaxgen.errors import ConfigError, choices
from jaxgen.nn import channels_last

Array = jax.Array
NORMALIZATIONS = ("batch", "actnorm", "none")
MASKS = ("checkerboard", "channel", "alternate")


def _sum_per_example(x: Array) -> Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def checkerboard_mask(height: int, width: int, parity: int) -> Array:
  """b[i, j] = 1 where (i + j + parity) is even: [height, width, 1]."""
  i, j = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
  return ((i + j + parity) % 2 == 0).astype(jnp.float32)[..., None]


def alternate_mask(dim: int, parity: int) -> Array:
  """b[i] = 1 where (i + parity) is even: [dim]."""
  return ((jnp.arange(dim) + parity) % 2 == 0).astype(jnp.float32)


def squeeze(x: Array) -> Array:
  """[B, H, W, C] -> [B, H/2, W/2, 4C]: each 2×2 square into channels (Dinh et al. §3.6)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: Array) -> Array:
  """The inverse of `squeeze`: [B, H, W, 4C] -> [B, 2H, 2W, C]."""
  b, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c)


class ResNet(nn.Module):
  """The coupling network on images: conv, residual blocks, conv to `out_channels`.

  No normalization inside (Dinh et al. also used batch and weight
  normalization here); the last convolution starts at zero.
  """

  features: int
  blocks: int
  out_channels: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = channels_last.Conv(self.features, (3, 3), name="conv_in")(x)
    for i in range(self.blocks):
      r = channels_last.Conv(self.features, (3, 3), name=f"block{i}_conv0")(nn.relu(h))
      r = channels_last.Conv(self.features, (3, 3), name=f"block{i}_conv1")(nn.relu(r))
      h = h + r
    return channels_last.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros,
                   name="conv_out")(nn.relu(h))


class CouplingMLP(nn.Module):
  """The coupling network on vectors: ReLU layers, then a zero-initialised output."""

  hidden: Sequence[int]
  out_features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i, width in enumerate(self.hidden):
      x = nn.relu(nn.Dense(width, name=f"dense{i}")(x))
    return nn.Dense(self.out_features, kernel_init=nn.initializers.zeros,
                    name="dense_out")(x)


class AffineCoupling(nn.Module):
  """An affine coupling layer (Dinh et al. 2017, eq. 7-9).

  mask 'checkerboard' or 'channel': x [B, H, W, C], ResNet network
  (`features`, `blocks`); 'alternate': x [B, D], MLP network (`hidden`).
  `parity` 0/1 swaps the roles of the two halves.
  """

  mask: str
  parity: int = 0
  features: int = 32
  blocks: int = 2
  hidden: Sequence[int] = (256, 256)

  def _split(self, x: Array) -> tuple[Array, Array]:
    """(the network's input, the mask b of the values the layer leaves unchanged)."""
    if self.mask == "checkerboard":
      b = checkerboard_mask(x.shape[1], x.shape[2], self.parity)
      net_in = jnp.concatenate([x * b, jnp.broadcast_to(b, x.shape[:3] + (1,))], -1)
      return net_in, b
    if self.mask == "channel":
      c = x.shape[-1]
      b = (jnp.arange(c) < c // 2).astype(jnp.float32)
      b = b if self.parity == 0 else 1.0 - b
      return x * b, b
    if self.mask == "alternate":
      b = alternate_mask(x.shape[-1], self.parity)
      return x * b, b
    raise ConfigError(f"unknown coupling mask {self.mask!r}; valid: {choices(MASKS)}")

  @nn.compact
  def __call__(self, x: Array, inverse: bool = False, train: bool = False
               ) -> tuple[Array, Array]:
    del train  # no batch statistics here
    net_in, b = self._split(x)
    out_channels = 2 * x.shape[-1]
    if self.mask == "alternate":
      raw = CouplingMLP(tuple(self.hidden), out_channels, name="net")(net_in)
    else:
      raw = ResNet(self.features, self.blocks, out_channels, name="net")(net_in)
    raw_s, t = jnp.split(raw, 2, axis=-1)
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    s = scale * jnp.tanh(raw_s) * (1.0 - b)
    t = t * (1.0 - b)
    log_det = _sum_per_example(s)
    if inverse:
      return (x - t) * jnp.exp(-s), -log_det
    return x * jnp.exp(s) + t, log_det

  def forward(self, x: Array, train: bool = False) -> tuple[Array, Array]:
    """x -> (y, log |det ∂y/∂x|)."""
    return self(x, inverse=False, train=train)

  def inverse(self, y: Array) -> Array:
    """y -> x."""
    return self(y, inverse=True)[0]


def _channel_axes(x: Array) -> tuple[int, ...]:
  """Every axis but the last (batch and spatial): statistics are per channel."""
  return tuple(range(x.ndim - 1))


def _positions(x: Array) -> int:
  """Values per channel in one example (H·W for images, 1 for vectors)."""
  return math.prod(x.shape[1:-1])


class BatchNorm(nn.Module):
  """Batch normalization as an invertible layer (Dinh et al. 2017, §3.7).

  y = (x − μ)/√(σ² + ε)·exp(log γ) + β per channel; train mode uses the
  batch's μ, σ² (over the global batch: averaged over devices) and moves the
  running averages by `momentum`; eval mode and the inverse use the running
  averages. `init` sets the running averages to the first batch's statistics.
  """

  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: Array, inverse: bool = False, train: bool = False
               ) -> tuple[Array, Array]:
    c = x.shape[-1]
    axes = _channel_axes(x)

    def batch_stats() -> tuple[Array, Array]:
      mean = collectives.mean_over_devices(jnp.mean(x, axes))
      var = collectives.mean_over_devices(jnp.mean(jnp.square(x - mean), axes))
      return mean, var

    initializing = self.is_initializing()
    running_mean = self.variable("batch_stats", "mean",
                                 lambda: batch_stats()[0] if not inverse else jnp.zeros(c))
    running_var = self.variable("batch_stats", "var",
                                lambda: batch_stats()[1] if not inverse else jnp.ones(c))
    log_gamma = self.param("log_gamma", nn.initializers.zeros, (c,))
    beta = self.param("beta", nn.initializers.zeros, (c,))
    if train and not inverse and not initializing:
      mean, var = batch_stats()
      m = self.momentum
      running_mean.value = m * running_mean.value + (1 - m) * jax.lax.stop_gradient(mean)
      running_var.value = m * running_var.value + (1 - m) * jax.lax.stop_gradient(var)
    else:
      mean, var = running_mean.value, running_var.value
    log_scale = log_gamma - 0.5 * jnp.log(var + self.epsilon)
    log_det = _positions(x) * jnp.sum(log_scale) * jnp.ones(x.shape[0])
    if inverse:
      return (x - beta) * jnp.exp(-log_scale) + mean, -log_det
    return (x - mean) * jnp.exp(log_scale) + beta, log_det

  def forward(self, x: Array, train: bool = False) -> tuple[Array, Array]:
    """x -> (y, log |det ∂y/∂x|); train=True: batch statistics (mutable batch_stats)."""
    return self(x, inverse=False, train=train)

  def inverse(self, y: Array) -> Array:
    """y -> x with the running averages."""
    return self(y, inverse=True)[0]


class ActNorm(nn.Module):
  """Activation normalization (Kingma & Dhariwal 2018): y = (x + b)·exp(log s).

  Data-dependent initialisation: b = −mean and log s = −log(std + 1e-6) per
  channel of the batch `init` sees (Glow's code), so the output starts at zero
  mean and unit variance.
  """

  @nn.compact
  def __call__(self, x: Array, inverse: bool = False, train: bool = False
               ) -> tuple[Array, Array]:
    del train
    axes = _channel_axes(x)
    c = x.shape[-1]

    def init_bias(key, shape):
      del key
      if inverse:  # parameters only come from data in the forward direction
        return jnp.zeros(shape)
      return -collectives.mean_over_devices(jnp.mean(x, axes))

    def init_log_scale(key, shape):
      del key
      if inverse:
        return jnp.zeros(shape)
      mean = collectives.mean_over_devices(jnp.mean(x, axes))
      var = collectives.mean_over_devices(jnp.mean(jnp.square(x - mean), axes))
      return -jnp.log(jnp.sqrt(var) + 1e-6)

    bias = self.param("bias", init_bias, (c,))
    log_scale = self.param("log_scale", init_log_scale, (c,))
    log_det = _positions(x) * jnp.sum(log_scale) * jnp.ones(x.shape[0])
    if inverse:
      return x * jnp.exp(-log_scale) - bias, -log_det
    return (x + bias) * jnp.exp(log_scale), log_det

  def forward(self, x: Array, train: bool = False) -> tuple[Array, Array]:
    """x -> (y, log |det ∂y/∂x|)."""
    return self(x, inverse=False, train=train)

  def inverse(self, y: Array) -> Array:
    """y -> x."""
    return self(y, inverse=True)[0]


def check_normalization(normalization: str) -> None:
  """A one-line error for an unknown normalization."""
  if normalization not in NORMALIZATIONS:
    raise ConfigError(f"unknown normalization {normalization!r}; valid: "
                      f"{choices(NORMALIZATIONS)}")


def _norm_layer(normalization: str, momentum: float, epsilon: float, name: str):
  check_normalization(normalization)
  if normalization == "batch":
    return BatchNorm(momentum=momentum, epsilon=epsilon, name=name)
  if normalization == "actnorm":
    return ActNorm(name=name)
  return None


def multiscale_plan(shape: Sequence[int], num_scales: int) -> list[tuple[str, Any]]:
  """The ordered steps of the multi-scale architecture (Dinh et al. 2017, §3.6).

  ("coupling", (mask, parity)), ("squeeze", None) and ("factor", channels
  factored out); one-line ConfigError when `shape` does not fit `num_scales`.
  """
  h, w, c = shape
  if num_scales < 1:
    raise ConfigError(f"num_scales must be >= 1, got {num_scales}")
  factor = 2 ** (num_scales - 1)
  if h % factor or w % factor:
    raise ConfigError(f"images of {h}x{w} do not fit {num_scales} scales: height and "
                      f"width must be divisible by {factor}; lower model.num_scales")
  plan: list[tuple[str, Any]] = []
  for _ in range(num_scales - 1):
    plan += [("coupling", ("checkerboard", i % 2)) for i in range(3)]
    plan.append(("squeeze", None))
    c *= 4
    plan += [("coupling", ("channel", i % 2)) for i in range(3)]
    plan.append(("factor", c // 2))
    c -= c // 2
  plan += [("coupling", ("checkerboard", i % 2)) for i in range(4)]
  return plan


class _Chain(nn.Module):
  """Shared forward/inverse of a chain of invertible steps (see `RealNVP`)."""

  def _plan(self) -> list[tuple[str, Any]]:
    raise NotImplementedError

  def _layer_settings(self) -> dict[str, Any]:
    raise NotImplementedError

  def setup(self):
    layers = []
    norms = []
    index = 0
    for kind, arg in self._plan():
      if kind != "coupling":
        continue
      mask, parity = arg
      norms.append(_norm_layer(self.normalization, self.momentum, self.epsilon,
                               f"norm{index}"))
      layers.append(AffineCoupling(mask=mask, parity=parity, name=f"coupling{index}",
                                   **self._layer_settings()))
      index += 1
    self.couplings = layers
    self.norms = norms

  def forward(self, x: Array, train: bool = False) -> tuple[Array, Array]:
    """x [B, *shape] -> (z [B, D], log |det ∂z/∂x| [B])."""
    log_det = jnp.zeros(x.shape[0])
    latents = []
    index = 0
    for kind, arg in self._plan():
      if kind == "coupling":
        if self.norms[index] is not None:
          x, ld = self.norms[index](x, train=train)
          log_det = log_det + ld
        x, ld = self.couplings[index](x, train=train)
        log_det = log_det + ld
        index += 1
      elif kind == "squeeze":
        x = squeeze(x)
      else:
        latents.append(x[..., :arg].reshape(x.shape[0], -1))
        x = x[..., arg:]
    latents.append(x.reshape(x.shape[0], -1))
    return jnp.concatenate(latents, axis=-1), log_det

  def _shapes(self) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    """The shapes of the factored-out latents, in order, and of the last part."""
    shape = tuple(self.shape)
    factored = []
    for kind, arg in self._plan():
      if kind == "squeeze":
        h, w, c = shape
        shape = (h // 2, w // 2, 4 * c)
      elif kind == "factor":
        factored.append(shape[:-1] + (arg,))
        shape = shape[:-1] + (shape[-1] - arg,)
    return factored, shape

  def inverse(self, z: Array) -> Array:
    """z [B, D] -> x [B, *shape], with eval-mode (running) statistics."""
    batch = z.shape[0]
    factored, last = self._shapes()
    offsets = list(itertools.accumulate(math.prod(s) for s in factored))
    parts = jnp.split(z, offsets, axis=-1)
    parts = [p.reshape((batch,) + s) for p, s in zip(parts, factored + [last])]
    x = parts.pop()
    index = len(self.couplings)
    for kind, _ in reversed(self._plan()):
      if kind == "coupling":
        index -= 1
        x, _ = self.couplings[index](x, inverse=True)
        if self.norms[index] is not None:
          x, _ = self.norms[index](x, inverse=True)
      elif kind == "squeeze":
        x = unsqueeze(x)
      else:  # "factor": the factored-out part goes back in front
        x = jnp.concatenate([parts.pop(), x], axis=-1)
    return x

  def __call__(self, x: Array, train: bool = False) -> tuple[Array, Array]:
    return self.forward(x, train=train)


class RealNVP(_Chain):
  """The multi-scale RealNVP on images [H, W, C] (Dinh et al. 2017, §3.6).

  forward(x [B, H, W, C], train) -> (z [B, H·W·C], log_det [B]);
  inverse(z) -> x.
  """

  shape: tuple[int, int, int]
  num_scales: int = 2
  features: int = 32
  blocks: int = 2
  normalization: str = "batch"
  momentum: float = 0.9
  epsilon: float = 1e-5

  def _plan(self):
    return multiscale_plan(self.shape, self.num_scales)

  def _layer_settings(self):
    return dict(features=self.features, blocks=self.blocks)


class MLPFlow(_Chain):
  """Affine couplings with alternating masks on vectors [D] (MLP networks)."""

  shape: tuple[int]
  num_couplings: int = 8
  hidden: tuple[int, ...] = (256, 256)
  normalization: str = "batch"
  momentum: float = 0.9
  epsilon: float = 1e-5

  def _plan(self):
    if self.shape[0] < 2:
      raise ConfigError(f"a coupling flow needs at least 2 dimensions, got {self.shape[0]}")
    return [("coupling", ("alternate", i % 2)) for i in range(self.num_couplings)]

  def _layer_settings(self):
    return dict(hidden=tuple(self.hidden))


__all__ = ["ActNorm", "AffineCoupling", "BatchNorm", "CouplingMLP", "MLPFlow",
           "MASKS", "NORMALIZATIONS", "RealNVP", "ResNet", "alternate_mask",
           "check_normalization", "checkerboard_mask", "multiscale_plan", "squeeze",
           "unsqueeze"]
