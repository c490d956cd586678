"""DataSpec: what a model needs to know about the examples it will be fed."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Static description of a dataset as the training batches will show it.

  Everything describes one example *after* the transforms, except `levels`,
  which counts the intensity levels of the raw data (256 for uint8 images, 17
  for sklearn digits) so that likelihood families can compute bits per dim.
  """

  name: str
  shape: tuple[int, ...]  # one example: images (H, W, C), signals (T, C), vectors (D,)
  num_classes: int | None
  num_train: int
  num_test: int
  is_image: bool  # True when each x is (H, W, C); False for vectors, flattened images included
  value_range: tuple[float, float]
  binary: bool  # values are exactly 0 or 1
  # Mode centres [M, 2] and their standard deviation, for toy mixtures; arrays
  # make dataclass equality ambiguous, so modes is left out of it.
  modes: np.ndarray | None = dataclasses.field(default=None, compare=False)
  mode_std: float | None = None
  levels: int | None = None  # None for continuous data
  # (H, W, C) of the source images, also when flattened, so viz can reshape.
  image_shape: tuple[int, int, int] | None = None
  # Signals: each x is (T, C), time first. `companding` names the transform
  # between the signal and x ('mu_law': x is the companded, quantised value,
  # see `jaxgen.data.codec.mu_law_expand`); `sample_rate` (Hz), when known,
  # lets samples be written as .wav files.
  is_sequence: bool = False
  companding: str = "none"
  sample_rate: float | None = None
  # Paired data (image-to-image translation): each batch holds "source" of this
  # shape beside "x", in the same value range; `pair` says where it comes from:
  # 'file' (npz `source` arrays, pairs: folders) or a derived kind ('edges', 'masked').
  source_shape: tuple[int, ...] | None = None
  pair: str = "none"

  @property
  def dim(self) -> int:
    """Number of values in one example."""
    return int(np.prod(self.shape))

  def describe(self) -> str:
    """One line for logs and `jaxgen list`."""
    parts = [
        f"{self.name}: {self.num_train} train / {self.num_test} test",
        f"x {self.shape} in [{self.value_range[0]:g}, {self.value_range[1]:g}]",
    ]
    if self.binary:
      parts.append("binary")
    elif self.levels is not None:
      parts.append(f"{self.levels} levels")
    if self.num_classes is not None:
      parts.append(f"{self.num_classes} classes")
    if self.modes is not None:
      parts.append(f"{len(self.modes)} modes, std {self.mode_std:g}")
    if self.companding != "none":
      parts.append(f"{self.companding} companded")
    if self.sample_rate:
      parts.append(f"{self.sample_rate:g} Hz")
    if self.source_shape is not None:
      parts.append(f"paired ({self.pair}): source {self.source_shape}")
    return ", ".join(parts)

  def to_json(self) -> dict[str, Any]:
    """The spec as JSON-ready values (arrays and tuples become lists)."""
    out = {}
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      out[field.name] = value.tolist() if isinstance(value, np.ndarray) else value
    return json.loads(json.dumps(out, default=lambda o: list(o) if isinstance(
        o, tuple) else (o.tolist() if hasattr(o, "tolist") else str(o))))

  @classmethod
  def from_json(cls, values: dict[str, Any]) -> DataSpec:
    """Rebuilds a spec saved with `to_json` (unknown keys are ignored)."""
    kwargs = {}
    for field in dataclasses.fields(cls):
      if field.name not in values:
        continue
      value = values[field.name]
      if isinstance(value, list):
        value = (np.asarray(value, np.float32) if field.name == "modes"
                 else tuple(tuple(v) if isinstance(v, list) else v for v in value))
      kwargs[field.name] = value
    return cls(**kwargs)

  def example_batch(self, batch_size: int) -> dict[str, np.ndarray]:
    """A zero batch with the shapes and dtypes of real batches (for eval_shape)."""
    batch = {"x": np.zeros((batch_size,) + tuple(self.shape), np.float32)}
    if self.source_shape is not None:
      batch["source"] = np.zeros((batch_size,) + tuple(self.source_shape), np.float32)
    if self.num_classes:
      batch["label"] = np.zeros((batch_size,), np.int32)
    return batch
