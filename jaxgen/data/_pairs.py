"""Paired data: a source image beside every target `x`, for image-to-image translation.

A batch of paired data holds `"source"` (the image a translation model maps
from, [B, *source_shape]) beside `"x"` (the target it should produce). The
two come from one example id, so they stay aligned through shuffling,
sharding, multi-seed streams and resume. Pairs come from

* files that hold both: `npz:` with a `source` array beside `x`
  (`source_train`/`source_test` beside `x_train`/`x_test`), or
  `pairs:<source_dir>,<target_dir>` (two image folders, files matched by name);
  the source goes through the same transform as `x`;
* any image data with `data.pair` set: a source derived from the transformed
  target by a fixed function (below), in the data's value range.

Derived sources (`PAIRS`):

* `edges`: the Sobel gradient magnitude of the target seen in [0, 1],
  sqrt(S_h² + S_v²) / (4√2) (each kernel's response to an image in [0, 1] is
  at most 4, so the map lies in [0, 1]), zero padding outside the image (the
  background of digits), per channel;
* `masked`: the target with its bottom half (rows ≥ H // 2) replaced by the
  middle of the value range, a value no digit pixel's background has.
"""

from __future__ import annotations

import numpy as np

PAIRS = ("none", "edges", "masked")
# A bound on the Sobel magnitude of an image in [0, 1]: each kernel's |response| <= 4.
SOBEL_SCALE = 4.0 * np.sqrt(2.0)


def sobel_edges(unit: np.ndarray) -> np.ndarray:
  """Sobel gradient magnitude / (4√2) of images in [0, 1]: [B, H, W, C] -> same shape.

  Zero padding (scipy.ndimage.sobel with mode='constant'); the kernel is
  [1, 2, 1] (smoothing) ⊗ [-1, 0, 1] (central difference).
  """
  unit = np.asarray(unit, np.float32)
  padded = np.pad(unit, ((0, 0), (1, 1), (1, 1), (0, 0)))
  height, width = unit.shape[1:3]

  def window(dy: int, dx: int) -> np.ndarray:
    return padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

  smooth = np.float32([1.0, 2.0, 1.0])
  # Derivative along the rows (vertical), smoothed along the columns; and vice versa.
  vertical = sum(smooth[dx + 1] * (window(1, dx) - window(-1, dx)) for dx in (-1, 0, 1))
  horizontal = sum(smooth[dy + 1] * (window(dy, 1) - window(dy, -1)) for dy in (-1, 0, 1))
  return (np.sqrt(vertical**2 + horizontal**2) / np.float32(SOBEL_SCALE)).astype(np.float32)


def derive_source(kind: str, x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
  """The source image of `kind` ('edges' or 'masked') for transformed targets x [B, H, W, C]."""
  low, high = (np.float32(v) for v in value_range)
  if kind == "edges":
    unit = (x - low) / max(high - low, np.float32(1e-12))
    return (low + (high - low) * sobel_edges(unit)).astype(np.float32)
  if kind == "masked":
    source = np.array(x, np.float32, copy=True)
    source[:, x.shape[1] // 2:] = (low + high) / 2
    return source
  raise ValueError(f"unknown pair kind {kind!r}; choose one of {PAIRS[1:]}")
