"""Latent-space tools for every latent-variable model (VAEs, autoencoders, GANs).

Pure functions of arrays; they work on codes, and on inputs once encoded:

  z = jax.random.normal(key, (2, 16))
  path = latent.interpolate(z[0], z[1], 9, kind="spherical")  # [9, 16]
  images = method.decode(state, path)
  rows = latent.traverse(z[0], dim=3, values=jnp.linspace(-3, 3, 7))  # [7, 16]
  grid = latent.manifold_grid(20)              # [400, 2]: decode and tile 20x20
  units = latent.active_units(posterior_means)  # units.count, units.variance
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jaxgen.errors import ConfigError, choices

INTERPOLATIONS = ("linear", "spherical")
# Above this cosine (angles below ~1.4e-3 rad) slerp's sin(ω) in the
# denominator loses precision in float32; the two paths agree there to O(ω²)
# relative, so the straight line is used.
_MAX_COSINE = 1.0 - 1e-6


def interpolate(a: jax.Array, b: jax.Array, num: int,
                kind: str = "linear") -> jax.Array:
  """`num` evenly spaced points from a to b, endpoints included: -> [num, *a.shape].

  a, b: [..., d] codes (one code, or a batch of codes interpolated pairwise).
  `kind='spherical'` is slerp (Shoemake 1985; White 2016 for generative
  models): it moves along the great circle at a constant angular speed, so two
  codes of equal norm keep that norm all the way, where the straight line
  passes through the low-norm region a Gaussian prior rarely produces.
  Interpolation is over the last axis; nearly parallel or zero codes fall back
  to the straight line.
  """
  if kind not in INTERPOLATIONS:
    raise ConfigError(f"interpolation kind {kind!r} is not one of {choices(INTERPOLATIONS)}")
  if num < 2:
    raise ConfigError(f"interpolate needs num >= 2 to include both endpoints, got {num}")
  a, b = jnp.asarray(a), jnp.asarray(b)
  if a.shape != b.shape:
    raise ValueError(f"interpolate: a {a.shape} and b {b.shape} differ in shape")
  dtype = jnp.result_type(a.dtype, jnp.float32)
  a, b = a.astype(dtype), b.astype(dtype)
  t = jnp.linspace(0.0, 1.0, num, dtype=dtype).reshape((num,) + (1,) * a.ndim)
  linear = (1.0 - t) * a + t * b
  if kind == "linear":
    return linear
  # Every quantity is made safe before the nonlinearity, not only selected
  # after it, so gradients stay finite on the fallback branch too.
  square_a = jnp.sum(a * a, axis=-1, keepdims=True)
  square_b = jnp.sum(b * b, axis=-1, keepdims=True)
  nonzero = (square_a > 0) & (square_b > 0)
  norm_product = jnp.sqrt(jnp.where(nonzero, square_a * square_b, 1.0))
  cosine = jnp.sum(a * b, axis=-1, keepdims=True) / norm_product
  # Angles near pi have no unique great circle either; slerp still picks one
  # through the plane of a and b, which is what users expect.
  use_slerp = nonzero & (cosine < _MAX_COSINE)
  omega = jnp.arccos(jnp.where(use_slerp, jnp.clip(cosine, -1.0, 1.0), 0.0))
  safe_sin = jnp.where(use_slerp, jnp.sin(omega), 1.0)
  spherical = (jnp.sin((1.0 - t) * omega) * a + jnp.sin(t * omega) * b) / safe_sin
  spherical = jnp.where(use_slerp, spherical, linear)
  # Exact endpoints (sin rounding would otherwise leave ~1e-7 errors).
  return spherical.at[0].set(a).at[-1].set(b)


def traverse(z: jax.Array, dim: int, values: Sequence[float] | jax.Array) -> jax.Array:
  """Copies of z with coordinate `dim` set to each value: [..., d] -> [V, ..., d]."""
  z = jnp.asarray(z)
  if not -z.shape[-1] <= dim < z.shape[-1]:
    raise ConfigError(f"traverse: dim {dim} is outside a {z.shape[-1]}-dimensional code")
  values = jnp.asarray(values, z.dtype).reshape(-1)
  copies = jnp.broadcast_to(z, (values.shape[0],) + z.shape)
  return copies.at[..., dim].set(values.reshape((-1,) + (1,) * (z.ndim - 1)))


def manifold_grid(num_per_side: int, *, latent_dim: int = 2,
                  dims: tuple[int, int] = (0, 1), low: float = 0.05,
                  high: float = 0.95, base: jax.Array | None = None) -> jax.Array:
  """A grid of codes through the inverse normal CDF: -> [num_per_side², latent_dim].

  Kingma & Welling 2014, fig. 4: evenly spaced probabilities in [low, high]
  mapped through Φ⁻¹, so each cell covers equal prior mass. Row-major: code
  r * n + c has dims[0] = Φ⁻¹(p_r) and dims[1] = Φ⁻¹(p_c), with p decreasing
  over rows so the first dimension points up when the decoded images are
  tiled (`jaxgen.viz.latent.save_manifold`). Other coordinates come from
  `base` (default zeros, the prior mean).
  """
  if num_per_side < 2:
    raise ConfigError(f"manifold_grid needs num_per_side >= 2, got {num_per_side}")
  if not 0.0 < low < high < 1.0:
    raise ConfigError(f"manifold_grid needs 0 < low < high < 1, got {low}, {high}")
  if dims[0] == dims[1] or not all(0 <= d < latent_dim for d in dims):
    raise ConfigError(f"manifold_grid dims {dims} must be two different dimensions "
                      f"of a {latent_dim}-dimensional code")
  values = ndtri(jnp.linspace(low, high, num_per_side))
  rows, cols = jnp.meshgrid(values[::-1], values, indexing="ij")
  base = jnp.zeros((latent_dim,)) if base is None else jnp.asarray(base, jnp.float32)
  if base.shape != (latent_dim,):
    raise ValueError(f"manifold_grid: base has shape {base.shape}, expected ({latent_dim},)")
  grid = jnp.broadcast_to(base, (num_per_side * num_per_side, latent_dim))
  grid = grid.at[:, dims[0]].set(rows.reshape(-1))
  return grid.at[:, dims[1]].set(cols.reshape(-1))


class ActiveUnits(NamedTuple):
  """The result of `active_units`."""

  count: jax.Array      # int32 scalar: the number of active units
  active: jax.Array     # bool [d]
  variance: jax.Array   # [d]: Var over x of E_q[z_i | x]


def active_units(posterior_means: jax.Array, threshold: float = 0.01) -> ActiveUnits:
  """Burda et al. 2016, sec. 5.2: unit i is active if Cov_x(E_q[z_i|x]) > threshold.

  posterior_means: [N, d], E_q[z | x] for N inputs (a VAE's encoder mean). An
  inactive unit's posterior ignores the input (posterior collapse). The
  variance is the population variance over the N inputs.
  """
  posterior_means = jnp.asarray(posterior_means)
  if posterior_means.ndim != 2 or posterior_means.shape[0] < 2:
    raise ValueError(f"active_units needs posterior means [N >= 2, d], got shape "
                     f"{posterior_means.shape}")
  variance = jnp.var(posterior_means.astype(jnp.float32), axis=0)
  active = variance > threshold
  return ActiveUnits(jnp.sum(active, dtype=jnp.int32), active, variance)


def encode_all(encode: Callable[..., Any], state: Any, x: np.ndarray,
               batch_size: int = 500, key: jax.Array | None = None) -> np.ndarray:
  """Codes of many inputs in batches: a method's `encode`, its first output if a tuple.

  For a VAE this is the posterior mean E_q[z|x]; for an autoencoder, the code.
  """
  fn = jax.jit(lambda s, x: _first(encode(s, x, key)))
  parts = [np.asarray(fn(state, jnp.asarray(x[i:i + batch_size])))
           for i in range(0, len(x), batch_size)]
  return np.concatenate(parts)


def _first(out: Any) -> jax.Array:
  return out[0] if isinstance(out, (tuple, list)) else out
