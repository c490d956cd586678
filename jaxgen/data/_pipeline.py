"""Datasets, the training stream and evaluation batches.

Why the index stream is ours: grain's `MapDataset.shuffle()` costs ~50 us per
element here (~6 ms per 128-example batch, more than a small model's train
step). So element b of the training pipeline is global batch b: its row ids
come from one cached numpy permutation per epoch, all its rows are fetched in
one gather (fancy indexing, or one batched tfds read), and the transforms run
vectorised over the batch (~0.26 ms per batch in all). grain still provides the
composition, the per-batch RNG of random transforms (seeded by the batch index)
and checkpointable iteration; `pipeline[b]` is batch b, so any position can be
recomputed.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import grain
import numpy as np

from jaxgen.data import _pairs, _transforms, codec
from jaxgen.data._options import DataOptions, make_options
from jaxgen.data._registry import load_raw
from jaxgen.data._spec import DataSpec
from jaxgen.data._splits import ArraySplit, RawData, Split
from jaxgen.data._transforms import Transform
from jaxgen.errors import ConfigError, DataError, choices

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Raw train/test splits, the transform that turns them into model inputs, and its spec."""

  spec: DataSpec
  train: Split
  test: Split
  transform: Transform
  options: DataOptions

  def split(self, name: str) -> Split:
    """The raw 'train' or 'test' split."""
    if name not in SPLITS:
      raise ConfigError(f"split {name!r} is not valid; choose {choices(SPLITS)}")
    return self.train if name == "train" else self.test

  def describe(self) -> str:
    """One line: sizes, shape, range, classes."""
    return self.spec.describe()


def from_config(config: Mapping[str, Any]) -> Dataset:
  """The dataset a `data` config (see default_config()) describes."""
  values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return _build(make_options(values))


def load_dataset(name: str = "digits", **options: Any) -> Dataset:
  """The dataset `name` with options named as in default_config()."""
  return _build(make_options({"name": name, **options}))


def _build(options: DataOptions) -> Dataset:
  """Reads the raw splits, applies the load-time options and derives the spec."""
  raw = load_raw(options)
  train, test = raw.train, raw.test
  if options.max_examples:
    train, test = train.take(options.max_examples), test.take(options.max_examples)
  if options.image_size or options.channels:
    if not raw.is_image:
      key = "image_size" if options.image_size else "channels"
      raise ConfigError(f"data.{key}={getattr(options, key)} needs an image "
                        f"dataset; {options.name} holds vectors")
    train = train.convert_images(options.image_size, options.channels, options.name)
    test = test.convert_images(options.image_size, options.channels, options.name)
  if len(train) == 0:
    raise DataError(f"{options.name} has no training examples")

  levels = _check_signal_options(options, raw, train)
  if options.dequantize and levels is None:
    raise ConfigError(f"data.dequantize=True needs discrete data; {options.name} "
                      "is continuous")
  scale = options.scale
  if scale == "auto":
    scale = "unit" if options.binarize != "none" or (
        raw.is_image and raw.levels is not None) else "none"
    if options.companding != "none":
      scale = "symmetric"  # the companded signal itself, on its 256-level grid
  data_range = (0.0, 1.0)
  if levels is None:
    data_range = _min_max(train)
  transform = Transform(scale=scale, levels=levels, data_range=data_range,
                        binarize="none", dequantize=options.dequantize,
                        flatten=options.flatten, companding=options.companding)
  if options.binarize != "none":
    low, high = transform.value_range
    if low < 0.0 or high > 1.0:
      raise ConfigError(
          f"data.binarize={options.binarize!r} needs values in [0, 1], but "
          f"data.scale={options.scale!r} leaves {options.name} in [{low:g}, "
          f"{high:g}]; use scale 'auto' or 'unit'")
    transform = dataclasses.replace(transform, binarize=options.binarize)

  source_shape, pair = _check_pairs(options, raw, train, transform)
  shape = tuple(int(d) for d in train.shape)
  if options.crop:
    if not raw.is_sequence or options.flatten:
      raise ConfigError(f"data.crop={options.crop} cuts windows out of signals; "
                        f"{options.name} holds " + ("images" if raw.is_image else "vectors"))
    if options.crop > shape[0]:
      raise ConfigError(f"data.crop={options.crop} is longer than the {shape[0]} samples "
                        f"of the signals of {options.name}")
    shape = (options.crop,) + shape[1:]
  spec = DataSpec(
      name=options.name,
      shape=(int(np.prod(shape)),) if options.flatten else shape,
      # None when batches carry no labels, so no model conditions on them.
      num_classes=raw.num_classes if train.has_labels and options.labels else None,
      num_train=len(train),
      num_test=len(test),
      is_image=raw.is_image and not options.flatten,
      value_range=transform.value_range,
      binary=options.binarize != "none",
      modes=_read_only(raw.modes),
      mode_std=raw.mode_std,
      levels=levels,
      image_shape=shape if raw.is_image else None,
      is_sequence=raw.is_sequence and not options.flatten,
      companding=options.companding,
      sample_rate=raw.sample_rate,
      source_shape=source_shape,
      pair=pair,
  )
  return Dataset(spec=spec, train=train, test=test, transform=transform,
                 options=options)


