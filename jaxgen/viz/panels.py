"""Titled panels of image grids side by side, and plots small enough for docs/figures."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend is touched

from jaxgen.viz import grid

PathLike = str | pathlib.Path


def save_panels(path: PathLike, panels: Sequence[tuple[str, np.ndarray]],
                columns: int = 8, value_range: tuple[float, float] = (0.0, 1.0),
                panels_per_row: int | None = None, title: str = "",
                pixels_per_unit: int = 6, colours: int = 64) -> pathlib.Path:
  """Writes one titled image grid per panel, e.g. samples of several samplers.

  panels: (title, images [N, H, W, C] or [N, H, W]); each is tiled with
  `grid.image_grid` (`columns` images a row). `pixels_per_unit` scales the
  figure so one image pixel is about that many screen pixels. The PNG is saved
  with a palette of `colours` (`shrink_png`), so it stays tens of KB.
  """
  if not panels:
    raise ValueError("save_panels needs at least one panel")
  tiles = [(name, grid.image_grid(images, columns, value_range=value_range))
           for name, images in panels]
  per_row = panels_per_row or len(tiles)
  rows = -(-len(tiles) // per_row)
  height = max(t.shape[0] for _, t in tiles)
  width = max(t.shape[1] for _, t in tiles)
  dpi = 100
  # Wide enough for each title too (about 0.075 inch a character at 9 pt).
  panel_width = max(width * pixels_per_unit / dpi, 0.075 * max(len(n) for n, _ in tiles))
  fig = Figure(figsize=(per_row * (panel_width + 0.2),
                        rows * (height * pixels_per_unit / dpi + 0.35) + (0.3 if title else 0)),
               dpi=dpi)
  axes = fig.subplots(rows, per_row, squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for ax, (name, tile) in zip(axes.flat, tiles):
    image = tile[..., 0] if tile.shape[-1] == 1 else tile
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(name, fontsize=9)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return _save(fig, path, colours)


def save_figure(fig: Figure, path: PathLike, colours: int = 64) -> pathlib.Path:
  """Saves a matplotlib figure as a palette PNG (`shrink_png`)."""
  return _save(fig, path, colours)


def shrink_png(path: PathLike, colours: int = 64, *,
               target: PathLike | None = None) -> pathlib.Path:
  """Re-saves a PNG with a palette of `colours`: docs/figures copies stay tens of KB.

  With `target`, the small copy goes there (its folder made) and `path` is kept.
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(path)
  target = path if target is None else pathlib.Path(target)
  with Image.open(path) as image:
    small = image.convert("RGB").quantize(colors=colours)
  target.parent.mkdir(parents=True, exist_ok=True)
  small.save(target, optimize=True)
  return target


def _save(fig: Figure, path: PathLike, colours: int) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  return shrink_png(path, colours)
