"""SRGAN's pure functions: the low-resolution input, the baseline, the content losses.

* `box_downsample`: the low-resolution image, the mean of each s x s block
  (what a camera with s x s larger pixels records; Ledig et al. use a bicubic
  kernel, which on 4x4 and 7x7 digits would blur across most of the image).
* `bicubic_upsample`: the baseline, `jax.image.resize(..., "bicubic")` (Keys'
  cubic, a = -0.5) clipped to the data's range.
* `pixel_mse`, `feature_mse`: the per-example content losses (Ledig et al.
  2017, eqs. 4 and 5); the feature loss compares activations of a frozen
  feature network (here the shipped digit LeNet standing in for VGG).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def box_downsample(x: Array, scale: int) -> Array:
  """[N, H, W, C] -> [N, H/scale, W/scale, C], each value the mean of its block."""
  n, height, width, channels = x.shape
  if height % scale or width % scale:
    raise ValueError(f"box_downsample: {height}x{width} is not divisible by {scale}")
  blocks = x.reshape(n, height // scale, scale, width // scale, scale, channels)
  return jnp.mean(blocks, axis=(2, 4))


def bicubic_upsample(x: Array, scale: int, value_range: tuple[float, float]) -> Array:
  """[N, h, w, C] -> [N, h·scale, w·scale, C] by bicubic interpolation, clipped."""
  n, height, width, channels = x.shape
  up = jax.image.resize(x, (n, height * scale, width * scale, channels), "bicubic")
  return jnp.clip(up, *value_range)


def pixel_mse(*, output: Array, target: Array) -> Array:
  """Per-example pixel MSE (eq. 4, averaged over the H·W·C values): [N]."""
  if output.shape != target.shape:
    raise ValueError(f"output {output.shape} and target {target.shape} differ")
  return jnp.mean(jnp.square(output - target), axis=tuple(range(1, output.ndim)))


def feature_mse(*, output_features: Array, target_features: Array) -> Array:
  """Per-example feature MSE (eq. 5, averaged over the feature values): [N]."""
  if output_features.shape != target_features.shape:
    raise ValueError(f"feature shapes {output_features.shape} and "
                     f"{target_features.shape} differ")
  axes = tuple(range(1, output_features.ndim))
  return jnp.mean(jnp.square(output_features - target_features), axis=axes)


def content_loss(*, output: Array, target: Array, output_features: Array | None,
                 target_features: Array | None, pixel_weight: float,
                 feature_weight: float) -> tuple[Array, dict[str, Array]]:
  """pixel_weight · pixel MSE + feature_weight · feature MSE, per example: ([N], parts)."""
  parts = {"pixel_mse": pixel_mse(output=output, target=target)}
  loss = pixel_weight * parts["pixel_mse"]
  if feature_weight:
    parts["feature_mse"] = feature_mse(output_features=output_features,
                                       target_features=target_features)
    loss = loss + feature_weight * parts["feature_mse"]
  return loss, parts
