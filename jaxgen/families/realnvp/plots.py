"""The 2-D density figure: the model's exact density on a grid, beside the data and samples.

  grid = density_grid(model, state, low=(-4, -4), high=(4, 4), points=200)
  density_figure("density.png", grid, data=test_points, samples=samples)

`density_grid` evaluates p(x) = exp(log_density) at the centres of a regular
grid, so `grid.density.sum() * grid.cell_area` is the quadrature of the
density over the box (≈ 1 when the box holds the mass; tested).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core.state import TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.realnvp import method as method_lib


@dataclasses.dataclass(frozen=True)
class DensityGrid:
  """p(x) at the centres of a points×points grid over [low, high] (data units)."""

  xs: np.ndarray        # [points] centres along x
  ys: np.ndarray        # [points] centres along y
  density: np.ndarray   # [points (y), points (x)]

  @property
  def cell_area(self) -> float:
    return float((self.xs[1] - self.xs[0]) * (self.ys[1] - self.ys[0]))

  @property
  def mass(self) -> float:
    """The midpoint-rule integral of the density over the grid's box."""
    return float(np.sum(self.density, dtype=np.float64) * self.cell_area)


def density_grid(model: method_lib.Model, state: TrainState, *, low: Sequence[float],
                 high: Sequence[float], points: int = 200,
                 chunk: int = 16384) -> DensityGrid:
  """The model's exact density of 2-D continuous data on a regular grid."""
  if model.settings.shape != (2,) or model.settings.dequantize:
    raise ConfigError(f"a density grid needs 2-D continuous data; this model's data "
                      f"are {model.settings.shape}" + (" and discrete"
                                                      if model.settings.dequantize else ""))
  edges = [np.linspace(lo, hi, points + 1) for lo, hi in zip(low, high)]
  xs, ys = [(e[1:] + e[:-1]) / 2 for e in edges]
  grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
  log_p = jax.jit(lambda s, x: method_lib.log_density(model, s, x))
  values = [np.asarray(log_p(state, jnp.asarray(grid[i:i + chunk])))
            for i in range(0, len(grid), chunk)]
  density = np.exp(np.concatenate(values).astype(np.float64)).reshape(points, points)
  return DensityGrid(xs=xs, ys=ys, density=density)


def density_figure(path: str | os.PathLike, grid: DensityGrid, *, data: np.ndarray,
                   samples: np.ndarray, title: str = "", dpi: int = 110) -> None:
  """Three panels on the grid's box: the exact density, the data, the samples."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from matplotlib.colors import LogNorm  # pylint: disable=import-outside-toplevel
  extent = (grid.xs[0], grid.xs[-1], grid.ys[0], grid.ys[-1])
  step = (grid.xs[1] - grid.xs[0], grid.ys[1] - grid.ys[0])
  bins = [np.append(grid.xs - step[0] / 2, grid.xs[-1] + step[0] / 2)[::2],
          np.append(grid.ys - step[1] / 2, grid.ys[-1] + step[1] / 2)[::2]]
  fig = Figure(figsize=(10.2, 3.6), dpi=dpi)
  axes = fig.subplots(1, 3)
  axes[0].imshow(grid.density, origin="lower", extent=extent, cmap="viridis")
  axes[0].set_title(f"exact density (mass in box {grid.mass:.4f})", fontsize=9)
  for ax, (name, points) in zip(axes[1:], (("data", data), ("samples", samples))):
    points = np.asarray(points)
    ax.hist2d(points[:, 0], points[:, 1], bins=bins, norm=LogNorm(), cmap="viridis")
    ax.set_title(f"{name} (n={len(points)})", fontsize=9)
  for ax in axes:
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
