"""Image grids and plots."""

from jaxgen.viz.grid import image_grid, save_image_grid, save_pairs, save_scatter

__all__ = ["image_grid", "save_image_grid", "save_pairs", "save_scatter"]
