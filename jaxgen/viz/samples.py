"""What a run writes as pictures: sample grids, 2-D scatters, reconstructions."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from jaxgen.viz import grid, signals


def shows_images(spec: Any) -> bool:
  """Whether examples of `spec` are images (also when flattened)."""
  return bool(spec.is_image or getattr(spec, "image_shape", None) is not None)


def write_samples(path: str | pathlib.Path, samples: np.ndarray, spec: Any,
                  reference: np.ndarray | None = None,
                  title: str = "") -> pathlib.Path:
  """Writes samples as an image grid, signals as line plots, 2-D data as a scatter plot.

  `reference`: data points drawn under a 2-D scatter (e.g. test examples).
  """
  path = pathlib.Path(path)
  image_shape = getattr(spec, "image_shape", None)
  if getattr(spec, "is_sequence", False):
    return signals.save_signals(
        path, signals.waveform(samples, spec),
        None if reference is None else signals.waveform(reference, spec), title,
        sample_rate=spec.sample_rate)
  if shows_images(spec):
    return grid.save_image_grid(path, grid.as_images(samples, image_shape),
                                value_range=spec.value_range)
  samples = np.asarray(samples).reshape(len(samples), -1)
  if samples.shape[1] == 2:
    return grid.save_scatter(path, samples, reference, spec.modes, title)
  # Other vectors: show them as rows of an image.
  return grid.save_image_grid(path, samples[:, None, :, None],
                              columns=1, value_range=spec.value_range)


def write_reconstructions(path: str | pathlib.Path, originals: np.ndarray,
                          reconstructions: np.ndarray, spec: Any,
                          columns: int = 8) -> pathlib.Path:
  """Writes originals and their reconstructions in alternating rows."""
  image_shape = getattr(spec, "image_shape", None)
  return grid.save_pairs(path, grid.as_images(originals, image_shape),
                         grid.as_images(reconstructions, image_shape),
                         columns=columns, value_range=spec.value_range)


def write_completions(path: str | pathlib.Path, originals: np.ndarray, mask: np.ndarray,
                      completions: np.ndarray, spec: Any, columns: int = 8) -> pathlib.Path:
  """Writes rows of originals, masked inputs (unobserved values grey) and completions."""
  low, high = spec.value_range
  masked = np.where(np.asarray(mask, bool), originals, 0.5 * (low + high))
  image_shape = getattr(spec, "image_shape", None)
  return grid.save_row_groups(
      path, [grid.as_images(a, image_shape) for a in (originals, masked, completions)],
      columns=columns, value_range=spec.value_range)
