"""Two-dimensional toy distributions for mode-coverage and density experiments."""

from __future__ import annotations

import numpy as np

from jaxgen.data._options import DataOptions
from jaxgen.data._splits import ArraySplit, RawData

NUM_TEST = 10_000

KINDS = {
    "ring8": "8 Gaussians (std 0.02) evenly spaced on a circle of radius 2 (Metz et al. 2017)",
    "grid25": "25 Gaussians (std 0.05) centred on {-4,-2,0,2,4}^2 (Srivastava et al. 2017)",
    "swissroll": "2-D swiss roll, sklearn-style with noise 1, divided by 5 (Grathwohl et al. 2019)",
    "moons": "two interleaved half circles, noise 0.1, labels = moon (Grathwohl et al. 2019)",
    "checkerboard": "uniform on the 8 dark squares of a 4x4 board spanning [-4, 4]^2 (Grathwohl et al. 2019)",
}


def mixture(kind: str) -> tuple[np.ndarray, float] | None:
  """Mode centres [M, 2] and std of a Gaussian-mixture kind, else None."""
  if kind == "ring8":
    angles = 2 * np.pi * np.arange(8) / 8
    return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02
  if kind == "grid25":
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    return grid.reshape(-1, 2), 0.05
  return None


def sample(kind: str, count: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
  """count points float32 [count, 2] of a toy kind and their int32 labels (or None)."""
  labels = None
  if kind in ("ring8", "grid25"):
    modes, std = mixture(kind)
    labels = rng.integers(len(modes), size=count)
    x = modes[labels] + std * rng.standard_normal((count, 2))
  elif kind == "swissroll":
    # sklearn.datasets.make_swiss_roll(noise=1.0)[:, [0, 2]] / 5, drawn from rng.
    t = 1.5 * np.pi * (1 + 2 * rng.random(count))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = (x + rng.standard_normal((count, 2))) / 5.0
  elif kind == "moons":
    # sklearn.datasets.make_moons(noise=0.1) * 2 + [-1, -0.2], with random angles.
    labels = rng.integers(2, size=count)
    angle = np.pi * rng.random(count)
    outer = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    inner = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    x = np.where(labels[:, None] == 0, outer, inner)
    x = (x + 0.1 * rng.standard_normal((count, 2))) * 2 + np.array([-1.0, -0.2])
  elif kind == "checkerboard":
    x1 = rng.random(count) * 4 - 2
    x2 = rng.random(count) - rng.integers(0, 2, count) * 2 + np.floor(x1) % 2
    x = np.stack([x1, x2], axis=1) * 2
  else:
    raise KeyError(kind)
  return x.astype(np.float32), None if labels is None else labels.astype(np.int32)


def load(kind: str, options: DataOptions) -> RawData:
  """Train/test splits of a toy kind, generated from options.generate_seed."""
  num_train, num_test = options.num_examples, NUM_TEST
  if options.max_examples:
    num_train = min(num_train, options.max_examples)
    num_test = min(num_test, options.max_examples)
  train = sample(kind, num_train, np.random.default_rng([options.generate_seed, 0]))
  test = sample(kind, num_test, np.random.default_rng([options.generate_seed, 1]))
  modes, std = mixture(kind) or (None, None)
  num_classes = {"ring8": 8, "grid25": 25, "moons": 2}.get(kind)
  return RawData(
      train=ArraySplit(*train), test=ArraySplit(*test), is_image=False,
      levels=None, num_classes=num_classes, modes=modes, mode_std=std)
