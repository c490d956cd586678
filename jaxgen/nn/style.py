"""A small style-based generator (Karras et al. 2019, StyleGAN), for small images.

The pieces of the paper at small scale: a mapping network z -> w (an MLP on the
pixel-normalized code), a learned constant input, and per resolution two 3x3
convolutions, each followed by per-pixel noise with a learned per-channel
strength, a LeakyReLU and AdaIN, which normalizes each channel of each example
and gives it the scale and bias of an affine map of w. Upsampling is nearest
neighbour followed by the convolution (the paper uses bilinear filtering; no
transposed convolution is needed). Left out: progressive growing, style mixing
regularisation, the truncation trick, equalized learning rate.

  gen = StyleGenerator(output_shape=(8, 8, 1), channels=(64, 32))
  variables = gen.init({"params": k1, "noise": k2}, z)
  x = gen.apply(variables, z, rngs={"noise": k3})       # [N, 8, 8, 1] in [-1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.nn.conv import check_image_shape
from jaxgen.nn import channels_last

Array = jax.Array


def pixel_norm(x: Array, epsilon: float = 1e-8) -> Array:
  """x / rms(x) over the last axis (Karras et al. 2018), applied to z."""
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + epsilon)


class MappingNetwork(nn.Module):
  """z: [N, latent] -> w: [N, style_dim]; Dense + LeakyReLU(0.2) layers."""

  style_dim: int = 64
  num_layers: int = 3

  @nn.compact
  def __call__(self, z: Array) -> Array:
    """Maps codes to styles."""
    if self.num_layers < 1:
      raise ConfigError(f"MappingNetwork needs at least one layer, got {self.num_layers}")
    w = pixel_norm(z)
    for i in range(self.num_layers):
      w = nn.leaky_relu(nn.Dense(self.style_dim, name=f"dense_{i}")(w), 0.2)
    return w


class AdaIN(nn.Module):
  """Adaptive instance normalization: x [N, H, W, C], w [N, S] -> [N, H, W, C].

  Each channel of each example is normalized over H, W, then scaled by
  1 + a(w) and shifted by b(w), with (a, b) one Dense layer of w (zero-
  initialised, so training starts from plain instance normalization).
  """

  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: Array, w: Array) -> Array:
    """Normalizes x per example and channel, then applies w's style."""
    channels = x.shape[-1]
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.var(x, axis=(1, 2), keepdims=True)
    x = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    style = nn.Dense(2 * channels, kernel_init=nn.initializers.zeros,
                     name="style")(w)
    scale, bias = jnp.split(style, 2, axis=-1)
    return x * (1.0 + scale[:, None, None, :]) + bias[:, None, None, :]


class NoiseInjection(nn.Module):
  """x + strength[c] * noise[n, h, w]: one noise image per example, per layer.

  The noise is drawn per example from the "noise" RNG stream (device-count
  independent, see jaxgen.core.rng); `enabled=False` adds nothing.
  """

  enabled: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Adds scaled per-pixel noise to x: [N, H, W, C]."""
    strength = self.param("strength", nn.initializers.zeros, (x.shape[-1],))
    if not self.enabled:
      return x
    noise = rng.normal(self.make_rng("noise"), x.shape[:3] + (1,), x.dtype)
    return x + strength * noise


class StyleGenerator(nn.Module):
  """z: [N, latent] -> images [N, H, W, C] in [-1, 1] (tanh) or raw.

  `channels[i]` is the width at resolution level i; level 0 is the learned
  constant of size (H, W) / 2^(len(channels) - 1), each later level doubles
  the size. `noise=False` turns the per-layer noise off (a deterministic
  generator). `train` and `num_reference` exist for interface parity with
  DCGANGenerator; there is no batch normalization here.
  """

  output_shape: tuple[int, int, int]
  channels: Sequence[int] = (64, 32)
  style_dim: int = 64
  mapping_layers: int = 3
  noise: bool = True
  output_activation: str = "tanh"

  @nn.compact
  def __call__(self, z: Array, *, train: bool = True, num_reference: int = 0) -> Array:
    """Generates images from codes z: [N, latent]."""
    del train
    if num_reference:
      raise ConfigError("StyleGenerator has no batch normalization to make "
                        "virtual; turn tricks.virtual_batch_norm off")
    if len(self.channels) < 2:
      raise ConfigError(f"StyleGenerator needs at least two resolution levels "
                        f"(channels), got {tuple(self.channels)}")
    if self.output_activation not in ("tanh", "none"):
      raise ConfigError(f"StyleGenerator output_activation {self.output_activation!r} "
                        f"is not one of 'tanh' or 'none'")
    levels = len(self.channels) - 1
    check_image_shape(self.output_shape, levels)
    height, width, out_channels = self.output_shape
    base = (height // 2**levels, width // 2**levels, self.channels[0])
    w = MappingNetwork(self.style_dim, self.mapping_layers, name="mapping")(z)
    const = self.param("constant", nn.initializers.ones, base)
    x = jnp.broadcast_to(const, (z.shape[0],) + base)

    def layer(x: Array, name: str) -> Array:
      x = NoiseInjection(self.noise, name=f"{name}_noise")(x)
      return AdaIN(name=f"{name}_adain")(nn.leaky_relu(x, 0.2), w)

    x = layer(x, "level_0_a")
    x = channels_last.Conv(self.channels[0], (3, 3), padding="SAME", name="level_0_conv")(x)
    x = layer(x, "level_0_b")
    for i in range(1, levels + 1):
      n, h, wd, c = x.shape
      x = jax.image.resize(x, (n, 2 * h, 2 * wd, c), method="nearest")
      for part in ("a", "b"):
        x = channels_last.Conv(self.channels[i], (3, 3), padding="SAME",
                    name=f"level_{i}_conv_{part}")(x)
        x = layer(x, f"level_{i}_{part}")
    x = channels_last.Conv(out_channels, (1, 1), name="to_image")(x)
    return jnp.tanh(x) if self.output_activation == "tanh" else x
