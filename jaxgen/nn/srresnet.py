"""SRResNet generator and SRGAN discriminator (Ledig et al. 2017, figure 4), small.

Generator, low-res [N, h, w, C] -> [N, h·s, w·s, C]:
  conv 9x9 + PReLU -> B residual blocks (conv 3x3, BN, PReLU, conv 3x3, BN, + skip)
  -> conv 3x3 + BN, + the global skip from the first conv -> one sub-pixel block per
  factor of the scale (conv 3x3 to r²·width channels, depth-to-space by r, PReLU)
  -> conv 9x9 to C channels -> tanh, mapped onto the data's value range.
Discriminator, [N, H, W, C] -> [N] score:
  conv 3x3 + LeakyReLU(0.2), then per width: conv 3x3 stride 1 and conv 3x3
  stride 2, each + BN + LeakyReLU (the first block's stride-1 conv omitted, as
  in the paper) -> Dense(hidden) + LeakyReLU -> Dense(1).

`norm` is "batch" (the paper) or "none". BatchNorm keeps running statistics
with momentum 0.9 (PyTorch's default, written 0.1 there; flax's
default 0.99 lags behind short CPU runs); its batch statistics are averaged
over the pmap axis `axis_name` when one is given, so a batch spread over
devices gives the one-device statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.upsample import depth_to_space
from jaxgen.nn import channels_last

Array = jax.Array

NORMS = ("batch", "none")


def scale_factors(scale: int) -> tuple[int, ...]:
  """The sub-pixel steps of an upscaling factor: 2 -> (2,), 4 -> (2, 2), 3 -> (3,)."""
  factors = []
  while scale % 2 == 0 and scale > 1:
    factors.append(2)
    scale //= 2
  if scale == 3:
    factors.append(3)
  elif scale != 1:
    raise ValueError(f"the scale must be 2^k or 3·2^k, got {scale}")
  return tuple(factors)


def _norm(norm: str, train: bool, axis_name: str | None, name: str):
  if norm == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis_name,
                        name=name)
  return lambda x: x


class SubPixelUpsample(nn.Module):
  """conv 3x3 to r²·features channels, depth-to-space by r (Shi et al. 2016), PReLU."""

  features: int
  factor: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = channels_last.Conv(self.features * self.factor**2, (3, 3), padding="SAME", name="conv")(x)
    return nn.PReLU(negative_slope_init=0.25, name="prelu")(depth_to_space(x, self.factor))


class SRResNet(nn.Module):
  """The SRResNet/SRGAN generator: low-res [N, h, w, C] -> [N, h·scale, w·scale, C]."""

  scale: int
  out_channels: int
  value_range: tuple[float, float]
  features: int = 64
  blocks: int = 16
  norm: str = "batch"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    low, high = self.value_range
    x = 2.0 * (x - low) / (high - low) - 1.0          # the network sees [-1, 1]
    h = channels_last.Conv(self.features, (9, 9), padding="SAME", name="head")(x)
    skip = h = nn.PReLU(negative_slope_init=0.25, name="head_prelu")(h)
    for i in range(self.blocks):
      r = channels_last.Conv(self.features, (3, 3), padding="SAME", use_bias=self.norm != "batch",
                  name=f"block{i}_conv0")(h)
      r = _norm(self.norm, train, self.axis_name, f"block{i}_norm0")(r)
      r = nn.PReLU(negative_slope_init=0.25, name=f"block{i}_prelu")(r)
      r = channels_last.Conv(self.features, (3, 3), padding="SAME", use_bias=self.norm != "batch",
                  name=f"block{i}_conv1")(r)
      h = h + _norm(self.norm, train, self.axis_name, f"block{i}_norm1")(r)
    h = channels_last.Conv(self.features, (3, 3), padding="SAME", use_bias=self.norm != "batch",
                name="trunk_conv")(h)
    h = skip + _norm(self.norm, train, self.axis_name, "trunk_norm")(h)
    for i, factor in enumerate(scale_factors(self.scale)):
      h = SubPixelUpsample(self.features, factor, name=f"upsample{i}")(h)
    y = channels_last.Conv(self.out_channels, (9, 9), padding="SAME", name="tail")(h)
    return low + (high - low) * (jnp.tanh(y) + 1.0) / 2.0


class SRDiscriminator(nn.Module):
  """The SRGAN discriminator, small: images [N, H, W, C] -> scores [N]."""

  value_range: tuple[float, float]
  channels: Sequence[int] = (64, 128, 256, 512)
  hidden: int = 1024
  norm: str = "batch"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    low, high = self.value_range
    h = 2.0 * (x - low) / (high - low) - 1.0
    h = nn.leaky_relu(channels_last.Conv(self.channels[0], (3, 3), padding="SAME", name="head")(h), 0.2)
    for i, width in enumerate(self.channels):
      for j, stride in enumerate((1, 2)):
        if i == 0 and j == 0:   # the paper's first block has only its stride-2 conv
          continue
        h = channels_last.Conv(width, (3, 3), strides=stride, padding="SAME",
                    use_bias=self.norm != "batch", name=f"block{i}_conv{j}")(h)
        h = _norm(self.norm, train, self.axis_name, f"block{i}_norm{j}")(h)
        h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)
    h = nn.leaky_relu(nn.Dense(self.hidden, name="hidden")(h), 0.2)
    return nn.Dense(1, name="score")(h)[:, 0]
