"""Progressive growing of GANs (Karras et al. 2018): layers and the two networks.

Both networks are written for one *stage* at a time: stage s works at
resolution 4·2^s. The stage is a static Python int (each stage is its own
program), the fade-in weight α is an array (data), so one compiled program
serves a whole stage, fade-in and stabilisation alike.

  G at stage s: z -> pixel norm -> dense to 4x4 -> conv 3x3 -> [upsample (nearest),
    conv 3x3, conv 3x3] per level 1..s -> toRGB_s (1x1); while fading in,
    (1 - α) · upsample(toRGB_{s-1}(h_{s-1})) + α · toRGB_s(h_s).
  D at stage s: fromRGB_s (1x1) -> [conv 3x3, conv 3x3, average pool] per level
    s..1 -> minibatch stddev -> conv 3x3 -> dense -> dense to one score; while
    fading in, the first level's output is (1 - α) · fromRGB_{s-1}(avgpool(x)) +
    α · block_s(fromRGB_s(x)).

The stabilisers are switches: equalized learning rate (weights stored as
N(0, 1), scaled at run time by He's constant gain/√fan_in), pixelwise feature
normalisation after every convolution of G, the minibatch standard deviation
feature before D's last block. The parameters of every stage have distinct
names (`input_*`, `block{s}_conv{i}`, `to_rgb{s}`, `from_rgb{s}`, `final_*`), so
the union of the stages' parameters holds them all.

  g = ProgressiveGenerator(channels=(64, 32), out_channels=1)
  x = g.apply(params, z, stage=1, alpha=jnp.float32(0.3))   # [N, 8, 8, 1]
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.core import precision
from jaxgen.nn import channels_last

Array = jax.Array

SQRT2 = math.sqrt(2.0)
LEAKY_SLOPE = 0.2
PIXEL_NORM_EPSILON = 1e-8


def runtime_scale(fan_in: int, gain: float = SQRT2) -> float:
  """He's constant gain/√fan_in (√(2/fan_in) for the default gain √2)."""
  return gain / math.sqrt(fan_in)


def pixel_norm(x: Array, epsilon: float = PIXEL_NORM_EPSILON) -> Array:
  """x / √(mean over channels of x² + ε) at every pixel (Karras et al. 2018, eq. 2)."""
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + epsilon)


