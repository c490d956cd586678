"""DCGAN generator and discriminator (Radford et al. 2016).

The paper's architecture guidelines: strided convolutions instead of pooling
(fractionally strided ones in the generator), BatchNorm in both networks (not
on the generator's output nor the discriminator's input), ReLU in the generator
with tanh at its output, LeakyReLU (slope 0.2) in the discriminator, and only one
dense layer at each end (the generator's projection of z, the discriminator's
output). Upsampling is `PhaseConvTranspose`, the same function as
`nn.ConvTranspose` with a far cheaper backward pass on CPU.

  gen = DCGANGenerator(output_shape=(28, 28, 1), channels=(128, 64))
  variables = gen.init(key, z, train=False)      # params and batch_stats
  x, updates = gen.apply(variables, z, train=True, mutable=["batch_stats"])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError, choices
from jaxgen.nn.conv import check_image_shape
from jaxgen.nn.upsample import PhaseConvTranspose
from jaxgen.nn import channels_last

Array = jax.Array

GENERATOR_NORMS = ("batch", "virtual", "layer", "none")
DISCRIMINATOR_NORMS = ("batch", "layer", "none")
# BatchNorm momentum of the running averages used at sampling time; flax's
# 0.99 lags far behind a GAN generator that changes every step.
BATCH_NORM_MOMENTUM = 0.9


def _check(norm: str, valid: Sequence[str], where: str) -> None:
  if norm not in valid:
    raise ConfigError(f"{where} norm {norm!r} is not one of {choices(valid)}")


class VirtualBatchNorm(nn.Module):
  """Virtual batch normalization (Salimans et al. 2016, section 3.4).

  The input's first `num_reference` rows are a reference batch, chosen once at
  the start of training, passed through the network with the other rows. The
  reference rows are normalized with the reference batch's own statistics;
  every other row x with the statistics of the reference batch *plus x itself*
  (weights R/(R+1) and 1/(R+1)), so an example's output never depends on the
  other examples of its batch. Statistics are per feature over all leading axes
  but the last: x: [R + N, ..., features].
  """

  num_reference: int
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Normalizes x: [R + N, ..., C]; rows [:R] are the reference batch."""
    r = self.num_reference
    if r < 1 or x.shape[0] <= r:
      raise ValueError(f"VirtualBatchNorm needs 1 <= num_reference < batch; got "
                       f"num_reference={r} for a batch of {x.shape[0]}")
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    inner = tuple(range(1, x.ndim - 1))  # spatial axes, if any
    # Per-example first and second moments over the spatial axes.
    m1 = jnp.mean(x, axis=inner) if inner else x
    m2 = jnp.mean(x * x, axis=inner) if inner else x * x
    ref_m1, ref_m2 = jnp.mean(m1[:r], axis=0), jnp.mean(m2[:r], axis=0)
    w = 1.0 / (r + 1.0)
    mean = jnp.concatenate([jnp.broadcast_to(ref_m1, (r, features)),
                            w * m1[r:] + (1 - w) * ref_m1], axis=0)
    second = jnp.concatenate([jnp.broadcast_to(ref_m2, (r, features)),
                              w * m2[r:] + (1 - w) * ref_m2], axis=0)
    var = jnp.maximum(second - mean * mean, 0.0)
    shape = (x.shape[0],) + (1,) * len(inner) + (features,)
    normalized = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape)
                                                           + self.epsilon)
    return normalized * scale + bias


def normalization(kind: str, train: bool, num_reference: int, axis_name: str | None,
                  name: str):
  """The normalization layer `kind` names, as a function of x (identity for 'none').

  'batch' (running averages with BATCH_NORM_MOMENTUM, statistics over
  `axis_name` under pmap), 'virtual' (the first `num_reference` rows are the
  reference batch), 'layer' or 'none'. Shared by the DCGAN networks and the
  GAN family's MLPs.
  """
  if kind == "batch":
    return lambda x: nn.BatchNorm(use_running_average=not train,
                                  momentum=BATCH_NORM_MOMENTUM,
                                  axis_name=axis_name, name=name)(x)
  if kind == "virtual":
    return lambda x: VirtualBatchNorm(num_reference, name=name)(x)
  if kind == "layer":
    return lambda x: nn.LayerNorm(name=name)(x)
  return lambda x: x


