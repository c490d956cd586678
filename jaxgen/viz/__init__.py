"""Image grids and plots, and the pictures a run writes."""

from jaxgen.viz.grid import image_grid, save_image_grid, save_pairs, save_scatter
from jaxgen.viz.samples import write_completions, write_reconstructions, write_samples

__all__ = ["image_grid", "save_image_grid", "save_pairs", "save_scatter",
           "write_completions", "write_reconstructions", "write_samples"]
