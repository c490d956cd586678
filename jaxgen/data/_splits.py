"""Raw splits (random access by example index) and the fixed train/test split."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

# Seed of every fixed train/test split. Deliberately not the run seed: the test
# set must be the same whatever seed a run trains with.
SPLIT_SEED = 20240607


class Split(Protocol):
  """One split of raw examples, read a whole batch at a time."""

  shape: tuple[int, ...]  # one raw example
  has_labels: bool

  def __len__(self) -> int:
    ...

  def gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw examples [len(ids), *shape] and int32 labels [len(ids)] (or None)."""
    ...

  def take(self, count: int) -> Split:
    """The first count examples."""
    ...

  def convert_images(self, image_size: int, channels: int, source: str) -> Split:
    """The split with images resized / converted (see transforms.convert_images)."""
    ...


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """A split held in memory; gathering a batch is one fancy-indexing call."""

  x: np.ndarray  # [N, *shape], uint8 for discrete data, float32 otherwise
  labels: np.ndarray | None = None  # int32 [N]
  # Paired data: the source image of each target x, [N, *source_shape], same dtype.
  source: np.ndarray | None = None

  def __post_init__(self):
    if self.labels is not None and len(self.labels) != len(self.x):
      raise ValueError(f"{len(self.x)} examples but {len(self.labels)} labels")
    if self.source is not None and len(self.source) != len(self.x):
      raise ValueError(f"{len(self.x)} examples but {len(self.source)} sources")

  @property
  def shape(self) -> tuple[int, ...]:
    return tuple(self.x.shape[1:])

  @property
  def has_labels(self) -> bool:
    return self.labels is not None

  def __len__(self) -> int:
    return len(self.x)

  def gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    labels = None if self.labels is None else self.labels[ids]
    return self.x[ids], labels

  def gather_source(self, ids: np.ndarray) -> np.ndarray:
    """The raw source images of examples `ids` (paired data only)."""
    return self.source[ids]

  def take(self, count: int) -> ArraySplit:
    labels = None if self.labels is None else self.labels[:count]
    source = None if self.source is None else self.source[:count]
    return ArraySplit(self.x[:count], labels, source)

  def convert_images(self, image_size: int, channels: int, source: str) -> ArraySplit:
    from jaxgen.data import _transforms  # pylint: disable=g-import-not-at-top
    paired = None if self.source is None else _transforms.convert_images(
        self.source, image_size, channels, source)
    return ArraySplit(
        _transforms.convert_images(self.x, image_size, channels, source),
        self.labels, paired)


@dataclasses.dataclass(frozen=True)
class RawData:
  """What a source loader returns: two raw splits and what they are."""

  train: Split
  test: Split
  is_image: bool
  levels: int | None  # None for continuous data
  num_classes: int | None = None
  modes: np.ndarray | None = None
  mode_std: float | None = None
  is_sequence: bool = False  # each example is a signal [T, C]
  sample_rate: float | None = None  # samples per second of a signal, when known


def fixed_split(count: int, test_fraction: float,
                labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Sorted (train_ids, test_ids) of a fixed split with round(count * test_fraction) test examples.

  With labels the split is stratified: each class gives its share to the
  test set (largest remainders settle the rounding), so small sets such as
  sklearn digits keep their class balance in both splits.
  """
  num_test = int(round(count * test_fraction))
  num_test = min(max(num_test, 1), count - 1)
  rng = np.random.default_rng(SPLIT_SEED)
  if labels is None:
    test = rng.permutation(count)[:num_test]
  else:
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (num_test / count)
    take = np.floor(quota).astype(int)
    remainder_order = np.argsort(-(quota - take), kind="stable")
    take[remainder_order[:num_test - take.sum()]] += 1
    test = np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, take)
    ])
  is_test = np.zeros(count, bool)
  is_test[test] = True
  return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def split_arrays(x: np.ndarray, labels: np.ndarray | None, test_fraction: float,
                 source: np.ndarray | None = None) -> tuple[ArraySplit, ArraySplit]:
  """Fixed stratified (when labelled) train/test ArraySplits of one set of arrays."""
  train_ids, test_ids = fixed_split(len(x), test_fraction, labels)

  def part(ids: np.ndarray) -> ArraySplit:
    return ArraySplit(x[ids], None if labels is None else labels[ids],
                      None if source is None else source[ids])

  return part(train_ids), part(test_ids)


def num_classes_of(*label_arrays: np.ndarray | None) -> int | None:
  """max label + 1 over the given label arrays, or None without labels."""
  present = [labels for labels in label_arrays if labels is not None and len(labels)]
  if not present:
    return None
  return int(max(labels.max() for labels in present)) + 1
