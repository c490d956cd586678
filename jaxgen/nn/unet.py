"""The diffusion U-Net (Ho et al. 2020, after PixelCNN++ and Wide ResNets).

Sinusoidal timestep embedding, residual blocks with GroupNorm whose bias is
shifted by the time (and class) embedding, self-attention at the feature-map
sizes in `attention_resolutions`, stride-2 convolutions down and
nearest-neighbour upsampling plus a 3x3 convolution up (no transposed
convolutions), and skip connections from every block of the way down.

  net = UNet(out_channels=1, channels=32, channel_mults=(1, 2), num_classes=10)
  params = net.init(key, x, t, labels)["params"]   # x: [B, H, W, C], t: [B]
  out = net.apply({"params": params}, x, t, labels)  # [B, H, W, out_channels]

The class embedding has num_classes + 1 rows; label num_classes is the "no
label" token that classifier-free guidance trains with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.nn import channels_last

Array = jax.Array


def timestep_embedding(t: Array, dim: int, max_period: float = 10_000.0) -> Array:
  """Sinusoidal embedding of (possibly fractional) timesteps: [B] -> [B, dim].

  As in the Transformer (Vaswani et al. 2017) and Ho et al.'s U-Net: cosines
  and sines of t at frequencies geometrically spaced from 1 to 1/max_period.
  """
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


def group_norm(channels: int, groups: int, name: str | None = None) -> nn.GroupNorm:
  """GroupNorm with the largest group count ≤ `groups` that divides `channels`."""
  return nn.GroupNorm(num_groups=math.gcd(groups, channels), name=name)


class ConditioningEmbedding(nn.Module):
  """Timestep (and class) embedding shared by every block: -> [B, dim]."""

  dim: int
  num_classes: int = 0

  @nn.compact
  def __call__(self, t: Array, labels: Array | None) -> Array:
    emb = timestep_embedding(t, self.dim // 4 if self.dim >= 8 else self.dim)
    emb = nn.Dense(self.dim, name="time_0")(emb)
    emb = nn.Dense(self.dim, name="time_1")(nn.swish(emb))
    if self.num_classes:
      if labels is None:
        raise ValueError("a class-conditional network needs labels; pass "
                         f"label {self.num_classes} for 'no label'")
      emb = emb + nn.Embed(self.num_classes + 1, self.dim, name="class")(labels)
    return emb


class ResBlock(nn.Module):
  """GN-swish-conv, + Dense(embedding), GN-swish-conv, + skip: [B, H, W, *] -> [..., features]."""

  features: int
  groups: int = 32

  @nn.compact
  def __call__(self, x: Array, emb: Array) -> Array:
    h = nn.swish(group_norm(x.shape[-1], self.groups, "norm_0")(x))
    h = channels_last.Conv(self.features, (3, 3), name="conv_0")(h)
    h = h + nn.Dense(self.features, name="embedding")(nn.swish(emb))[:, None, None, :]
    h = nn.swish(group_norm(self.features, self.groups, "norm_1")(h))
    # Zero-initialised, so every block starts as the identity (Ho et al.).
    h = channels_last.Conv(self.features, (3, 3), kernel_init=nn.initializers.zeros,
                name="conv_1")(h)
    if x.shape[-1] != self.features:
      x = channels_last.Conv(self.features, (1, 1), name="skip")(x)
    return x + h


class AttentionBlock(nn.Module):
  """Multi-head self-attention over the H·W positions, with a residual."""

  heads: int = 1
  groups: int = 32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    batch, height, width, channels = x.shape
    if channels % self.heads:
      raise ConfigError(f"attention heads {self.heads} must divide the channels "
                        f"{channels}")
    h = group_norm(channels, self.groups, "norm")(x).reshape(batch, height * width, channels)
    qkv = nn.Dense(3 * channels, name="qkv")(h)
    q, k, v = jnp.split(qkv.reshape(batch, height * width, self.heads, 3 * channels
                                    // self.heads), 3, axis=-1)
    scale = 1.0 / math.sqrt(channels // self.heads)
    weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale, axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, height * width, channels)
    out = nn.Dense(channels, kernel_init=nn.initializers.zeros, name="out")(out)
    return x + out.reshape(x.shape)


def upsample_nearest(x: Array) -> Array:
  """Nearest-neighbour ×2: [B, H, W, C] -> [B, 2H, 2W, C]."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def check_unet_shape(shape: Sequence[int], levels: int) -> None:
  """Raises ConfigError unless images of `shape` halve cleanly `levels − 1` times."""
  if len(shape) != 3:
    raise ConfigError(f"the U-Net needs image data [H, W, C]; got examples of "
                      f"shape {tuple(shape)}; use model.architecture='mlp'")
  factor = 2 ** (levels - 1)
  if shape[0] % factor or shape[1] % factor:
    raise ConfigError(
        f"a U-Net with {levels} resolutions (model.channel_mults) needs height "
        f"and width divisible by {factor}; got {tuple(shape)}; use fewer channel_mults")


