"""Sources held in memory: sklearn digits, IDX files, .npz arrays and image folders."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pathlib
import re

import numpy as np

from jaxgen.data._options import DataOptions
from jaxgen.data._splits import ArraySplit, RawData, num_classes_of, split_arrays
from jaxgen.errors import DataError

# IDX type codes (http://yann.lecun.com/exdb/mnist/), all big-endian on disk.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """sklearn's 1,797 8x8 digits as uint8 [N, 8, 8, 1] (values 0..16) and int32 labels.

  Read straight from the CSV file that scikit-learn ships, found without
  importing sklearn: `import sklearn` pulls in scipy.stats and costs seconds at
  every start, the file itself 30 ms. (tests/data check it against load_digits.)
  """
  spec = importlib.util.find_spec("sklearn")
  if spec is None or not spec.submodule_search_locations:
    raise DataError("the digits dataset needs scikit-learn: pip install scikit-learn")
  path = (pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data"
          / "digits.csv.gz")
  with gzip.open(path, "rt") as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.float64)
  x = table[:, :-1].reshape(-1, 8, 8, 1).astype(np.uint8)
  labels = table[:, -1].astype(np.int32)
  x.setflags(write=False)
  labels.setflags(write=False)
  return x, labels


def load_digits(options: DataOptions) -> RawData:
  """sklearn digits with a fixed stratified split (test_fraction, default 1438/359)."""
  x, labels = _digits_arrays()
  train, test = split_arrays(x, labels, options.test_fraction)
  return RawData(train=train, test=test, is_image=True, levels=17, num_classes=10)


def read_idx(path: str | pathlib.Path) -> np.ndarray:
  """Reads one IDX file (gzip or raw, recognised by content) into a numpy array."""
  path = pathlib.Path(path)
  try:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
      data = gzip.decompress(data)
  except (OSError, EOFError) as e:
    raise DataError(f"cannot read IDX file {path}: {e}") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
    raise DataError(f"{path} is not an IDX file (bad magic number)")
  dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise DataError(f"{path}: truncated IDX header")
  dims = tuple(int(d) for d in np.frombuffer(data, ">i4", ndim, offset=4))
  count = int(np.prod(dims))
  if len(data) - header != count * dtype.itemsize:
    raise DataError(f"{path}: IDX header says {dims} of {dtype.str} but the file "
                    f"holds {len(data) - header} data bytes")
  array = np.frombuffer(data, dtype, count, offset=header).reshape(dims)
  return array.astype(dtype.newbyteorder("="))


def _labels_file(images_file: pathlib.Path) -> pathlib.Path | None:
  """The labels file beside an images file (train-images-idx3 -> train-labels-idx1)."""
  name = images_file.name.replace("images", "labels").replace("idx3", "idx1")
  stem = name[:-3] if name.endswith(".gz") else name
  for candidate in (stem, stem + ".gz"):
    if (images_file.parent / candidate).is_file():
      return images_file.parent / candidate
  return None


def _read_idx_pair(images_file: pathlib.Path) -> tuple[np.ndarray, np.ndarray | None]:
  """Images [N, H, W, C] and labels (or None) of one IDX images file."""
  x = read_idx(images_file)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    raise DataError(f"{images_file}: expected images [N, H, W] in an idx3 file, "
                    f"got shape {x.shape}")
  labels_file = _labels_file(images_file)
  labels = None
  if labels_file is not None:
    labels = read_idx(labels_file).reshape(-1).astype(np.int32)
    if len(labels) != len(x):
      raise DataError(f"{labels_file} has {len(labels)} labels for {len(x)} images "
                      f"in {images_file}")
  return x, labels


def load_idx(path: str, options: DataOptions) -> RawData:
  """MNIST-format IDX files: a folder (train-/t10k- pairs become the splits) or one images file."""
  root = pathlib.Path(path).expanduser()
  if root.is_dir():
    found = sorted(p for p in root.iterdir()
                   if p.is_file() and re.search(r"images.*idx3", p.name))
    if not found:
      raise DataError(f"idx:{path}: no '*images*idx3*' file in {root}")
  elif root.is_file():
    found = [root]
  else:
    where = (f" (looked for {root.resolve()}, relative to the current folder {pathlib.Path.cwd()})"
             if not root.is_absolute() else "")
    raise DataError(f"idx:{path}: no such file or folder{where}")

  if len(found) == 1:
    x, labels = _read_idx_pair(found[0])
    train, test = split_arrays(x, labels, options.test_fraction)
  else:
    train_files = [p for p in found if "train" in p.name]
    test_files = [p for p in found if "t10k" in p.name or "test" in p.name]
    if len(train_files) != 1 or len(test_files) != 1 or train_files == test_files:
      names = [p.name for p in found]
      raise DataError(f"idx:{path}: several images files {names}; expected one, or "
                      "one 'train' and one 't10k'/'test' file; name a file instead")
    train, test = (ArraySplit(*_read_idx_pair(files[0]))
                   for files in (train_files, test_files))
  if train.has_labels != test.has_labels:
    raise DataError(f"idx:{path}: only one of the train and test files has labels")
  return _raw_from_arrays(f"idx:{path}", train, test)


def _raw_from_arrays(source: str, train: ArraySplit, test: ArraySplit,
                     sample_rate: float | None = None) -> RawData:
  """RawData for in-memory arrays: integer data as uint8 levels, floats as-is.

  With a `sample_rate` (0 for signals without one) the arrays are signals
  [N, T, C]; otherwise images [N, H, W, C] or vectors [N, D].
  """
  if train.x.shape[1:] != test.x.shape[1:]:
    raise DataError(f"{source}: train examples have shape {train.x.shape[1:]} but "
                    f"test examples {test.x.shape[1:]}")
  if sample_rate is not None and train.x.ndim != 3:
    raise DataError(f"{source}: signals (the file has a sample_rate) must be [N, T] or "
                    f"[N, T, C], got shape {train.x.shape}")
  if sample_rate is None and train.x.ndim not in (2, 4):
    raise DataError(f"{source}: expected images [N, H, W(, C)] or vectors [N, D], "
                    f"got shape {train.x.shape}")
  _check_pairs(source, train, test)
  levels = None
  if np.issubdtype(train.x.dtype, np.integer) or train.x.dtype == bool:
    both = np.concatenate([a.reshape(-1) for a in _arrays(train, test)])
    if both.size and (both.min() < 0 or both.max() > 255):
      raise DataError(f"{source}: integer data must lie in 0..255 (uint8 levels), "
                      f"found {both.min()}..{both.max()}")
    train, test = (_as_dtype(split, np.uint8) for split in (train, test))
    levels = 256
  else:
    for split, arrays in (("train", train), ("test", test)):
      for a in _arrays(arrays):
        _check_finite(source, split, a)
    train, test = (_as_dtype(split, np.float32) for split in (train, test))
    for split, arrays in (("train", train), ("test", test)):
      for a in _arrays(arrays):
        _check_finite(source, split, a)  # values beyond float32's range
  return RawData(train=train, test=test, is_image=train.x.ndim == 4,
                 levels=levels, num_classes=num_classes_of(train.labels, test.labels),
                 is_sequence=sample_rate is not None, sample_rate=sample_rate or None)


def _arrays(*splits: ArraySplit) -> list[np.ndarray]:
  """The image arrays of splits: x, and the paired source where there is one."""
  return [a for split in splits for a in (split.x, split.source) if a is not None]


def _as_dtype(split: ArraySplit, dtype) -> ArraySplit:
  source = None if split.source is None else split.source.astype(dtype)
  return ArraySplit(split.x.astype(dtype), split.labels, source)


def _check_pairs(source: str, train: ArraySplit, test: ArraySplit) -> None:
  """One-line errors for paired data whose sources do not match their targets."""
  if (train.source is None) != (test.source is None):
    raise DataError(f"{source}: source images for only one of the train and test splits")
  if train.source is None:
    return
  if train.source.shape[1:] != test.source.shape[1:]:
    raise DataError(f"{source}: train sources have shape {train.source.shape[1:]} but "
                    f"test sources {test.source.shape[1:]}")
  if train.source.ndim != 4 or train.x.ndim != 4:
    raise DataError(f"{source}: paired data must be images [N, H, W(, C)], got x "
                    f"{train.x.shape[1:]} and source {train.source.shape[1:]}")
  integer = [np.issubdtype(a.dtype, np.integer) or a.dtype == bool
             for a in (train.x, train.source)]
  if integer[0] != integer[1]:
    raise DataError(f"{source}: x is {train.x.dtype} but source is "
                    f"{train.source.dtype}; both must be integer (0..255) or both float "
                    "(they go through the same transform)")


def _check_finite(source: str, split: str, x: np.ndarray) -> None:
  """A DataError naming the first example holding NaN or Inf, if any does."""
  bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
  if bad.any():
    raise DataError(f"{source}: {int(bad.sum())} {split} example(s) hold NaN or Inf "
                    f"values (the first is example {int(np.argmax(bad))}); clean or "
                    "drop them")


def load_npz(path: str, options: DataOptions) -> RawData:
  """Arrays x|images (+ y|labels), or x_train/x_test (+ y_train/y_test), from one .npz file."""
  file = pathlib.Path(path).expanduser()
  source = f"npz:{path}"
  try:
    with np.load(file, allow_pickle=False) as npz:
      arrays = {key: npz[key] for key in npz.files}
  except (OSError, ValueError) as e:
    raise DataError(f"{source}: cannot read {file}: {e}") from e

  sample_rate = None
  if "sample_rate" in arrays:  # signals; 0 = no known rate
    rate = arrays.pop("sample_rate")
    if rate.size != 1 or not np.isfinite(rate).all() or float(rate.reshape(-1)[0]) < 0:
      raise DataError(f"{source}: sample_rate must be one number >= 0 (0: unknown), "
                      f"got {rate.tolist()!r:.80}")
    sample_rate = float(rate.reshape(-1)[0])

  def labels_of(*keys: str) -> np.ndarray | None:
    for key in keys:
      if key in arrays:
        return arrays[key].reshape(-1).astype(np.int32)
    return None

  if "x_train" in arrays and "x_test" in arrays:
    splits = []
    for split in ("train", "test"):
      x, labels = arrays[f"x_{split}"], labels_of(f"y_{split}", f"labels_{split}")
      splits.append(_array_split(source, x, labels, signals=sample_rate is not None,
                                 paired=arrays.get(f"source_{split}")))
    train, test = splits
    if train.has_labels != test.has_labels:
      raise DataError(f"{source}: labels for only one of the train and test splits")
  else:
    key = "x" if "x" in arrays else "images" if "images" in arrays else None
    if key is None:
      raise DataError(f"{source}: found arrays {sorted(arrays)}; expected 'x' or "
                      "'images' (optional 'y'/'labels', 'source'), or 'x_train' and "
                      "'x_test'")
    whole = _array_split(source, arrays[key], labels_of("y", "labels"),
                         signals=sample_rate is not None, paired=arrays.get("source"))
    train, test = split_arrays(whole.x, whole.labels, options.test_fraction, whole.source)
  return _raw_from_arrays(source, train, test, sample_rate)


def _array_split(source: str, x: np.ndarray, labels: np.ndarray | None,
                 signals: bool = False, paired: np.ndarray | None = None) -> ArraySplit:
  """An ArraySplit with grey images (or mono signals) given a channel axis, counts checked.

  `paired`: the source images of paired data ([N, H, W(, C)]), one per example.
  """
  if x.ndim == (2 if signals else 3):
    x = x[..., None]
  if labels is not None and len(labels) != len(x):
    raise DataError(f"{source}: {len(x)} examples but {len(labels)} labels")
  if paired is not None:
    if signals:
      raise DataError(f"{source}: paired 'source' arrays need images, not signals")
    paired = paired[..., None] if paired.ndim == 3 else paired
    if len(paired) != len(x):
      raise DataError(f"{source}: {len(x)} examples but {len(paired)} source images")
  return ArraySplit(x, labels, paired)


def load_images(path: str, options: DataOptions) -> RawData:
  """A folder of PNG/JPEG images; subfolders (sorted) are classes; fixed split."""
  root = pathlib.Path(path).expanduser()
  source = f"images:{path}"
  if not root.is_dir():
    raise DataError(f"{source}: no such folder")

  classes = sorted(p for p in root.iterdir() if p.is_dir())
  if classes:
    files, labels = [], []
    for label, folder in enumerate(classes):
      found = _image_files(folder)
      files += found
      labels += [label] * len(found)
    labels = np.array(labels, np.int32)
  else:
    files, labels = _image_files(root), None
  if len(files) < 2:
    raise DataError(f"{source}: found {len(files)} images ({', '.join(IMAGE_SUFFIXES)})"
                    f"; need at least 2")
  x = _read_image_files(files, options, source)
  train, test = split_arrays(x, labels, options.test_fraction)
  raw = _raw_from_arrays(source, train, test)
  if classes:
    raw = RawData(train=raw.train, test=raw.test, is_image=True, levels=256,
                  num_classes=len(classes))
  return raw


def _image_files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_pairs(argument: str, options: DataOptions) -> RawData:
  """Paired image folders `<source_dir>,<target_dir>`: files matched by name; fixed split.

  The target folder's images are `x`; the source folder's image of the same
  file name is the example's `source`. Both folders must hold the same names.
  """
  source = f"pairs:{argument}"
  parts = argument.split(",")
  if len(parts) != 2 or not all(parts):
    raise DataError(f"{source}: expected pairs:<source_dir>,<target_dir> (two folders "
                    "separated by a comma)")
  folders = [pathlib.Path(p).expanduser() for p in parts]
  for folder in folders:
    if not folder.is_dir():
      raise DataError(f"{source}: no such folder {str(folder)!r}")
  files = [_image_files(folder) for folder in folders]
  names = [{p.name: p for p in found} for found in files]
  for have, other in ((0, 1), (1, 0)):
    missing = sorted(set(names[have]) - set(names[other]))
    if missing:
      raise DataError(f"{source}: {missing[0]!r} is in {str(folders[have])!r} but not in "
                      f"{str(folders[other])!r} ({len(missing)} unmatched); pairs are "
                      "matched by file name")
  if len(files[1]) < 2:
    raise DataError(f"{source}: found {len(files[1])} image pairs; need at least 2")
  order = sorted(names[1])
  paired = _read_image_files([names[0][n] for n in order], options, source)
  x = _read_image_files([names[1][n] for n in order], options, source)
  train, test = split_arrays(x, None, options.test_fraction, paired)
  return _raw_from_arrays(source, train, test)


def _read_image_files(files: list[pathlib.Path], options: DataOptions,
                      source: str) -> np.ndarray:
  """Images [N, H, W, C] uint8 from files: grey unless one has colour (or data.channels)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = []
  for file in files:
    try:
      with Image.open(file) as image:
        image.load()
        images.append(image.copy())
    except OSError as e:
      raise DataError(f"{source}: cannot read {file}: {e}") from e
  channels = options.channels
  if not channels:  # grey stays grey unless some image has colour
    grey = all(image.mode in ("1", "L", "LA", "I", "I;16", "F") for image in images)
    channels = 1 if grey else 3
  mode = "L" if channels == 1 else "RGB"
  arrays = [np.asarray(image.convert(mode)) for image in images]
  if not options.image_size:
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
      raise DataError(f"{source}: images come in sizes {sizes[:4]} (height, width); "
                      "set data.image_size to resize them all")
  else:
    arrays = [
        _resize_one(a, options.image_size) for a in arrays
    ]
  return np.stack(arrays).reshape(len(arrays), *arrays[0].shape[:2], channels)


def _resize_one(image: np.ndarray, size: int) -> np.ndarray:
  """One [H, W] or [H, W, C] uint8 image centre-cropped and resized to (size, size)."""
  from jaxgen.data._transforms import convert_images  # pylint: disable=g-import-not-at-top
  batch = image.reshape(1, *image.shape[:2], -1)
  return convert_images(batch, size, 0, "images")[0]