def _check_pairs(options: DataOptions, raw: RawData, train: Split,
                 transform: Transform) -> tuple[tuple[int, ...] | None, str]:
  """(source_shape, pair) of paired data, (None, 'none') otherwise; one-line errors."""
  from_file = isinstance(train, ArraySplit) and train.source is not None
  if not from_file and options.pair == "none":
    return None, "none"
  what = "its source images" if from_file else f"data.pair={options.pair!r}"
  if from_file and options.pair != "none":
    raise ConfigError(f"data.pair={options.pair!r} derives source images, but "
                      f"{options.name} holds its own; set data.pair='none'")
  if not raw.is_image or options.flatten:
    raise ConfigError(f"{what} needs images (not flattened); {options.name} holds "
                      + ("flattened images" if raw.is_image else "vectors or signals"))
  if transform.noise is not None:
    raise ConfigError(f"{what} cannot be combined with data.binarize="
                      f"{transform.binarize!r} / data.dequantize={transform.dequantize} "
                      "(random transforms of the target); use data.binarize='threshold' "
                      "or none")
  if from_file:
    return tuple(int(d) for d in train.source.shape[1:]), "file"
  return tuple(int(d) for d in train.shape), options.pair


def _with_source(out: dict[str, np.ndarray], raw_source: np.ndarray | None,
                 dataset_pair: str, transform: Transform) -> dict[str, np.ndarray]:
  """`out` with "source" added for paired data (see jaxgen.data._pairs)."""
  if dataset_pair == "none":
    return out
  if dataset_pair == "file":
    source = transform(raw_source, None)
  else:
    source = _pairs.derive_source(dataset_pair, out["x"], transform.value_range)
  return {**out, "source": source}


def _check_signal_options(options: DataOptions, raw: RawData, train: Split) -> int | None:
  """The data's levels after companding; one-line errors for signal options on other data."""
  if options.length and not options.name.startswith("seq1d:"):
    raise ConfigError(f"data.length={options.length} sets the length of generated "
                      f"seq1d signals; {options.name} is not one")
  if options.companding == "none":
    return raw.levels
  if not raw.is_sequence:
    raise ConfigError(f"data.companding={options.companding!r} needs signals (seq1d:*, "
                      f"or an npz file with a sample_rate); {options.name} holds "
                      + ("images" if raw.is_image else "vectors"))
  if raw.levels is not None:
    raise ConfigError(f"data.companding={options.companding!r} needs float signals in "
                      f"[-1, 1]; {options.name} is already quantised to {raw.levels} levels")
  low, high = _min_max(train)
  if low < -1.0 or high > 1.0:
    raise ConfigError(f"data.companding={options.companding!r} needs signals in [-1, 1]; "
                      f"the training signals of {options.name} span [{low:g}, {high:g}] "
                      "(scale them first)")
  return codec.MU_LAW_LEVELS


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
  if array is None:
    return None
  array = np.array(array, np.float32)
  array.setflags(write=False)
  return array


def _min_max(split: Split) -> tuple[float, float]:
  """Minimum and maximum raw value of a split, reading it in chunks if not in memory."""
  if isinstance(split, ArraySplit):
    return float(split.x.min()), float(split.x.max())
  low, high = np.inf, -np.inf
  for start in range(0, len(split), 1024):
    x, _ = split.gather(np.arange(start, min(start + 1024, len(split))))
    low, high = min(low, float(x.min())), max(high, float(x.max()))
  return low, high