class UNet(nn.Module):
  """ε-, x_0- or v-prediction network: x [B, H, W, C], t [B] -> [B, H, W, out_channels]."""

  out_channels: int
  channels: int = 64
  channel_mults: Sequence[int] = (1, 2)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (4,)
  heads: int = 1
  groups: int = 32
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: Array, t: Array, labels: Array | None = None) -> Array:
    check_unet_shape(x.shape[1:], len(self.channel_mults))
    emb = ConditioningEmbedding(4 * self.channels, self.num_classes, name="embed")(t, labels)
    h = channels_last.Conv(self.channels, (3, 3), name="conv_in")(x)
    skips = [h]
    levels = len(self.channel_mults)
    for level, mult in enumerate(self.channel_mults):
      for block in range(self.num_res_blocks):
        h = ResBlock(self.channels * mult, self.groups, name=f"down_{level}_{block}")(h, emb)
        if h.shape[1] in self.attention_resolutions:
          h = AttentionBlock(self.heads, self.groups, name=f"down_{level}_{block}_attn")(h)
        skips.append(h)
      if level < levels - 1:
        h = channels_last.Conv(h.shape[-1], (3, 3), strides=2, name=f"downsample_{level}")(h)
        skips.append(h)
    h = ResBlock(h.shape[-1], self.groups, name="middle_0")(h, emb)
    h = AttentionBlock(self.heads, self.groups, name="middle_attn")(h)
    h = ResBlock(h.shape[-1], self.groups, name="middle_1")(h, emb)
    for level, mult in reversed(list(enumerate(self.channel_mults))):
      for block in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = ResBlock(self.channels * mult, self.groups, name=f"up_{level}_{block}")(h, emb)
        if h.shape[1] in self.attention_resolutions:
          h = AttentionBlock(self.heads, self.groups, name=f"up_{level}_{block}_attn")(h)
      if level > 0:
        h = channels_last.Conv(h.shape[-1], (3, 3), name=f"upsample_{level}")(upsample_nearest(h))
    h = nn.swish(group_norm(h.shape[-1], self.groups, "norm_out")(h))
    return channels_last.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros,
                   name="conv_out")(h)


class UNetClassifier(nn.Module):
  """Noise-conditional classifier p(y | x_t, t): the U-Net's way down, pooled.

  The encoder half of the U-Net with the same blocks, then GroupNorm, swish,
  global average pooling and a Dense layer (Dhariwal & Nichol 2021, section 4).
  x [B, H, W, C], t [B] -> logits [B, num_classes].
  """

  num_classes: int
  channels: int = 64
  channel_mults: Sequence[int] = (1, 2)
  num_res_blocks: int = 1
  attention_resolutions: Sequence[int] = (4,)
  heads: int = 1
  groups: int = 32

  @nn.compact
  def __call__(self, x: Array, t: Array) -> Array:
    check_unet_shape(x.shape[1:], len(self.channel_mults))
    emb = ConditioningEmbedding(4 * self.channels, 0, name="embed")(t, None)
    h = channels_last.Conv(self.channels, (3, 3), name="conv_in")(x)
    for level, mult in enumerate(self.channel_mults):
      for block in range(self.num_res_blocks):
        h = ResBlock(self.channels * mult, self.groups, name=f"down_{level}_{block}")(h, emb)
        if h.shape[1] in self.attention_resolutions:
          h = AttentionBlock(self.heads, self.groups, name=f"down_{level}_{block}_attn")(h)
      if level < len(self.channel_mults) - 1:
        h = channels_last.Conv(h.shape[-1], (3, 3), strides=2, name=f"downsample_{level}")(h)
    h = nn.swish(group_norm(h.shape[-1], self.groups, "norm_out")(h))
    return nn.Dense(self.num_classes, name="logits")(jnp.mean(h, axis=(1, 2)))
