"""Plots of latent spaces: interpolations, traversals, manifolds, codes, active units."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend is touched

from jaxgen.viz import grid

PathLike = str | pathlib.Path


def _images(x: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray:
  return grid.as_images(np.asarray(x), image_shape)


def save_rows(path: PathLike, rows: np.ndarray,
              image_shape: Sequence[int] | None = None,
              value_range: tuple[float, float] = (0.0, 1.0)) -> pathlib.Path:
  """Writes images [R, C, ...] as an R x C grid: one interpolation or traversal a row."""
  rows = np.asarray(rows)
  num_rows, num_cols = rows.shape[:2]
  flat = _images(rows.reshape((num_rows * num_cols,) + rows.shape[2:]), image_shape)
  return grid.save_image_grid(path, flat, columns=num_cols, value_range=value_range)


def save_manifold(path: PathLike, images: np.ndarray, num_per_side: int,
                  image_shape: Sequence[int] | None = None,
                  value_range: tuple[float, float] = (0.0, 1.0)) -> pathlib.Path:
  """Tiles the decoded `jaxgen.latent.manifold_grid` codes, row-major, n x n."""
  images = _images(images, image_shape)
  if len(images) != num_per_side * num_per_side:
    raise ValueError(f"save_manifold: {len(images)} images do not fill a "
                     f"{num_per_side}x{num_per_side} grid")
  return grid.save_image_grid(path, images, columns=num_per_side,
                              value_range=value_range, scale=2)


def save_codes(path: PathLike, codes: np.ndarray, labels: np.ndarray | None = None,
               title: str = "") -> pathlib.Path:
  """Scatter of 2-D codes [N, 2], coloured by integer label when given."""
  codes = np.asarray(codes)
  if codes.ndim != 2 or codes.shape[1] != 2:
    raise ValueError(f"save_codes needs 2-D codes [N, 2], got shape {codes.shape}")
  fig = Figure(figsize=(5.5, 4.8), dpi=100)
  ax = fig.add_subplot()
  if labels is None:
    ax.scatter(codes[:, 0], codes[:, 1], s=4)
  else:
    labels = np.asarray(labels)
    cmap = matplotlib.colormaps.get_cmap("tab10" if labels.max(initial=0) < 10 else "tab20")
    for label in np.unique(labels):
      chosen = labels == label
      ax.scatter(codes[chosen, 0], codes[chosen, 1], s=4, color=cmap(int(label) % cmap.N),
                 label=str(label))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
              markerscale=3, frameon=False)
  ax.set_xlabel("code 1")
  ax.set_ylabel("code 2")
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  return _save(fig, path)


def save_active_units(path: PathLike, variance: np.ndarray, threshold: float = 0.01,
                      title: str = "") -> pathlib.Path:
  """Bar plot of Var_x(E_q[z_i|x]) per unit (log scale) with the activity threshold."""
  variance = np.asarray(variance)
  order = np.argsort(-variance)
  fig = Figure(figsize=(max(4.0, 0.25 * len(variance) + 1.5), 3.2), dpi=100)
  ax = fig.add_subplot()
  ax.bar(np.arange(len(variance)), np.maximum(variance[order], 1e-8),
         color=np.where(variance[order] > threshold, "tab:blue", "0.6"))
  ax.axhline(threshold, color="tab:red", lw=1, ls="--", label=f"threshold {threshold:g}")
  ax.set_yscale("log")
  ax.set_xlabel("latent unit (sorted)")
  ax.set_ylabel("Var_x E_q[z_i | x]")
  ax.legend(fontsize=7)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  return _save(fig, path)


def _save(fig, path: PathLike) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  return path