class _EpochBatches:
  """Random-access source: element b is the int64 row ids [batch_size] of global batch b.

  Epoch e = b // batches_per_epoch is np.random.default_rng([seed, e])'s
  permutation of the train split, cut into full batches (the remainder is
  dropped). Infinite: its length is sys.maxsize, as for grain's repeat().
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    self.num_examples = num_examples
    self.batch_size = batch_size
    self.seed = seed
    self.batches_per_epoch = num_examples // batch_size
    # The last two epochs' orders: batches arrive in order, but reader threads
    # may straddle an epoch boundary. Replaced whole, never mutated, so that
    # threads can share it without a lock.
    self._cache: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return sys.maxsize

  def permutation(self, epoch: int) -> np.ndarray:
    """The example order of one epoch."""
    cache = self._cache
    order = cache.get(epoch)
    if order is None:
      order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
      recent = {e: o for e, o in cache.items() if e == epoch - 1 or e == epoch + 1}
      self._cache = {**recent, epoch: order}
    return order

  def __getitem__(self, index: int) -> np.ndarray:
    epoch, position = divmod(int(index), self.batches_per_epoch)
    start = position * self.batch_size
    return self.permutation(epoch)[start:start + self.batch_size]


def _local_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  """This process's rows [i*B/P, (i+1)*B/P) of a global batch."""
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ConfigError(f"process_index={process_index} must be in "
                      f"[0, process_count={process_count})")
  if batch_size < 1 or batch_size % process_count:
    raise ConfigError(f"batch_size={batch_size} must be a positive multiple of "
                      f"process_count={process_count}")
  local = batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