class DCGANGenerator(nn.Module):
  """z: [N, latent] -> images [N, H, W, C] (tanh output in [-1, 1], or logits).

  One Dense projects z to (H / 2^L, W / 2^L, channels[0]) with L =
  len(channels); levels 1..L-1 upsample by 2 to channels[i]; the last level
  upsamples to the image's C channels; layers followed by batch or virtual
  batch norm have no bias. With norm='virtual' the first
  `num_reference` rows of z are the reference batch (see VirtualBatchNorm).
  `axis_name` makes BatchNorm statistics global under `pmap`.
  """

  output_shape: tuple[int, int, int]
  channels: Sequence[int] = (128, 64)
  kernel_size: int = 4
  norm: str = "batch"
  output_activation: str = "tanh"  # or "none"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: Array, *, train: bool = True, num_reference: int = 0) -> Array:
    """Generates images from codes z: [N, latent]."""
    _check(self.norm, GENERATOR_NORMS, "DCGANGenerator")
    if self.output_activation not in ("tanh", "none"):
      raise ConfigError(f"DCGANGenerator output_activation "
                        f"{self.output_activation!r} is not one of 'tanh' or 'none'")
    levels = len(self.channels)
    check_image_shape(self.output_shape, levels)
    height, width, out_channels = self.output_shape
    factor = 2**levels
    base = (height // factor, width // factor, self.channels[0])
    # A bias right before batch (or virtual batch) norm is removed by the
    # normalization: it would only collect float noise (which Adam amplifies).
    bias = self.norm not in ("batch", "virtual")
    x = nn.Dense(math.prod(base), use_bias=bias, name="project")(z)
    x = x.reshape((z.shape[0],) + base)
    x = nn.relu(normalization(self.norm, train, num_reference, self.axis_name,
                              "norm_project")(x))
    size = (self.kernel_size, self.kernel_size)
    for i in range(1, levels):
      x = PhaseConvTranspose(self.channels[i], size, strides=(2, 2), padding="SAME",
                             use_bias=bias, name=f"up_{i - 1}")(x)
      x = nn.relu(normalization(self.norm, train, num_reference, self.axis_name,
                                f"norm_{i - 1}")(x))
    x = PhaseConvTranspose(out_channels, size, strides=(2, 2), padding="SAME",
                           name=f"up_{levels - 1}")(x)
    return jnp.tanh(x) if self.output_activation == "tanh" else x


class DCGANDiscriminator(nn.Module):
  """images [N, H, W, C] -> (outputs [N, outputs], features [N, F]).

  Stride-2 convs with LeakyReLU(0.2), normalization on every level but the
  first (the paper leaves the discriminator's input layer unnormalized), a
  flatten, and one Dense layer to `outputs` values. Layers followed by batch
  norm have no bias (the normalization removes it). The flattened features are
  returned too (feature matching, extra heads). With outputs=0 only the
  features are computed and outputs is an empty [N, 0] array.
  """

  channels: Sequence[int] = (64, 128)
  kernel_size: int = 4
  norm: str = "batch"
  outputs: int = 1
  negative_slope: float = 0.2
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool = True) -> tuple[Array, Array]:
    """Scores images x: [N, H, W, C]."""
    _check(self.norm, DISCRIMINATOR_NORMS, "DCGANDiscriminator")
    if x.ndim != 4:
      raise ValueError(f"DCGANDiscriminator needs images [N, H, W, C], got {x.shape}")
    size = (self.kernel_size, self.kernel_size)
    for i, width in enumerate(self.channels):
      normalized = i > 0 and self.norm == "batch"
      x = channels_last.Conv(width, size, strides=(2, 2), padding="SAME", use_bias=not normalized,
                  name=f"conv_{i}")(x)
      if i > 0:
        x = normalization(self.norm, train, 0, self.axis_name, f"norm_{i}")(x)
      x = nn.leaky_relu(x, self.negative_slope)
    features = x.reshape(x.shape[0], -1)
    if not self.outputs:
      return jnp.zeros((x.shape[0], 0), x.dtype), features
    return nn.Dense(self.outputs, name="output")(features), features
