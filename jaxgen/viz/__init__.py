"""Image grids and plots, and the pictures a run writes."""

from jaxgen.viz.grid import image_grid, save_image_grid, save_pairs, save_scatter
from jaxgen.viz.samples import write_completions, write_reconstructions, write_samples
from jaxgen.viz.signals import save_signals, write_wav, write_wavs

__all__ = ["image_grid", "save_image_grid", "save_pairs", "save_scatter", "save_signals",
           "write_completions", "write_reconstructions", "write_samples", "write_wav",
           "write_wavs"]
