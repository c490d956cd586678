"""pix2pix's networks: the U-Net generator and the PatchGAN discriminator.

Architecture only. Both follow Isola et al. 2017, appendix 6.1.2: 4x4
convolutions of stride 2, LeakyReLU(0.2) down, ReLU up, no normalization on
the first encoder layer, the innermost layer and the first discriminator
layer. Dropout is the generator's only noise (no z): a module-free Bernoulli
mask drawn from a key through `jaxgen.core.rng`, so each example's mask comes
from its own key and 1 device draws what 4 do.

  g = UNetGenerator(channels=(32, 64, 128), out_channels=1)
  y = g.apply({"params": p}, source, train=True, dropout_key=key)  # [B, H, W, 1] in [-1, 1]
  d = PatchDiscriminator(channels=(32, 64), kernel=3)
  logits = d.apply({"params": q}, source, y)        # [B, h, w, 1], one per patch
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.core import rng
from jaxgen.nn import channels_last

Array = jax.Array


def normalization(kind: str, train: bool, axis_name: str | None, name: str):
  """'instance' (per example and channel, learned scale and offset), 'batch' or 'none'."""
  if kind == "instance":
    return nn.InstanceNorm(name=name)
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis_name,
                        name=name)
  return lambda x: x


def dropout(h: Array, key: Array | None, rate: float) -> Array:
  """Inverted dropout with a per-example mask from `key` (identity without a key)."""
  if key is None or rate == 0.0:
    return h
  keep = rng.bernoulli(key, 1.0 - rate, h.shape)
  return jnp.where(keep, h / (1.0 - rate), 0.0).astype(h.dtype)


class UNetGenerator(nn.Module):
  """source [B, H, W, C] -> [B, H, W, out_channels] in [-1, 1] (tanh).

  Encoder level i: (LeakyReLU unless i = 0), conv 4x4 stride 2 to channels[i],
  (norm unless first or innermost). Decoder level i (innermost first): ReLU,
  transposed conv 4x4 stride 2 to the width of encoder level i − 1 (cropped to
  its size, so odd sizes such as 7x7 work), norm, dropout in the first
  `dropout_layers` decoder levels, then concatenation with encoder level i − 1
  (the skip). The last level maps to out_channels, then tanh.
  """

  channels: Sequence[int]
  out_channels: int
  norm: str = "instance"
  dropout: float = 0.5
  dropout_layers: int = 3
  axis_name: str | None = None

  @nn.compact
  def __call__(self, source: Array, *, train: bool, dropout_key: Array | None = None
               ) -> Array:
    levels = len(self.channels)
    downs = []
    h = source
    for i, width in enumerate(self.channels):
      if i > 0:
        h = nn.leaky_relu(h, 0.2)
      normed = 0 < i < levels - 1
      # No bias before a normalization: it would cancel it (zero gradient, which
      # Adam would turn into steps of rounding noise).
      h = channels_last.Conv(width, (4, 4), strides=2, padding="SAME", use_bias=not normed or
                  self.norm == "none", name=f"down_{i}")(h)
      if normed:
        h = normalization(self.norm, train, self.axis_name, f"down_norm_{i}")(h)
      downs.append(h)
    keys = None
    if dropout_key is not None:
      keys = rng.split(dropout_key, *(f"up_{i}" for i in range(1, levels)))
    for i in reversed(range(1, levels)):
      skip = downs[i - 1]
      h = nn.ConvTranspose(skip.shape[-1], (4, 4), strides=(2, 2), padding="SAME",
                           use_bias=self.norm == "none", name=f"up_{i}")(nn.relu(h))
      h = h[:, :skip.shape[1], :skip.shape[2]]
      h = normalization(self.norm, train, self.axis_name, f"up_norm_{i}")(h)
      if levels - 1 - i < self.dropout_layers:
        h = dropout(h, None if keys is None else keys[f"up_{i}"], self.dropout)
      h = jnp.concatenate([skip, h], axis=-1)
    h = nn.ConvTranspose(self.out_channels, (4, 4), strides=(2, 2), padding="SAME",
                         name="up_0")(nn.relu(h))
    return jnp.tanh(h[:, :source.shape[1], :source.shape[2]])


def receptive_field(kernel: int, num_hidden: int) -> int:
  """The side of the input patch one PatchGAN output sees (padding aside).

  Hidden layers 1..num_hidden−1 have stride 2, the last hidden layer and the
  output stride 1: r ← (r − 1)·stride + kernel from the output back
  (70 for kernel 4 and 4 hidden layers, Isola et al.'s 70x70 PatchGAN).
  """
  strides = [2] * (num_hidden - 1) + [1, 1]
  field = 1
  for stride in reversed(strides):
    field = (field - 1) * stride + kernel
  return field


class PatchDiscriminator(nn.Module):
  """(source, image) [B, H, W, C + C'] -> a logit per patch [B, h, w, 1].

  Conv(kernel, stride 2) for all widths but the last, which has stride 1,
  LeakyReLU(0.2) after each, norm after all but the first; a 1-channel
  stride-1 convolution on top. Each output sees a `receptive_field` square.
  """

  channels: Sequence[int]
  kernel: int = 4
  norm: str = "instance"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, source: Array, image: Array, *, train: bool = True) -> Array:
    h = jnp.concatenate([source, image], axis=-1)
    k = (self.kernel, self.kernel)
    for i, width in enumerate(self.channels):
      stride = 2 if i < len(self.channels) - 1 else 1
      h = channels_last.Conv(width, k, strides=stride, padding="SAME",
                  use_bias=i == 0 or self.norm == "none", name=f"conv_{i}")(h)
      if i > 0:
        h = normalization(self.norm, train, self.axis_name, f"norm_{i}")(h)
      h = nn.leaky_relu(h, 0.2)
    return channels_last.Conv(1, k, strides=1, padding="SAME", name="logits")(h)
