"""Between data space and model space: scaling, dequantization, discrete likelihoods, bits/dim.

Likelihood families (diffusion, and the exact-likelihood PixelCNN and RealNVP)
see data in a *model space* (here [-1, 1]) and report likelihoods in the
data's own terms. A `Codec`, made once from the `DataSpec`, holds the three
facts that need: the data's value range, whether the data are discrete (on
`levels` evenly spaced values) or continuous, and whether continuous data
were uniformly dequantized from `levels` levels. It maps data to model space
and back, dequantizes discrete data on the device, and converts a negative
log-likelihood in nats, taken in model space, to bits per dimension in the
units the data are reported in:

  codec = codec_lib.from_spec(spec, dequantized=config.data.dequantize)
  y = codec.encode(batch["x"])                       # model space [-1, 1]
  nll_nats = ...                                     # −log p(y), [B], model space
  bits = codec.bits_per_dim(nll_nats, dims=spec.dim)   # −log₂ p(x) / D, [B]
  x = codec.decode(samples)                          # back to the data range
  k = codec.level_index(batch["x"])                  # discrete data: int levels 0..L−1

μ-law companding (ITU-T G.711; WaveNet, van den Oord et al. 2016, eq. 2) maps
a signal in [-1, 1] to companded values in [-1, 1] and quantises them to 256
levels, finer near zero where audio spends its time: `mu_law_quantize` /
`mu_law_dequantize`, and the continuous `mu_law_compand` / `mu_law_expand`.
They take numpy or jax arrays and return the same kind (the data pipeline
uses numpy, samplers jax).

Units of the reported number (`codec.units` says which):
* discrete data (binary, or `levels` grey levels): −log₂ P(x)/D of the
  discrete values; model-space probabilities need no change of units.
* dequantized data (Theis et al. 2016): the density of x̃ = k + u on the
  integer grid k = 0..levels−1 (bins of width 1), which bounds the discrete
  −log₂ P(k)/D; the scaling from the grid to model space is counted.
* continuous data: the density of x in the data's own units; the scaling is
  counted (its log-Jacobian per dimension is `log_jacobian`).

A model with further invertible transforms (RealNVP's logit) adds their
log-Jacobians to the nats before the conversion, in model space.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

from jaxgen.core import rng
from jaxgen.errors import ConfigError

MU_LAW_LEVELS = 256

# A floor on bin probabilities, as in Ho et al.'s code (1e-12).
MIN_PROB = 1e-12
MODEL_RANGE = (-1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Codec:
  """An affine map from data [low, high] to model space [-1, 1], and the data's units.

  Attributes:
    low, high: the data's value range (`spec.value_range`).
    levels: discrete levels of the data (2 when binarized), or None for
      continuous data without a grid.
    dequantized: the data are continuous, dequantized from `levels` levels
      (values in [low, high), each level a bin of width (high − low)/levels).
    bounded: `decode` clips to [low, high] (images and discrete data).
  """

  low: float
  high: float
  levels: int | None = None
  dequantized: bool = False
  bounded: bool = True

  def __post_init__(self):
    if not self.high > self.low:
      raise ConfigError(f"a codec needs a non-empty value range, got [{self.low:g}, "
                        f"{self.high:g}]")
    if self.levels is not None and self.levels < 2:
      raise ConfigError(f"discrete data need at least 2 levels, got {self.levels}")
    if self.dequantized and self.levels is None:
      raise ConfigError("dequantized data need the number of levels they came from")

  @property
  def discrete(self) -> bool:
    """Whether the data take only the `levels` grid values (a discrete likelihood)."""
    return self.levels is not None and not self.dequantized

  @property
  def scale(self) -> float:
    """d(model space)/d(data space): the slope of `encode`."""
    return (MODEL_RANGE[1] - MODEL_RANGE[0]) / (self.high - self.low)

  def encode(self, x: jax.Array) -> jax.Array:
    """Data [low, high] -> model space [-1, 1] (affine)."""
    return MODEL_RANGE[0] + (x - self.low) * self.scale

  def decode(self, y: jax.Array) -> jax.Array:
    """Model space -> data, clipped to [low, high] when `bounded`."""
    x = self.low + (y - MODEL_RANGE[0]) / self.scale
    return jnp.clip(x, self.low, self.high) if self.bounded else x

  @property
  def log_jacobian(self) -> float:
    """log |d(model space)/d(reported units)| per dimension (0 for discrete data).

    Reported units: the integer grid for dequantized data, the data's own
    units for continuous data; discrete probabilities have no units.
    """
    if self.discrete:
      return 0.0
    if self.dequantized:
      return math.log(self.scale * (self.high - self.low) / self.levels)
    return math.log(self.scale)

  def bits_per_dim(self, nats: jax.Array, *, dims: int) -> jax.Array:
    """−log p in nats per example, taken in model space -> bits/dim in reported units."""
    return nats_to_bits_per_dim(nats, dims=dims, log_jacobian=self.log_jacobian)

  def level_index(self, x: jax.Array) -> jax.Array:
    """The level k in 0..levels−1 of discrete data x (int32; for softmax likelihoods)."""
    if not self.discrete:
      raise ValueError("level_index needs discrete data (a codec with levels, "
                       "not dequantized)")
    k = jnp.round((x - self.low) * ((self.levels - 1) / (self.high - self.low)))
    return jnp.clip(k, 0, self.levels - 1).astype(jnp.int32)

  def from_level_index(self, k: jax.Array) -> jax.Array:
    """Data values of levels k: low + k (high − low)/(levels − 1)."""
    if not self.discrete:
      raise ValueError("from_level_index needs discrete data")
    return self.low + k.astype(jnp.float32) * ((self.high - self.low) / (self.levels - 1))

  def dequantize(self, key: jax.Array, x: jax.Array) -> jax.Array:
    """Uniform dequantization of discrete data (Theis et al. 2016), in data units.

    x on the grid low + k (high − low)/(levels − 1) -> low + (k + u)(high − low)/levels
    with u ~ U[0, 1) per value, in [low, high). Pair it with `dequantized_codec()`.
    `key` is one key or per-example keys (see `jaxgen.core.rng`).
    """
    if not self.discrete:
      raise ValueError("dequantize needs discrete data (a codec with levels, "
                       "not already dequantized)")
    k = self.level_index(x).astype(x.dtype)
    u = rng.uniform(key, x.shape, x.dtype)
    return self.low + (k + u) * ((self.high - self.low) / self.levels)

  def dequantized_codec(self) -> Codec:
    """The codec of this codec's data after `dequantize`."""
    return dataclasses.replace(self, dequantized=True)

  @property
  def units(self) -> str:
    """What `bits_per_dim` measures, for evaluation protocols."""
    if self.discrete:
      return (f"bits per dimension of the {self.levels}-level discrete data "
              "(−log₂ P(x) / D, or a bound on it)")
    if self.dequantized:
      return (f"bits per dimension of the data dequantized from {self.levels} levels, "
              "in integer units (0..levels; bounds the discrete −log₂ P / D)")
    return "bits per dimension of the density of x in the data's units"


