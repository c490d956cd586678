"""Evaluation metrics as pure functions of arrays."""

from jaxgen.metrics.mode_coverage import mode_coverage
from jaxgen.metrics.fid import fid_from_features
from jaxgen.metrics.fid import frechet_distance
from jaxgen.metrics.fid import gaussian_statistics
from jaxgen.metrics.inception_score import inception_score
from jaxgen.metrics.kid import kid_from_features
from jaxgen.metrics.kid import mmd2_unbiased
from jaxgen.metrics.kid import polynomial_kernel
from jaxgen.metrics.kid import polynomial_mmd2
from jaxgen.metrics.precision_recall import density_coverage
from jaxgen.metrics.precision_recall import knn_radii
from jaxgen.metrics.precision_recall import pairwise_distances
from jaxgen.metrics.precision_recall import precision_recall

__all__ = [
    "mode_coverage",
    "fid_from_features",
    "frechet_distance",
    "gaussian_statistics",
    "inception_score",
    "kid_from_features",
    "mmd2_unbiased",
    "polynomial_kernel",
    "polynomial_mmd2",
    "density_coverage",
    "knn_radii",
    "pairwise_distances",
    "precision_recall",
]

# The FID Inception (pytorch-fid's network, ported to Flax in jaxgen.nn.inception).
from jaxgen.metrics.inception_weights import InceptionWeights
from jaxgen.metrics.inception_weights import load_inception_weights
from jaxgen.metrics.inception_weights import resolve_weights_path
from jaxgen.nn.inception import inception_features

__all__ += [
    "InceptionWeights",
    "inception_features",
    "load_inception_weights",
    "resolve_weights_path",
]
