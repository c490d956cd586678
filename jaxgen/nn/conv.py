"""Convolutional encoder and decoder for small images (digits, MNIST, CIFAR)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

from jaxgen.errors import ConfigError
from jaxgen.nn.mlp import check_norm
from jaxgen.nn.upsample import PhaseConvTranspose
from jaxgen.nn import channels_last

Array = jax.Array

NORMS = ("none", "layer", "group")
# Wu & He 2018 use 32 groups; fewer when the channel count is not a multiple.
_GROUPS = 32


def _norm(norm: str, channels: int, name: str) -> Callable[[Array], Array]:
  """The normalization layer `norm` names, or the identity for 'none'."""
  if norm == "layer":
    return nn.LayerNorm(name=name)
  if norm == "group":
    return nn.GroupNorm(num_groups=math.gcd(_GROUPS, channels), name=name)
  return lambda x: x


def check_image_shape(shape: Sequence[int], levels: int) -> None:
  """Raises ConfigError unless a conv decoder with `levels` upsamplings fits shape."""
  try:
    # operator.index takes numpy integers too (data specs often hold them).
    shape = tuple(operator.index(n) for n in shape)
  except TypeError:
    shape = tuple(shape)
    valid = False
  else:
    valid = len(shape) == 3 and all(n > 0 for n in shape)
  if not valid:
    raise ConfigError(
        f"conv decoder needs an image shape (height, width, channels); got "
        f"{shape}; use the mlp architecture for non-image data")
  if levels < 1:
    raise ConfigError(
        f"conv decoder needs at least one upsampling level; got {levels} "
        f"(model.channels is empty)")
  factor = 2**levels
  height, width, _ = shape
  if height % factor or width % factor:
    raise ConfigError(
        f"conv decoder with {levels} upsampling levels needs height and width "
        f"divisible by {factor}; got {shape}; use fewer levels (model.channels) "
        f"or the mlp architecture")


class ConvEncoder(nn.Module):
  """Stride-2 SAME convs, flatten, Dense: [N, H, W, C] -> [N, features]."""

  features: int
  channels: Sequence[int] = (32, 64)
  kernel_size: int = 3
  activation: Callable[[Array], Array] = nn.relu
  norm: str = "none"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Encodes images x: [N, H, W, C] into [N, features]."""
    check_norm(self.norm, NORMS, "ConvEncoder")
    for i, width in enumerate(self.channels):
      x = channels_last.Conv(width, (self.kernel_size, self.kernel_size), strides=2,
                  padding="SAME", name=f"conv_{i}")(x)
      x = _norm(self.norm, width, f"norm_{i}")(x)
      x = self.activation(x)
    x = x.reshape(x.shape[:-3] + (-1,))
    return nn.Dense(self.features, name="dense")(x)


class ConvDecoder(nn.Module):
  """Dense, reshape, stride-2 upsampling levels, a final stride-1 conv.

  z: [N, latent] -> [N, H, W, C] with (H, W, C) = output_shape. The Dense
  projects to (H / 2^n, W / 2^n, channels[0]) with n = len(channels); level i
  upsamples by 2 to channels[i + 1] (the last level keeps channels[-1]). The
  final conv has no activation: it outputs logits or means.
  """

  output_shape: tuple[int, int, int]
  channels: Sequence[int] = (64, 32)
  kernel_size: int = 4
  activation: Callable[[Array], Array] = nn.relu
  norm: str = "none"
  output_kernel_size: int = 3

  @nn.compact
  def __call__(self, z: Array) -> Array:
    """Decodes z: [N, latent] into [N, H, W, C]."""
    check_norm(self.norm, NORMS, "ConvDecoder")
    levels = len(self.channels)
    check_image_shape(self.output_shape, levels)
    height, width, out_channels = self.output_shape
    factor = 2**levels
    base = (height // factor, width // factor, self.channels[0])

    x = nn.Dense(math.prod(base), name="dense")(z)
    x = x.reshape(x.shape[:-1] + base)
    x = _norm(self.norm, base[-1], "norm_dense")(x)
    x = self.activation(x)
    for i in range(levels):
      features = self.channels[min(i + 1, levels - 1)]
      # The phase form, not nn.ConvTranspose: same result, far cheaper
      # gradients on CPU (see upsample.py).
      x = PhaseConvTranspose(features, (self.kernel_size, self.kernel_size),
                             strides=(2, 2), padding="SAME", name=f"up_{i}")(x)
      x = _norm(self.norm, features, f"norm_{i}")(x)
      x = self.activation(x)
    size = (self.output_kernel_size, self.output_kernel_size)
    return channels_last.Conv(out_channels, size, padding="SAME", name="output")(x)