def from_spec(spec: Any, *, dequantized: bool = False) -> Codec:
  """The codec of data described by a `DataSpec`.

  Levels come from the spec: 2 for binarized data, `spec.levels` for discrete
  data; `dequantized` (the run's `data.dequantize`) makes them continuous.
  """
  low, high = (float(v) for v in spec.value_range)
  if not high > low:
    raise ConfigError(f"dataset {spec.name!r} has an empty value range [{low:g}, {high:g}]")
  if spec.binary:
    levels = 2
  else:
    levels = int(spec.levels) if spec.levels else None
  if dequantized and (spec.binary or levels is None):
    raise ConfigError(f"dequantized data need discrete source data; {spec.name!r} "
                      "is binary or continuous")
  discrete = levels is not None and not dequantized
  return Codec(low=low, high=high, levels=levels, dequantized=bool(dequantized),
               bounded=bool(spec.is_image or discrete))


def nats_to_bits_per_dim(nats: jax.Array, *, dims: int,
                         log_jacobian: jax.Array | float = 0.0) -> jax.Array:
  """Bits per dimension of −log p (nats per example, model space) in other units.

  `log_jacobian` = log |d(model space)/d(reported units)| per dimension: the
  density in reported units is p_model · |dy/dx|, so
  bits/dim = (nats / D − log_jacobian) / ln 2.
  """
  return (nats / dims - log_jacobian) / math.log(2.0)


