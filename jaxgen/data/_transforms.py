"""Batch-level, vectorised numpy transforms: image conversion, scaling, noise."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxgen.data import codec
from jaxgen.errors import DataError

# SplitMix64 constants (Steele, Lea & Flood 2014).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Purposes of per-example noise; each gets its own stream.
STATIC_BINARIZE = 1
EVAL_NOISE = 2
EVAL_CROP = 3


def noise_seed(generate_seed: int, purpose: int, split: str) -> int:
  """A 64-bit seed for one purpose and split, so streams never share noise."""
  split_code = {"train": 0, "test": 1}[split]
  sequence = np.random.SeedSequence([generate_seed, purpose, split_code])
  return int(sequence.generate_state(1, np.uint64)[0])


def hash_uniform(seed: int, ids: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """Uniform [0, 1) float32 noise [len(ids), *shape] that depends only on (seed, id, position).

  Counter-based (SplitMix64 output number id * size + position), so example i
  gets the same noise whichever batch, process or epoch it lands in: that is
  what static binarization and deterministic evaluation need.
  """
  size = int(np.prod(shape))
  counter = (ids.astype(np.uint64)[:, None] * np.uint64(size)
             + np.arange(size, dtype=np.uint64)[None, :])
  with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
    z = np.uint64(seed) + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
  uniform = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
  return uniform.reshape((len(ids),) + tuple(shape))


def convert_images(images: np.ndarray, image_size: int, channels: int,
                   source: str) -> np.ndarray:
  """Resizes [N, H, W, C] images to (image_size, image_size) and converts channels.

  Non-square images are centre-cropped to a square first (as is usual for
  CelebA) so that faces are not squashed. 0 keeps the size or channel count.
  """
  if images.ndim != 4:
    raise DataError(f"{source}: image_size/channels need images, got arrays of "
                    f"shape {images.shape[1:]}")
  num, height, width, depth = images.shape
  if channels and channels != depth:
    images = _convert_channels(images, channels, source)
  if image_size and (height, width) != (image_size, image_size):
    images = _resize(images, image_size)
  return images


def _convert_channels(images: np.ndarray, channels: int, source: str) -> np.ndarray:
  """1 -> 3 by repetition; 3 (or RGBA) -> 1 by ITU-R 601 luma; RGBA -> 3 drops alpha."""
  depth = images.shape[-1]
  if depth == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  if depth in (3, 4) and channels == 3:
    return images[..., :3]
  if depth in (3, 4) and channels == 1:
    luma = images[..., :3].astype(np.float32) @ np.array(
        [0.299, 0.587, 0.114], np.float32)
    if np.issubdtype(images.dtype, np.integer):
      luma = np.rint(luma)
    return luma.astype(images.dtype)[..., None]
  raise DataError(
      f"{source}: cannot convert {depth}-channel images to {channels} channels")


def _resize(images: np.ndarray, size: int) -> np.ndarray:
  """Centre-crops to a square and resizes with PIL's antialiased bilinear filter."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  _, height, width, depth = images.shape
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  images = images[:, top:top + side, left:left + side]
  out = np.empty((len(images), size, size, depth), images.dtype)
  is_uint8 = images.dtype == np.uint8
  for n, image in enumerate(images):
    if is_uint8 and depth in (1, 3):
      pil = Image.fromarray(image[..., 0] if depth == 1 else image)
      resized = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
      out[n] = resized.reshape(size, size, depth)
    else:  # float or odd channel counts: one 32-bit float image per channel
      for c in range(depth):
        pil = Image.fromarray(image[..., c].astype(np.float32), mode="F")
        resized = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
        if np.issubdtype(images.dtype, np.integer):
          resized = np.rint(resized)
        out[n, ..., c] = resized
  return out


@dataclasses.dataclass(frozen=True)
class Transform:
  """Raw examples -> float32 model inputs; one call handles a whole batch."""

  scale: str  # resolved: 'unit', 'symmetric' or 'none'
  levels: int | None  # discrete intensity levels; None for continuous data
  data_range: tuple[float, float]  # raw train min/max, to scale continuous data
  binarize: str
  dequantize: bool
  flatten: bool
  # 'mu_law': signals in [-1, 1] become their μ-law level k (0..255) first,
  # then are scaled as discrete data with `levels` = 256.
  companding: str = "none"

  @property
  def noise(self) -> str | None:
    """'per_draw' (fresh each time), 'per_example' (fixed per example) or None."""
    if self.dequantize or self.binarize == "dynamic":
      return "per_draw"
    if self.binarize == "static":
      return "per_example"
    return None

  def __call__(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """x: raw [B, *shape]; noise: uniform [0, 1) [B, *shape] when self.noise."""
    if self.companding == "mu_law":
      x = codec.mu_law_quantize(np.asarray(x), levels=self.levels)
    x = x.astype(np.float32)
    if self.dequantize:
      x = (x + noise) / np.float32(self.levels)  # Theis et al. 2016, uniform dequantization
      if self.scale == "none":
        x = x * np.float32(self.levels)
    elif self.scale != "none":
      low, high = ((0.0, self.levels - 1.0) if self.levels is not None
                   else self.data_range)
      x = (x - np.float32(low)) * np.float32(1.0 / max(high - low, 1e-12))
    if self.scale == "symmetric":
      x = 2.0 * x - 1.0
    if self.binarize in ("static", "dynamic"):
      x = (noise < x).astype(np.float32)  # Bernoulli(x)
    elif self.binarize == "threshold":
      x = (x > 0.5).astype(np.float32)
    if self.flatten:
      x = x.reshape(len(x), -1)
    return x

  @property
  def value_range(self) -> tuple[float, float]:
    """Range of the transformed values."""
    if self.binarize != "none":
      return (0.0, 1.0)
    if self.scale == "unit":
      return (0.0, 1.0)
    if self.scale == "symmetric":
      return (-1.0, 1.0)
    if self.levels is None:
      return tuple(float(v) for v in self.data_range)
    return (0.0, float(self.levels if self.dequantize else self.levels - 1))


def crop_windows(x: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
  """Windows x[i, offsets[i] : offsets[i] + length] of signals x [B, T, C] -> [B, length, C]."""
  index = offsets[:, None] + np.arange(length)[None, :]
  return np.take_along_axis(x, index[..., None], axis=1)


def eval_offsets(seed: int, ids: np.ndarray, length: int, crop: int) -> np.ndarray:
  """A fixed window start per example (from its id) in 0..length − crop, for evaluation."""
  uniform = hash_uniform(seed, ids, (1,))[:, 0]
  return np.minimum((uniform * (length - crop + 1)).astype(np.int64), length - crop)
