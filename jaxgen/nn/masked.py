"""Masked convolutions for autoregressive image models (PixelCNN and Gated PixelCNN).

The order is raster order over pixels and, within a pixel, the colour
channels R → G → B (van den Oord et al. 2016a, "Pixel Recurrent Neural
Networks", section 3.4). Every feature map is split into `colors` contiguous
groups, group g conditioning the prediction of channel g; a mask lets

* every input at pixels strictly before the centre in raster order, and
* at the centre pixel, input group g_in into output group g_out when
  g_in < g_out (mask "A", the first layer: a value never sees itself) or
  g_in ≤ g_out (mask "B", every later layer).

For one channel (grey or binary images) the centre is closed under mask A
and open under mask B. `PixelCNN`'s stack of mask-B 3×3 convolutions has a
*blind spot* above and to the right of each pixel; the gated stacks of
van den Oord et al. 2016b ("Conditional Image Generation with PixelCNN
Decoders") remove it with a vertical stack (rows above, shifted down one row)
feeding a horizontal stack (the current row, left of the pixel).

  net = PixelCNN(features=32, layers=5, output_features=64, colors=1, levels=2)
  logits = net.apply(params, x)            # x [B, H, W, C] -> [B, H, W, C, levels]
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core import precision
from jaxgen.nn import channels_last

MASK_TYPES = ("A", "B")


def channel_groups(features: int, colors: int) -> np.ndarray:
  """The colour group (0..colors−1) of each of `features` features, in contiguous blocks."""
  if features < colors:
    raise ValueError(f"{features} features cannot carry {colors} colour groups")
  return (np.arange(features) * colors) // features


def centre_mask(in_groups: np.ndarray, out_groups: np.ndarray, mask_type: str) -> np.ndarray:
  """[in, out] connections at the centre pixel: A g_in < g_out, B g_in ≤ g_out."""
  if mask_type not in MASK_TYPES:
    raise ValueError(f"mask type must be 'A' or 'B', got {mask_type!r}")
  if mask_type == "A":
    return (in_groups[:, None] < out_groups[None, :]).astype(np.float32)
  return (in_groups[:, None] <= out_groups[None, :]).astype(np.float32)


def causal_mask(kernel_size: tuple[int, int], in_groups: np.ndarray,
                out_groups: np.ndarray, mask_type: str) -> np.ndarray:
  """The [kh, kw, in, out] mask of a centred PixelCNN kernel (odd sizes)."""
  kh, kw = kernel_size
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"masked kernels need odd sizes, got {kernel_size}")
  mask = np.zeros((kh, kw, len(in_groups), len(out_groups)), np.float32)
  mask[:kh // 2] = 1.0                 # rows above the centre
  mask[kh // 2, :kw // 2] = 1.0        # the centre row, left of the centre
  mask[kh // 2, kw // 2] = centre_mask(in_groups, out_groups, mask_type)
  return mask


@precision.linear_layer
class MaskedConv(nn.Module):
  """A convolution with a fixed 0/1 kernel mask and explicit padding.

  The mask multiplies the kernel in every call, so masked weights get zero
  gradient and never matter. `padding`: ((top, bottom), (left, right)).
  """

  features: int
  kernel_size: tuple[int, int]
  padding: tuple[tuple[int, int], tuple[int, int]]
  mask: np.ndarray | None = None  # [kh, kw, in, out]; None = no mask

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_shape = tuple(self.kernel_size) + (x.shape[-1], self.features)
    kernel = self.param("kernel", nn.initializers.lecun_normal(), kernel_shape)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    if self.mask is not None:
      if tuple(self.mask.shape) != kernel_shape:
        raise ValueError(f"mask shape {self.mask.shape} != kernel shape {kernel_shape}")
      kernel = kernel * jnp.asarray(self.mask, kernel.dtype)
    y = channels_last.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding=self.padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


def pixelcnn_conv(features: int, kernel: int, in_groups: np.ndarray,
                  out_groups: np.ndarray, mask_type: str, name: str | None = None
                  ) -> MaskedConv:
  """A 'same'-padded kernel×kernel masked convolution (1×1: the centre mask only)."""
  half = kernel // 2
  return MaskedConv(features, (kernel, kernel), ((half, half), (half, half)),
                    causal_mask((kernel, kernel), in_groups, out_groups, mask_type),
                    name=name)


def vertical_conv(features: int, kernel: int, name: str | None = None) -> MaskedConv:
  """The vertical stack: (k//2 + 1) × k over the rows above and the current row.

  Its output at row i sees input rows ≤ i; it reaches the horizontal stack
  only through `down_shift`, so the current row (and the pixels to its
  right) never leak into a prediction.
  """
  half = kernel // 2
  return MaskedConv(features, (half + 1, kernel), ((half, 0), (half, half)), None, name=name)


def horizontal_conv(features: int, kernel: int, in_groups: np.ndarray,
                    out_groups: np.ndarray, mask_type: str, name: str | None = None
                    ) -> MaskedConv:
  """The horizontal stack: 1 × (k//2 + 1) over the current row up to the pixel (mask at it)."""
  half = kernel // 2
  mask = np.ones((1, half + 1, len(in_groups), len(out_groups)), np.float32)
  mask[0, half] = centre_mask(in_groups, out_groups, mask_type)
  return MaskedConv(features, (1, half + 1), ((0, 0), (half, 0)), mask, name=name)


def down_shift(x: jax.Array) -> jax.Array:
  """Moves a feature map down one row (zeros on top): row i gets row i − 1."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _as_logits(y: jax.Array, colors: int, levels: int) -> jax.Array:
  """[B, H, W, colors·levels] (group-major features) -> [B, H, W, colors, levels]."""
  return y.reshape(y.shape[:-1] + (colors, levels))


class _OutputLayers(nn.Module):
  """ReLU → 1×1 mask B → ReLU → 1×1 mask B onto colors × levels logits."""

  output_features: int
  colors: int
  levels: int

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    groups = channel_groups(h.shape[-1], self.colors)
    hidden = channel_groups(self.output_features, self.colors)
    logit_groups = channel_groups(self.colors * self.levels, self.colors)
    h = pixelcnn_conv(self.output_features, 1, groups, hidden, "B", "output_hidden")(
        nn.relu(h))
    y = pixelcnn_conv(self.colors * self.levels, 1, hidden, logit_groups, "B", "logits")(
        nn.relu(h))
    return _as_logits(y, self.colors, self.levels)


class ResidualBlock(nn.Module):
  """van den Oord et al. 2016a, Figure 5: 2h → ReLU, 1×1 → h, ReLU, k×k mask B, ReLU, 1×1 → 2h, + input."""

  kernel: int
  colors: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    half = max(features // 2, self.colors)
    outer, inner = channel_groups(features, self.colors), channel_groups(half, self.colors)
    h = pixelcnn_conv(half, 1, outer, inner, "B", "reduce")(nn.relu(x))
    h = pixelcnn_conv(half, self.kernel, inner, inner, "B", "conv")(nn.relu(h))
    h = pixelcnn_conv(features, 1, inner, outer, "B", "expand")(nn.relu(h))
    return x + h


class PixelCNN(nn.Module):
  """PixelCNN (van den Oord et al. 2016a): x [B, H, W, C] -> logits [B, H, W, C, levels].

  A first_kernel×first_kernel mask-A convolution to `features` maps, `layers`
  residual blocks of kernel×kernel mask-B convolutions, and two 1×1 mask-B
  output layers. `x` should be the data in model space ([-1, 1]).
  """

  features: int
  layers: int
  output_features: int
  colors: int
  levels: int
  first_kernel: int = 7
  kernel: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    del labels  # unconditional (class conditioning is the gated model's)
    groups = channel_groups(self.features, self.colors)
    h = pixelcnn_conv(self.features, self.first_kernel, np.arange(self.colors), groups, "A",
                      "input")(x)
    for i in range(self.layers):
      h = ResidualBlock(self.kernel, self.colors, name=f"block_{i}")(h)
    return _OutputLayers(self.output_features, self.colors, self.levels, name="output")(h)


def _gate(y: jax.Array) -> jax.Array:
  """tanh(a) · σ(b) of y = [a, b] (2016b, eq. 2)."""
  a, b = jnp.split(y, 2, axis=-1)
  return jnp.tanh(a) * nn.sigmoid(b)


def _doubled(groups: np.ndarray) -> np.ndarray:
  """Groups of the [tanh half, sigmoid half] features: each half grouped alike."""
  return np.concatenate([groups, groups])


class GatedLayer(nn.Module):
  """One gated layer (2016b, Figure 2): (vertical, horizontal) -> (vertical, horizontal).

  v' = gate(V ∗ v + c_v);  h' = h + 1×1(gate(H ∗ h + 1×1(down_shift(V ∗ v)) + c_h)),
  with c = a per-layer projection of the one-hot label when conditioned
  (2016b, eq. 4). The first layer uses mask A on the horizontal stack and
  has no residual connection.
  """

  features: int
  kernel: int
  colors: int
  first: bool = False

  @nn.compact
  def __call__(self, v: jax.Array, h: jax.Array, condition: jax.Array | None
               ) -> tuple[jax.Array, jax.Array]:
    p = self.features
    groups = channel_groups(p, self.colors)
    in_groups = np.arange(self.colors) if self.first else groups
    v_pre = vertical_conv(2 * p, self.kernel, "vertical")(v)
    h_pre = horizontal_conv(2 * p, self.kernel, in_groups, _doubled(groups),
                            "A" if self.first else "B", "horizontal")(h)
    # The link sees rows strictly above: any feature may feed any group.
    h_pre = h_pre + channels_last.Conv(2 * p, (1, 1), name="vertical_to_horizontal")(down_shift(v_pre))
    if condition is not None:
      v_pre = v_pre + nn.Dense(2 * p, use_bias=False, name="condition_v")(condition)[:, None, None]
      h_pre = h_pre + nn.Dense(2 * p, use_bias=False, name="condition_h")(condition)[:, None, None]
    v_out = _gate(v_pre)
    h_out = pixelcnn_conv(p, 1, groups, groups, "B", "horizontal_out")(_gate(h_pre))
    return v_out, (h_out if self.first else h + h_out)


class GatedPixelCNN(nn.Module):
  """Gated PixelCNN (2016b): x [B, H, W, C] (+ labels [B]) -> logits [B, H, W, C, levels].

  The first layer uses a first_kernel-wide vertical/horizontal pair (mask A),
  then `layers` gated layers of width `kernel`, and the output layers read
  the horizontal stack. No blind spot: the vertical stack covers every row
  above, the horizontal stack every pixel to the left.
  """

  features: int
  layers: int
  output_features: int
  colors: int
  levels: int
  first_kernel: int = 7
  kernel: int = 3
  num_classes: int = 0  # > 0: conditioned on labels

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    condition = None
    if self.num_classes:
      if labels is None:
        raise ValueError("a class-conditional GatedPixelCNN needs labels")
      condition = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
    v, h = GatedLayer(self.features, self.first_kernel, self.colors, first=True,
                      name="layer_0")(x, x, condition)
    for i in range(self.layers):
      v, h = GatedLayer(self.features, self.kernel, self.colors, name=f"layer_{i + 1}")(
          v, h, condition)
    return _OutputLayers(self.output_features, self.colors, self.levels, name="output")(h)


def dependencies(apply_fn, x: jax.Array) -> np.ndarray:
  """|∂ logits / ∂ x| summed over levels and images: [H, W, C (out), H, W, C (in)].

  For the causality checks: entry [i, j, c, a, b, d] is nonzero when the
  prediction of value (i, j, c) depends on the input value (a, b, d) at one
  of the images x [N, H, W, C] (take several random ones, so that no path is
  missed because its ReLUs happen to be dead at one image). `apply_fn`:
  x [1, H, W, C] -> logits [1, H, W, C, levels].
  """
  def one(image):  # -> [H, W, C, levels, H, W, C]
    return jax.jacrev(lambda z: apply_fn(z[None])[0])(image)
  return np.asarray(jnp.sum(jnp.abs(jax.vmap(one)(x)), axis=(0, 4)))
