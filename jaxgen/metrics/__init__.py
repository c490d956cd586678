"""Evaluation metrics as pure functions of arrays."""

from jaxgen.metrics.mode_coverage import mode_coverage
from jaxgen.metrics.fid import fid_from_features
from jaxgen.metrics.fid import frechet_distance
from jaxgen.metrics.fid import gaussian_statistics

__all__ = [
    "mode_coverage",
    "fid_from_features",
    "frechet_distance",
    "gaussian_statistics",
]
