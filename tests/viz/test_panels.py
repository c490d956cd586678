"""Titled panels of image grids (jaxgen.viz.panels): layout, value range, palette PNGs."""

import numpy as np
import pytest
from PIL import Image

from jaxgen.viz import panels


def _grey(path):
  with Image.open(path) as image:
    mode = image.mode
    pixels = np.asarray(image.convert("L"))
  return mode, pixels


def test_panels_sit_side_by_side_in_the_data_range(tmp_path):
  # value_range (-1, 1): -1 is black, 0 mid grey; the grid's padding is white.
  black = -np.ones((4, 8, 8, 1))
  grey = np.zeros((4, 8, 8))
  path = panels.save_panels(tmp_path / "p.png", [("black", black), ("grey", grey)],
                            columns=2, value_range=(-1.0, 1.0), pixels_per_unit=4)
  mode, pixels = _grey(path)
  assert mode == "P"  # a palette PNG
  half = pixels.shape[1] // 2
  is_black, is_grey = pixels < 40, (pixels > 100) & (pixels < 160)
  # 4 images of 8x8 at about 4x4 screen pixels each: ~4,096 pixels per panel.
  assert is_black[:, :half].sum() > 2000 and is_black[:, half:].sum() < 500
  assert is_grey[:, half:].sum() > 2000 and is_grey[:, :half].sum() < 500


def test_panels_in_rows_and_a_figure_keep_their_palette(tmp_path):
  images = np.linspace(0, 1, 6 * 64).reshape(6, 8, 8, 1)
  wide = panels.save_panels(tmp_path / "wide.png", [(str(i), images) for i in range(4)],
                            columns=3, colours=16)
  tall = panels.save_panels(tmp_path / "tall.png", [(str(i), images) for i in range(4)],
                            columns=3, panels_per_row=2, colours=16)
  (_, w), (_, t) = _grey(wide), _grey(tall)
  assert w.shape[1] > t.shape[1] and w.shape[0] < t.shape[0]
  with Image.open(wide) as image:
    assert len(image.getcolors()) <= 16
  with pytest.raises(ValueError, match="at least one panel"):
    panels.save_panels(tmp_path / "none.png", [])


def test_shrink_png_in_place_or_into_a_target(tmp_path):
  rng = np.random.default_rng(0)
  source = tmp_path / "big.png"
  Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(source)
  before = source.read_bytes()
  target = panels.shrink_png(source, 8, target=tmp_path / "docs" / "small.png")
  assert target == tmp_path / "docs" / "small.png" and source.read_bytes() == before
  with Image.open(target) as image:
    assert image.mode == "P" and len(image.getcolors()) <= 8
  assert panels.shrink_png(source, 8) == source
  with Image.open(source) as image:
    assert image.mode == "P" and len(image.getcolors()) <= 8