def train_pipeline(dataset: Dataset, batch_size: int, seed: int = 0,
                   process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Infinite grain MapDataset whose element b is this process's part of global batch b."""
  rows = _local_rows(batch_size, process_index, process_count)
  num_train = len(dataset.train)
  if batch_size > num_train:
    raise DataError(f"batch_size={batch_size} is larger than the {num_train} "
                    f"training examples of {dataset.spec.name}")
  split, transform = dataset.train, dataset.transform
  with_labels = dataset.options.labels and split.has_labels
  crop, length = dataset.options.crop, split.shape[0]
  raw_shape = (crop,) + tuple(split.shape[1:]) if crop else tuple(split.shape)
  static_seed = _transforms.noise_seed(
      dataset.options.generate_seed, _transforms.STATIC_BINARIZE, "train")
  pair = dataset.spec.pair

  def gather(ids: np.ndarray) -> dict[str, np.ndarray]:
    ids = ids[rows]
    x, labels = split.gather(ids)
    batch = {"ids": ids, "x": x}
    if with_labels:
      batch["label"] = labels
    if pair == "file":   # the same ids: pairs stay aligned
      batch["source"] = split.gather_source(ids)
    return batch

  def finish(batch: dict[str, np.ndarray], noise: np.ndarray | None) -> dict[str, np.ndarray]:
    out = {"x": transform(batch["x"], noise)}
    if with_labels:
      out["label"] = batch["label"]
    return _with_source(out, batch.get("source"), pair, transform)

  def fresh_noise(batch: dict[str, np.ndarray], rng: np.random.Generator):
    # Drawn for the whole global batch and sliced, so that the processes'
    # slices concatenate to exactly the single-process batch.
    noise = None
    if transform.noise == "per_draw":
      noise = rng.random((batch_size,) + raw_shape, dtype=np.float32)[rows]
    if crop:  # drawn after the noise, so runs without crops keep their stream
      offsets = rng.integers(0, length - crop + 1, batch_size)[rows]
      batch = {**batch, "x": _transforms.crop_windows(batch["x"], offsets, crop)}
    return finish(batch, noise)

  def fixed_noise(batch: dict[str, np.ndarray]):
    return finish(batch, _transforms.hash_uniform(static_seed, batch["ids"], raw_shape))

  pipeline = grain.MapDataset.source(_EpochBatches(num_train, batch_size, seed))
  pipeline = pipeline.map(gather)
  if crop and transform.noise == "per_example":
    raise ConfigError("data.crop and data.binarize='static' cannot be combined")
  if transform.noise == "per_draw" or crop:
    return pipeline.random_map(fresh_noise, seed=seed)
  if transform.noise == "per_example":
    return pipeline.map(fixed_noise)
  return pipeline.map(lambda batch: finish(batch, None))


class TrainIterator(grain.DatasetIterator):
  """Infinite iterator over training batches with a JSON-serializable position.

  The state holds the next global batch index plus what it depends on
  (dataset, train size, batch size, seed); set_state refuses a state saved for
  different ones. The process count is not part of it: a run can resume on a
  different number of hosts and still see the same global batches.
  """

  def __init__(self, pipeline: grain.MapDataset, meta: dict[str, Any],
               read_options: grain.ReadOptions | None = None):
    if read_options is None:
      read_options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    super().__init__(iter(pipeline.to_iter_dataset(read_options)))
    self._meta = meta

  def __next__(self) -> dict[str, np.ndarray]:
    return next(self._parent)

  @property
  def batches_per_epoch(self) -> int:
    return self._meta["num_train"] // self._meta["batch_size"]

  def get_state(self) -> dict[str, Any]:
    return {"grain": self._parent.get_state(), **self._meta}

  def set_state(self, state: dict[str, Any]) -> None:
    if not isinstance(state, Mapping) or "grain" not in state:
      raise DataError(f"not a jaxgen data state: {state!r:.200}")
    differ = [f"{key}={state.get(key)!r} (this run: {value!r})"
              for key, value in self._meta.items() if state.get(key) != value]
    if differ:
      raise DataError("the saved data position belongs to a different stream: "
                      + ", ".join(differ))
    self._parent.set_state(state["grain"])


def train_iterator(dataset: Dataset, batch_size: int, seed: int = 0,
                   process_index: int = 0, process_count: int = 1,
                   read_options: grain.ReadOptions | None = None) -> TrainIterator:
  """Infinite shuffled training batches {"x", "label"?}; batch_size is global."""
  pipeline = train_pipeline(dataset, batch_size, seed, process_index, process_count)
  meta = {"dataset": dataset.spec.name, "num_train": dataset.spec.num_train,
          "batch_size": int(batch_size), "seed": int(seed)}
  return TrainIterator(pipeline, meta, read_options)


def eval_batches(dataset: Dataset, split: str = "test", batch_size: int = 128,
                 process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """The whole split in fixed order, the last batch padded; "mask" is 1 for real rows.

  Random transforms are deterministic here: dynamic binarization and
  dequantization use noise fixed per example (a seed of their own), static
  binarization the same sample as training.
  """
  data = dataset.split(split)
  rows = _local_rows(batch_size, process_index, process_count)
  transform, options = dataset.transform, dataset.options
  with_labels = options.labels and data.has_labels
  purpose = (_transforms.STATIC_BINARIZE if transform.noise == "per_example"
             else _transforms.EVAL_NOISE)
  seed = _transforms.noise_seed(options.generate_seed, purpose, split)
  crop_seed = _transforms.noise_seed(options.generate_seed, _transforms.EVAL_CROP, split)
  # Checked above, before the first batch is asked for.
  return _eval_iterator(data, transform, batch_size, rows, with_labels, seed,
                        options.crop, crop_seed, dataset.spec.pair)


def eval_split(dataset: Dataset, split: str = "test",
               batch_size: int = 1024) -> dict[str, np.ndarray]:
  """The whole split as one batch {"x", "label"?, "source"?}, as `eval_batches`
  gives it (same order, same fixed transforms), without the padding or "mask".

  "source" is there for paired data (pix2pix: `data.pair`, an npz `source`,
  `pairs:`), so that a batch of the split can be fed to a paired method.
  """
  parts: dict[str, list[np.ndarray]] = {}
  for batch in eval_batches(dataset, split=split, batch_size=batch_size):
    keep = batch["mask"] > 0
    for key, value in batch.items():
      if key != "mask":
        parts.setdefault(key, []).append(value[keep])
  return {key: np.concatenate(values) for key, values in parts.items()}


def eval_arrays(dataset: Dataset, split: str = "test",
                batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray | None]:
  """The whole split as two arrays (x, labels), as `eval_batches` gives it.

  Same order and the same fixed transforms; labels are None for unlabelled data.
  For experiment scripts that hand a split to scikit-learn or plot it; paired
  data's sources: `eval_split`.
  """
  arrays = eval_split(dataset, split, batch_size)
  return arrays["x"], arrays.get("label")


def _eval_iterator(data: Split, transform: Transform, batch_size: int, rows: slice,
                   with_labels: bool, seed: int, crop: int = 0,
                   crop_seed: int = 0, pair: str = "none"
                   ) -> Iterator[dict[str, np.ndarray]]:
  """The batches of eval_batches; with `crop`, each signal's fixed window (from its id)."""
  count = len(data)
  for start in range(0, count, batch_size):
    ids = np.arange(start, start + batch_size)[rows]
    mask = ids < count
    ids = np.where(mask, ids, ids % count)  # padding repeats real examples
    x, labels = data.gather(ids)
    if crop:
      offsets = _transforms.eval_offsets(crop_seed, ids, data.shape[0], crop)
      x = _transforms.crop_windows(x, offsets, crop)
    noise = None
    if transform.noise is not None:
      noise = _transforms.hash_uniform(seed, ids, tuple(x.shape[1:]))
    batch = {"x": transform(x, noise), "mask": mask.astype(np.float32)}
    if with_labels:
      batch["label"] = labels
    yield _with_source(batch, data.gather_source(ids) if pair == "file" else None, pair,
                       transform)