def discretized_gaussian_log_prob(*, x: jax.Array, mean: jax.Array,
                                  log_scale: jax.Array | float, levels: int,
                                  low: float = MODEL_RANGE[0],
                                  high: float = MODEL_RANGE[1]) -> jax.Array:
  """log P(x) of a Gaussian discretized to `levels` values in [low, high]: [B, ...] -> [B].

  Ho et al. 2020, eq. 13: each grid value owns the bin [x − δ, x + δ],
  δ = half the grid step; the bins of `low` and `high` extend to −∞ and +∞,
  so the probabilities of all levels sum to one. Bin masses are floored at
  1e-12 (Ho et al.'s code). Sums over all axes but the first.
  """
  if levels < 2:
    raise ValueError(f"a discretized decoder needs at least 2 levels, got {levels}")
  half_width = 0.5 * (high - low) / (levels - 1)
  centered = x - mean
  inv_scale = jnp.exp(-jnp.asarray(log_scale, x.dtype))
  upper = inv_scale * (centered + half_width)
  lower = inv_scale * (centered - half_width)
  log_cdf_upper = log_ndtr(upper)            # log Φ(upper): the bin of `low`
  log_survival_lower = log_ndtr(-lower)      # log(1 − Φ(lower)): the bin of `high`
  # Φ(u) − Φ(l), taken in the tail where it does not cancel.
  mass = jnp.where(centered > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
  log_mass = jnp.log(jnp.maximum(mass, MIN_PROB))
  log_prob = jnp.where(x < low + half_width, log_cdf_upper,
                       jnp.where(x > high - half_width, log_survival_lower, log_mass))
  return jnp.sum(log_prob.reshape(log_prob.shape[0], -1), axis=-1)


def _namespace(x: Any):
  """jax.numpy for jax arrays (and tracers), numpy otherwise."""
  return jnp if isinstance(x, jax.Array) else np


def mu_law_compand(x: Any, *, levels: int = MU_LAW_LEVELS) -> Any:
  """F(x) = sign(x) ln(1 + μ|x|) / ln(1 + μ), μ = levels − 1, for x in [-1, 1] (clipped)."""
  xp = _namespace(x)
  mu = float(levels - 1)
  x = xp.clip(x, -1.0, 1.0)
  return (xp.sign(x) * xp.log1p(mu * xp.abs(x)) / math.log1p(mu)).astype(xp.float32)


def mu_law_expand(y: Any, *, levels: int = MU_LAW_LEVELS) -> Any:
  """F⁻¹(y) = sign(y) ((1 + μ)^|y| − 1) / μ: the inverse of `mu_law_compand`."""
  xp = _namespace(y)
  mu = float(levels - 1)
  y = xp.clip(y, -1.0, 1.0)
  return (xp.sign(y) * xp.expm1(xp.abs(y) * math.log1p(mu)) / mu).astype(xp.float32)


def mu_law_quantize(x: Any, *, levels: int = MU_LAW_LEVELS) -> Any:
  """The level k in 0..levels−1 of a signal x in [-1, 1]: F(x) rounded to the
  grid −1 + 2k/(levels − 1) (int32). The companded round-trip error is at most
  half a grid step, 1/(levels − 1)."""
  xp = _namespace(x)
  k = xp.rint((mu_law_compand(x, levels=levels) + 1.0) * (0.5 * (levels - 1)))
  return xp.clip(k, 0, levels - 1).astype(xp.int32)


def mu_law_dequantize(k: Any, *, levels: int = MU_LAW_LEVELS) -> Any:
  """The signal value F⁻¹(−1 + 2k/(levels − 1)) of level k: the inverse of `mu_law_quantize`."""
  xp = _namespace(k)
  y = k.astype(xp.float32) * (2.0 / (levels - 1)) - 1.0
  return mu_law_expand(y, levels=levels)
