"""Sample grids and scatter plots written as PNG files."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence

import matplotlib.image
import numpy as np
from matplotlib.figure import Figure


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 1,
               value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
  """Tiles images [N, H, W, C] into one uint8 image [rows*(H+p)+p, ..., C]."""
  images = np.asarray(images, np.float32)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
  lo, hi = value_range
  images = np.clip((images - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.ones((rows * (h + padding) + padding, columns * (w + padding) + padding, c),
                 np.float32)
  for i in range(n):
    r, col = divmod(i, columns)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    grid[top:top + h, left:left + w] = images[i]
  return np.round(grid * 255).astype(np.uint8)


def save_image_grid(path: str | pathlib.Path, images: np.ndarray,
                    columns: int | None = None,
                    value_range: tuple[float, float] = (0.0, 1.0),
                    scale: int = 0) -> pathlib.Path:
  """Writes an image grid as PNG, upscaled so small images stay visible."""
  grid = image_grid(images, columns, value_range=value_range)
  if not scale:  # aim for roughly 512 px across, so 8x8 digits stay visible
    scale = max(1, 512 // max(grid.shape[1], 1))
  grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if grid.shape[-1] == 1:
    matplotlib.image.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
  else:
    matplotlib.image.imsave(path, grid)
  return path


def save_scatter(path: str | pathlib.Path, samples: np.ndarray,
                 reference: np.ndarray | None = None,
                 modes: np.ndarray | None = None, title: str = "") -> pathlib.Path:
  """Writes a 2-D scatter of samples over reference data (and mode centres)."""
  samples = np.asarray(samples)
  # A bare Figure (no pyplot): no GUI backend is touched, in scripts or notebooks.
  fig = Figure(figsize=(4.5, 4.5), dpi=100)
  ax = fig.add_subplot()
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.7", label="data")
  ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:blue", label="samples")
  if modes is not None:
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="tab:red", s=30, label="modes")
  ax.set_aspect("equal")
  ax.legend(loc="upper right", fontsize=7)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  return path


def save_pairs(path: str | pathlib.Path, originals: np.ndarray,
               reconstructions: np.ndarray, columns: int = 8,
               value_range: tuple[float, float] = (0.0, 1.0)) -> pathlib.Path:
  """Writes originals and reconstructions in alternating rows."""
  return save_row_groups(path, [originals, reconstructions], columns, value_range)


def save_row_groups(path: str | pathlib.Path, groups: Sequence[np.ndarray],
                    columns: int = 8,
                    value_range: tuple[float, float] = (0.0, 1.0)) -> pathlib.Path:
  """Writes image sets of one length in interleaved rows: a row of each set in turn."""
  groups = [np.asarray(g) for g in groups]
  n = (len(groups[0]) // columns) * columns or len(groups[0])
  rows = []
  for start in range(0, n, columns):
    rows.extend(g[start:start + columns] for g in groups)
  return save_image_grid(path, np.concatenate(rows), columns=min(columns, n),
                         value_range=value_range)


def as_images(samples: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray:
  """Reshapes flat samples [N, D] to images when the data were flattened images."""
  samples = np.asarray(samples)
  if image_shape is not None and samples.ndim == 2:
    return samples.reshape((samples.shape[0],) + tuple(image_shape))
  return samples