def minibatch_stddev(x: Array, group_size: int) -> Array:
  """Appends the minibatch standard deviation as one feature map: [N, H, W, C+1].

  Consecutive groups of `group_size` examples (N must divide; a batch smaller
  than the group is one group): the standard deviation of every feature at
  every pixel over the group (biased, √(var + 1e-8)), averaged over features
  and pixels, is the group's one value, replicated over its examples and
  pixels (Karras et al. 2018, section 3; group size 4 as in their code).
  """
  n, h, w, _ = x.shape
  g = min(group_size, n)
  if n % g:
    raise ValueError(f"minibatch stddev groups of {g} do not divide a batch of {n}")
  y = x.reshape((n // g, g) + x.shape[1:])
  y = y - jnp.mean(y, axis=1, keepdims=True)
  y = jnp.sqrt(jnp.mean(y * y, axis=1) + 1e-8)          # [M, H, W, C]
  y = jnp.repeat(jnp.mean(y, axis=(1, 2, 3)), g)         # [N]
  return jnp.concatenate([x, jnp.broadcast_to(y[:, None, None, None], (n, h, w, 1))],
                         axis=-1)


def upsample(x: Array) -> Array:
  """Nearest-neighbour upsampling by 2: [N, H, W, C] -> [N, 2H, 2W, C]."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample(x: Array) -> Array:
  """2x2 average pooling: [N, H, W, C] -> [N, H/2, W/2, C]."""
  n, h, w, c = x.shape
  return jnp.mean(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def fade(old: Array, new: Array, alpha: Array) -> Array:
  """(1 - α) · old + α · new: exactly `old` at α = 0 and exactly `new` at α = 1."""
  return (1.0 - alpha) * old + alpha * new


def _lrelu(x: Array) -> Array:
  return jax.nn.leaky_relu(x, LEAKY_SLOPE)


@precision.linear_layer
class EqualizedDense(nn.Module):
  """A dense layer whose weights are scaled at run time by gain/√fan_in.

  With `equalized` the stored kernel is N(0, 1) and multiplied by He's
  constant at every call (so Adam's steps, which do not depend on the
  gradient's scale, move every layer's weights by the same relative amount);
  without, the stored kernel is He-initialised N(0, c²) and used as is.
  """

  features: int
  gain: float = SQRT2
  equalized: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = runtime_scale(x.shape[-1], self.gain)
    kernel = self.param("kernel", nn.initializers.normal(1.0 if self.equalized else scale),
                        (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return x @ (kernel * scale if self.equalized else kernel) + bias


@precision.linear_layer
class EqualizedConv(nn.Module):
  """A stride-1 'SAME' convolution with the runtime scale of `EqualizedDense`."""

  features: int
  kernel_size: int = 3
  gain: float = SQRT2
  equalized: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k = self.kernel_size
    scale = runtime_scale(k * k * x.shape[-1], self.gain)
    kernel = self.param("kernel", nn.initializers.normal(1.0 if self.equalized else scale),
                        (k, k, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    w = kernel * scale if self.equalized else kernel
    # Channels-last gradients: pggan's step runs inside `lax.switch`, where
    # XLA:CPU runs JAX's own conv gradients ~20x slower (nn/channels_last.py).
    y = channels_last.conv_general_dilated(x, w, (1, 1), "SAME",
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


class ProgressiveGenerator(nn.Module):
  """G of progressive growing; `channels[s]` is the width at resolution 4·2^s."""

  channels: tuple[int, ...]
  out_channels: int
  pixel_norm: bool = True       # also normalizes z, as in Karras et al.'s code
  equalized: bool = True

  def _norm(self, x: Array) -> Array:
    return pixel_norm(x) if self.pixel_norm else x

  def _conv(self, x: Array, features: int, name: str) -> Array:
    return self._norm(_lrelu(EqualizedConv(features, 3, equalized=self.equalized,
                                           name=name)(x)))

  def _to_rgb(self, x: Array, stage: int) -> Array:
    return EqualizedConv(self.out_channels, 1, gain=1.0, equalized=self.equalized,
                         name=f"to_rgb{stage}")(x)

  @nn.compact
  def __call__(self, z: Array, *, stage: int, alpha: Array | float = 1.0) -> Array:
    """z: [N, latent] -> [N, 4·2^stage, 4·2^stage, out_channels] (linear output)."""
    if not 0 <= stage < len(self.channels):
      raise ValueError(f"stage {stage} outside 0..{len(self.channels) - 1}")
    c0 = self.channels[0]
    # gain √2/4: the dense layer feeds 16 pixels (Karras et al.'s code).
    x = EqualizedDense(16 * c0, gain=SQRT2 / 4, equalized=self.equalized,
                       name="input_dense")(self._norm(z))
    x = self._norm(_lrelu(x.reshape(z.shape[0], 4, 4, c0)))
    x = self._conv(x, c0, "input_conv")
    previous = x
    for s in range(1, stage + 1):
      previous = x
      x = upsample(x)
      x = self._conv(x, self.channels[s], f"block{s}_conv0")
      x = self._conv(x, self.channels[s], f"block{s}_conv1")
    out = self._to_rgb(x, stage)
    if stage == 0:
      return out
    return fade(upsample(self._to_rgb(previous, stage - 1)), out, alpha)


class ProgressiveDiscriminator(nn.Module):
  """D of progressive growing; `channels[s]` is the width at resolution 4·2^s."""

  channels: tuple[int, ...]
  minibatch_group: int = 4      # 0: no minibatch standard deviation feature
  equalized: bool = True

  def _conv(self, x: Array, features: int, name: str, kernel_size: int = 3) -> Array:
    return _lrelu(EqualizedConv(features, kernel_size, equalized=self.equalized,
                                name=name)(x))

  def _from_rgb(self, x: Array, stage: int) -> Array:
    return self._conv(x, self.channels[stage], f"from_rgb{stage}", kernel_size=1)

  def _block(self, x: Array, stage: int) -> Array:
    x = self._conv(x, self.channels[stage], f"block{stage}_conv0")
    x = self._conv(x, self.channels[stage - 1], f"block{stage}_conv1")
    return downsample(x)

  @nn.compact
  def __call__(self, x: Array, *, stage: int, alpha: Array | float = 1.0) -> Array:
    """x: [N, 4·2^stage, 4·2^stage, C] -> scores [N]."""
    if not 0 <= stage < len(self.channels):
      raise ValueError(f"stage {stage} outside 0..{len(self.channels) - 1}")
    h = self._from_rgb(x, stage)
    if stage > 0:
      h = fade(self._from_rgb(downsample(x), stage - 1), self._block(h, stage), alpha)
      for s in range(stage - 1, 0, -1):
        h = self._block(h, s)
    if self.minibatch_group:
      h = minibatch_stddev(h, self.minibatch_group)
    h = self._conv(h, self.channels[0], "final_conv")
    h = _lrelu(EqualizedDense(self.channels[0], equalized=self.equalized,
                              name="final_dense")(h.reshape(h.shape[0], -1)))
    return EqualizedDense(1, gain=1.0, equalized=self.equalized, name="output")(h)[:, 0]
