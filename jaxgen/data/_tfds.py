"""tensorflow-datasets sources through `tfds.data_source` (random access, no TensorFlow)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
from typing import Any

import numpy as np

from jaxgen.data import _transforms
from jaxgen.data._options import DataOptions
from jaxgen.data._splits import RawData, fixed_split
from jaxgen.errors import DataError


@dataclasses.dataclass(frozen=True)
class TfdsSplit:
  """Examples ids[i] of a tfds data source, decoded one batch at a time."""

  source: Any  # a tfds random-access data source
  ids: np.ndarray  # which records of source, in order
  image_key: str
  label_key: str | None
  shape: tuple[int, ...]
  image_size: int = 0
  channels: int = 0
  name: str = ""

  @property
  def has_labels(self) -> bool:
    return self.label_key is not None

  def __len__(self) -> int:
    return len(self.ids)

  def gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    records = _read_records(self.source, self.ids[ids].tolist())
    x = np.stack([np.asarray(record[self.image_key]) for record in records])
    if x.ndim == 3:
      x = x[..., None]
    if self.image_size or self.channels:
      x = _transforms.convert_images(x, self.image_size, self.channels, self.name)
    labels = None
    if self.label_key is not None:
      labels = np.array([record[self.label_key] for record in records], np.int32)
    return x, labels

  def take(self, count: int) -> TfdsSplit:
    return dataclasses.replace(self, ids=self.ids[:count])

  def convert_images(self, image_size: int, channels: int, source: str) -> TfdsSplit:
    height, width, depth = self.shape
    shape = (image_size or height, image_size or width, channels or depth)
    return dataclasses.replace(self, shape=shape, image_size=image_size,
                               channels=channels, name=source)


def _read_records(source: Any, keys: list[int]) -> list[dict[str, Any]]:
  """Records keys of source, in one batched read where the source allows it."""
  try:
    # ArrayRecord sources read a batch of records in parallel.
    return list(source.__getitems__(keys))
  except TypeError:
    # tfds.testing.mock_data installs a __getitems__ that cannot be called
    # (it misses its self argument); per-key reads work there.
    return [source[key] for key in keys]


def _prepare_hint(name: str, data_dir: str) -> str:
  return (f"on a machine with internet run `python -m "
          f"tensorflow_datasets.scripts.download_and_prepare --datasets={name} "
          f"--data_dir={data_dir} --file_format=array_record` and copy "
          f"{data_dir}/{name} to this machine (datasets that need a manual "
          f"download read it from {data_dir}/downloads/manual)")


@contextlib.contextmanager
def _quiet_absl():
  """Hides absl/tfds warnings ("Variant folder ... has no dataset_info.json")
  while a dataset is looked up: what goes wrong is said in one DataError."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def load(name: str, options: DataOptions) -> RawData:
  """A tfds dataset prepared in array_record format under options.data_dir."""
  with _quiet_absl():
    return _load(name, options)


def _load(name: str, options: DataOptions) -> RawData:
  """`load`, with library warnings hidden by the caller."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  source = f"tfds:{name}"
  data_dir = options.data_dir or None
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    known = tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(name.split("/")[0], known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        "; see tfds.list_builders()")
    raise DataError(f"unknown tensorflow-datasets dataset {name!r}{hint}") from e
  root = str(builder.data_dir_root)

  features = builder.info.features
  image_key = "image" if "image" in features else next(
      (key for key, feature in features.items()
       if isinstance(feature, tfds.features.Image)), None)
  if image_key is None:
    raise DataError(f"{source} has no image feature (features: {sorted(features)})")
  label_key = None
  if "label" in features and isinstance(features["label"], tfds.features.ClassLabel):
    label_key = "label"
  num_classes = features[label_key].num_classes if label_key else None
  shape = tuple(features[image_key].shape)
  if None in shape[:2] and not options.image_size:
    raise DataError(f"{source} has images of varying size {shape}; set data.image_size")
  levels = 256 if np.dtype(features[image_key].np_dtype) == np.uint8 else None

  # Split names are only known once prepared; assume the common 'test'.
  known_splits = set(builder.info.splits.keys())
  test_split = "test"
  if known_splits and "test" not in known_splits:
    test_split = "validation" if "validation" in known_splits else None
  splits = ["train"] if test_split is None else ["train", test_split]

  # Try reading first and explain a failure after: tfds.data_source's own error
  # for an unprepared dataset talks about file formats. (Asking is_prepared()
  # first would reject tfds.testing.mock_data, which fakes the reads only.)
  try:
    sources = tfds.data_source(name, split=splits, data_dir=data_dir, download=False)
  except Exception as e:  # pylint: disable=broad-except
    if not builder.is_prepared():
      raise DataError(f"{source} is not prepared in {root}; "
                      f"{_prepare_hint(name, root)}") from e
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise DataError(f"{source} in {root} cannot be read with random access "
                    f"({first_line}); re-prepare it with --file_format=array_record"
                    ) from e

  def split_of(data_source: Any, ids: np.ndarray) -> TfdsSplit:
    return TfdsSplit(data_source, ids, image_key, label_key,
                     shape if len(shape) == 3 else shape + (1,), name=source)

  train_source = sources[0]
  if test_split is not None:
    train = split_of(train_source, np.arange(len(train_source)))
    test = split_of(sources[1], np.arange(len(sources[1])))
  else:  # no held-out split: a fixed split of train, unstratified (labels unread)
    train_ids, test_ids = fixed_split(len(train_source), options.test_fraction)
    train, test = split_of(train_source, train_ids), split_of(train_source, test_ids)
  return RawData(train=train, test=test, is_image=True, levels=levels,
                 num_classes=num_classes)
