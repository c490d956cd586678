"""InceptionV3 for FID/KID/IS: a layer-for-layer Flax port of pytorch-fid's FID Inception.

The network is the 2015-12-05 TensorFlow Inception graph that FID, KID and IS
numbers in papers are computed with, as pytorch-fid rebuilds it
(`pytorch_fid.inception.fid_inception_v3`): torchvision's Inception3 with
1008 classes, no auxiliary head, and its patched blocks —

- `FIDInceptionA` / `FIDInceptionC` / `FIDInceptionE_1`: the pooling branch
  averages a 3×3 window WITHOUT counting the zero padding (TF's avg_pool;
  `count_include_pad=False`);
- `FIDInceptionE_2` (Mixed_7c): the pooling branch is a 3×3 MAX pool;
- Mixed_6a / Mixed_7a are torchvision's unpatched InceptionB / InceptionD.

Every conv is bias-free, followed by BatchNorm (inference mode, eps = 0.001 as
in the TF graph) and ReLU. Module and parameter names are pytorch-fid's state
dict keys (`Mixed_5b.branch1x1.conv`, `.bn`), so converting the weights file is a
transpose per tensor (`jaxgen.metrics.inception_weights`).

Layout is NHWC. `InceptionV3` takes images already scaled to [-1, 1];
`inception_features` does pytorch-fid's preprocessing (bilinear resize to
299×299 without antialiasing, `align_corners=False`; then 2x − 1) and runs the
network in fixed-size chunks on the host's arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

NUM_CLASSES = 1008  # the FID graph's softmax has 1008 outputs (1000 ImageNet + 8 unused)
POOL3_FEATURES = 2048
INPUT_SIZE = 299
# The TF graph's BatchNorm epsilon (torchvision's BasicConv2d uses the same).
BATCH_NORM_EPSILON = 1e-3
# Full float32 convolutions: on GPU/TPU the default precision (TF32/bf16 passes)
# moves features by ~1e-3 relative, more than the parity tolerance.
PRECISION = jax.lax.Precision.HIGHEST


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv(nn.Module):
  """torchvision's BasicConv2d: conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU."""

  features: int
  kernel_size: int | Sequence[int]
  strides: int = 1
  padding: int | Sequence[int] = 0

  @nn.compact
  def __call__(self, x: Array) -> Array:
    pad_h, pad_w = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel_size), strides=_pair(self.strides),
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False,
                precision=PRECISION, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BATCH_NORM_EPSILON, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3_same(x: Array) -> Array:
  # TF's average pool ignores the padded zeros (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3_stride2(x: Array) -> Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  """pytorch-fid's FIDInceptionA (Mixed_5b/c/d): 35×35 blocks."""

  pool_features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    branch1x1 = BasicConv(64, 1, name="branch1x1")(x)
    branch5x5 = BasicConv(48, 1, name="branch5x5_1")(x)
    branch5x5 = BasicConv(64, 5, padding=2, name="branch5x5_2")(branch5x5)
    branch3x3dbl = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = BasicConv(self.pool_features, 1, name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a, unpatched): 35×35 -> 17×17."""

  @nn.compact
  def __call__(self, x: Array) -> Array:
    branch3x3 = BasicConv(384, 3, strides=2, name="branch3x3")(x)
    branch3x3dbl = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv(96, 3, strides=2, name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = _max_pool_3x3_stride2(x)
    return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class InceptionC(nn.Module):
  """pytorch-fid's FIDInceptionC (Mixed_6b–6e): factorized 7×7 convs at 17×17."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c7 = self.channels_7x7
    branch1x1 = BasicConv(192, 1, name="branch1x1")(x)
    branch7x7 = BasicConv(c7, 1, name="branch7x7_1")(x)
    branch7x7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
    branch7x7dbl = BasicConv(c7, 1, name="branch7x7dbl_1")(x)
    branch7x7dbl = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(branch7x7dbl)
    branch7x7dbl = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(branch7x7dbl)
    branch7x7dbl = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(branch7x7dbl)
    branch7x7dbl = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(branch7x7dbl)
    branch_pool = BasicConv(192, 1, name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a, unpatched): 17×17 -> 8×8."""

  @nn.compact
  def __call__(self, x: Array) -> Array:
    branch3x3 = BasicConv(192, 1, name="branch3x3_1")(x)
    branch3x3 = BasicConv(320, 3, strides=2, name="branch3x3_2")(branch3x3)
    branch7x7x3 = BasicConv(192, 1, name="branch7x7x3_1")(x)
    branch7x7x3 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = BasicConv(192, 3, strides=2, name="branch7x7x3_4")(branch7x7x3)
    branch_pool = _max_pool_3x3_stride2(x)
    return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class InceptionE(nn.Module):
  """pytorch-fid's FIDInceptionE_1 (Mixed_7b, avg pool) / FIDInceptionE_2 (Mixed_7c, max pool)."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: Array) -> Array:
    branch1x1 = BasicConv(320, 1, name="branch1x1")(x)
    branch3x3 = BasicConv(384, 1, name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3),
    ], axis=-1)
    branch3x3dbl = BasicConv(448, 1, name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(branch3x3dbl),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(branch3x3dbl),
    ], axis=-1)
    if self.max_pool:
      # The FID graph's Mixed_7c max-pools here (pytorch-fid: "likely an error"
      # in that graph, kept because the published numbers use it); padding is -inf.
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3_same(x)
    branch_pool = BasicConv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class InceptionV3(nn.Module):
  """The FID InceptionV3: [N, H, W, 3] in [-1, 1] -> {"pool3": [N, 2048], "logits": [N, 1008]}.

  H and W are 299 for the standard protocol (`inception_features` resizes); the
  network is fully convolutional down to pool3 and accepts any size >= 75.
  Variables: {"params", "batch_stats"}, named as pytorch-fid's state dict.
  """

  @nn.compact
  def __call__(self, x: Array) -> dict[str, Array]:
    x = BasicConv(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_stride2(x)
    x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_stride2(x)
    x = InceptionA(pool_features=32, name="Mixed_5b")(x)
    x = InceptionA(pool_features=64, name="Mixed_5c")(x)
    x = InceptionA(pool_features=64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(channels_7x7=128, name="Mixed_6b")(x)
    x = InceptionC(channels_7x7=160, name="Mixed_6c")(x)
    x = InceptionC(channels_7x7=160, name="Mixed_6d")(x)
    x = InceptionC(channels_7x7=192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    pool3 = jnp.mean(x, axis=(1, 2))  # AdaptiveAvgPool2d(1); dropout is off at inference
    logits = nn.Dense(NUM_CLASSES, precision=PRECISION, name="fc")(pool3)
    return {"pool3": pool3, "logits": logits}


def variable_shapes(*, image_size: int = 75) -> dict:
  """The variables' structure: {"params", "batch_stats"} of jax.ShapeDtypeStruct leaves."""
  dummy = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
  return dict(jax.eval_shape(InceptionV3().init, jax.random.key(0), dummy))


def random_variables(seed: int = 0) -> dict:
  """A randomly initialised network, for tests and shape checks (not for metrics).

  Conv/Dense kernels ~ N(0, 1/fan_in) and biases 0; BatchNorm scale 1 + U(0, 0.1),
  bias, mean ~ N(0, 0.1), var ~ U(0.5, 1.5). Drawn in NumPy: `InceptionV3().init`
  takes minutes on a busy CPU (it traces and compiles ~100 truncated-normal draws).
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    shape = leaf.shape
    if name == "kernel":
      fan_in = int(np.prod(shape[:-1]))
      value = rng.normal(size=shape) / np.sqrt(fan_in)
    elif name == "scale":
      value = 1 + rng.uniform(0, 0.1, size=shape)
    elif name == "var":
      value = rng.uniform(0.5, 1.5, size=shape)
    elif name == "bias" and path[-2].key == "bn":  # BatchNorm shift
      value = rng.normal(0, 0.1, size=shape)
    elif name == "mean":
      value = rng.normal(0, 0.1, size=shape)
    else:  # the fc bias
      value = np.zeros(shape)
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, variable_shapes())


def _check_images(images: np.ndarray) -> np.ndarray:
  if images.ndim == 3:  # [N, H, W] grey
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"images must be [N, H, W, C] with C = 1 or 3 (or [N, H, W] grey); got "
                     f"shape {images.shape}")
  return images


@jax.jit
def _to_unit_range(images: Array, low: Array, high: Array) -> Array:
  return (images.astype(jnp.float32) - low) / (high - low)


def _resize_bilinear(images: Array, size: int) -> Array:
  """Resizes as torch's F.interpolate(mode="bilinear", align_corners=False).

  Half-pixel centres, and no antialiasing when shrinking (jax.image's default
  antialias would differ from torch there).
  """
  n, _, _, c = images.shape
  return jax.image.resize(images, (n, size, size, c), method="bilinear", antialias=False,
                          precision=PRECISION)


_resize_bilinear_jit = jax.jit(_resize_bilinear, static_argnums=1)


@jax.jit
def _preprocess(unit_images: Array) -> Array:
  """[N, H, W, C] in [0, 1] -> [N, H, W, 3] in [-1, 1] (grey repeated to 3 channels)."""
  if unit_images.shape[-1] == 1:
    unit_images = jnp.repeat(unit_images, 3, axis=-1)
  return 2 * unit_images - 1


@jax.jit
def _apply(variables: dict, images: Array) -> dict[str, Array]:
  return InceptionV3().apply(variables, images)


def inception_features(variables: dict, images: np.ndarray | Array, *, resize: bool = True,
                       value_range: tuple[float, float] = (0.0, 1.0),
                       chunk_size: int = 50) -> dict[str, np.ndarray]:
  """pool3 features and logits of the FID Inception, computed in chunks.

  Args:
    variables: {"params", "batch_stats"}, e.g. `load_inception_weights(path).variables`
      (`jaxgen.metrics`), or `random_variables()` for a random network.
    images: [N, H, W, C] (C = 1 or 3; grey is repeated to 3 channels) or [N, H, W];
      any dtype, values in `value_range`.
    resize: resize to 299×299 bilinearly as pytorch-fid does (its default). Without
      it the network sees the images at their own size (>= 75).
    value_range: (low, high) of the pixel values: (0, 1) for floats, (0, 255) for
      uint8 pixels. Mapped to [0, 1] first, then (after the resize) to [-1, 1].
    chunk_size: images per network call (at most N); memory is bounded by a
      chunk. The last chunk is zero-padded to full size, so the network compiles
      once per (chunk size, image size).

  Returns:
    {"pool3": [N, 2048], "logits": [N, 1008]} float32 NumPy arrays.
  """
  images = _check_images(np.asarray(images) if not isinstance(images, jax.Array) else images)
  low, high = (float(v) for v in value_range)
  if not high > low:
    raise ValueError(f"value_range must be (low, high) with high > low; got {value_range}")
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
  num = images.shape[0]
  chunk_size = min(chunk_size, max(num, 1))
  outputs = {"pool3": [], "logits": []}
  for start in range(0, num, chunk_size):
    chunk = jnp.asarray(images[start:start + chunk_size])
    count = chunk.shape[0]
    if count < chunk_size:
      chunk = jnp.pad(chunk, ((0, chunk_size - count), (0, 0), (0, 0), (0, 0)))
    chunk = _to_unit_range(chunk, low, high)
    if resize:
      chunk = _resize_bilinear_jit(chunk, INPUT_SIZE)
    result = _apply(variables, _preprocess(chunk))
    for name in outputs:
      outputs[name].append(np.asarray(result[name][:count]))
  if num == 0:
    return {"pool3": np.zeros((0, POOL3_FEATURES), np.float32),
            "logits": np.zeros((0, NUM_CLASSES), np.float32)}
  return {name: np.concatenate(parts) for name, parts in outputs.items()}

