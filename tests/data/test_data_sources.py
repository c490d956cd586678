"""Sources: what each dataset name loads, checked against independent oracles."""

import gzip
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from jaxgen import data
from jaxgen.errors import ConfigError, DataError


def write_idx(path, array, compress):
  """Writes array as an IDX file (big-endian header and data), gzip or raw."""
  codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
  array = np.asarray(array)
  header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
  header += struct.pack(f">{array.ndim}i", *array.shape)
  payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
  path.write_bytes(gzip.compress(payload) if compress else payload)


def _rows(x):
  """Examples as sortable bytes, to compare splits as multisets."""
  return sorted(row.tobytes() for row in np.ascontiguousarray(x))


# digits


def test_digits_spec_shapes_and_ranges():
  ds = data.load_dataset("digits")
  spec = ds.spec
  assert spec.shape == (8, 8, 1) and spec.is_image
  assert (spec.num_train, spec.num_test) == (1438, 359)
  assert spec.num_classes == 10 and spec.levels == 17 and not spec.binary
  assert spec.value_range == (0.0, 1.0)
  batch = next(data.train_iterator(ds, batch_size=32))
  assert batch["x"].dtype == np.float32 and batch["x"].shape == (32, 8, 8, 1)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (32,)
  # unit scale divides by levels - 1 = 16: every value is k / 16.
  np.testing.assert_array_equal(batch["x"] * 16, np.round(batch["x"] * 16))
  assert 0.0 <= batch["x"].min() and batch["x"].max() <= 1.0


def test_digits_split_is_fixed_stratified_and_a_partition_of_sklearn():
  reference = load_digits()
  x_all = reference.images.astype(np.uint8)[..., None]
  first, second = data.load_dataset("digits"), data.load_dataset("digits", scale="none")
  np.testing.assert_array_equal(first.train.x, second.train.x)
  np.testing.assert_array_equal(first.test.labels, second.test.labels)
  # Train and test together are exactly sklearn's examples, each once.
  pairs = np.concatenate([first.train.x, first.test.x])
  assert _rows(pairs) == _rows(x_all)
  # Stratified: every class gives round(20%) +- 1 of its examples to test.
  test_counts = np.bincount(first.test.labels, minlength=10)
  all_counts = np.bincount(reference.target, minlength=10)
  assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)


# toy2d


@pytest.mark.parametrize("kind, num_modes, std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy_mixture_statistics(kind, num_modes, std):
  ds = data.load_dataset(f"toy2d:{kind}")
  spec = ds.spec
  assert spec.shape == (2,) and not spec.is_image and spec.levels is None
  assert spec.num_classes == num_modes and spec.mode_std == std
  assert (spec.num_train, spec.num_test) == (50_000, 10_000)
  modes = spec.modes
  assert modes.shape == (num_modes, 2)
  if kind == "ring8":
    np.testing.assert_allclose(np.linalg.norm(modes, axis=1), 2.0, atol=1e-6)
  else:
    assert sorted(set(modes.ravel().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
  x, labels = ds.train.x, ds.train.labels
  distances = np.linalg.norm(x[:, None, :] - modes[None], axis=-1)
  nearest = distances.argmin(axis=1)
  np.testing.assert_array_equal(nearest, labels)  # labels are the mode index
  assert distances.min(axis=1).max() < 6 * std  # all points within a few std
  residual = x - modes[labels]
  assert abs(residual.std() / std - 1) < 0.02
  counts = np.bincount(labels, minlength=num_modes)
  expected = len(x) / num_modes
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
  # Batches carry the labels, unscaled values by default.
  batch = next(data.train_iterator(ds, batch_size=64))
  np.testing.assert_array_equal(np.linalg.norm(batch["x"][:, None] - modes, axis=-1)
                                .argmin(axis=1), batch["label"])


def test_toy_generation_is_fixed_by_generate_seed_not_run_seed():
  first = data.load_dataset("toy2d:ring8", num_examples=500)
  again = data.load_dataset("toy2d:ring8", num_examples=500)
  other = data.load_dataset("toy2d:ring8", num_examples=500, generate_seed=1)
  np.testing.assert_array_equal(first.train.x, again.train.x)
  assert not np.array_equal(first.train.x, other.train.x)
  assert not np.array_equal(first.train.x[:100], first.test.x[:100])


def test_toy_shapes_without_modes():
  checker = data.load_dataset("toy2d:checkerboard").train.x
  assert np.all(np.abs(checker) <= 4)
  # Only the dark squares of the 2x2-cell board: cell parities sum to even.
  cells = np.floor(checker / 2).astype(int)
  assert np.all(cells.sum(axis=1) % 2 == 0)
  squares = np.bincount(((cells[:, 0] + 2) * 4 + cells[:, 1] + 2), minlength=16)
  assert np.count_nonzero(squares) == 8

  moons = data.load_dataset("toy2d:moons")
  assert moons.spec.num_classes == 2 and moons.spec.modes is None
  x, labels = moons.train.x, moons.train.labels
  assert x[labels == 0, 1].mean() > x[labels == 1, 1].mean()  # upper and lower moon

  roll = data.load_dataset("toy2d:swissroll")
  assert roll.spec.num_classes is None and roll.spec.modes is None
  radius = np.linalg.norm(roll.train.x, axis=1) * 5  # ~ t in [1.5 pi, 4.5 pi]
  assert np.percentile(radius, 1) > 1.5 * np.pi - 3
  assert np.percentile(radius, 99) < 4.5 * np.pi + 3


# IDX


@pytest.mark.parametrize("compress", [True, False])
def test_idx_single_file_round_trip_and_fixed_split(tmp_path, compress):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(50, 5, 4), dtype=np.uint8)
  labels = rng.integers(0, 3, size=50).astype(np.uint8)
  suffix = ".gz" if compress else ""
  write_idx(tmp_path / f"foo-images-idx3-ubyte{suffix}", images, compress)
  write_idx(tmp_path / f"foo-labels-idx1-ubyte{suffix}", labels, compress)
  np.testing.assert_array_equal(
      data.read_idx(tmp_path / f"foo-images-idx3-ubyte{suffix}"), images)

  ds = data.load_dataset(f"idx:{tmp_path}", scale="none")
  assert ds.spec.shape == (5, 4, 1) and ds.spec.levels == 256
  assert (ds.spec.num_train, ds.spec.num_test) == (40, 10)
  assert ds.spec.num_classes == 3
  # The split partitions the file; each image keeps its own label.
  together = np.concatenate([ds.train.x, ds.test.x])[..., 0]
  together_labels = np.concatenate([ds.train.labels, ds.test.labels])
  assert _rows(together) == _rows(images)
  for image, label in zip(together, together_labels):
    match = np.flatnonzero((images == image).all(axis=(1, 2)))
    assert label in labels[match]
  # Naming the images file itself gives the same dataset.
  single = data.load_dataset(f"idx:{tmp_path}/foo-images-idx3-ubyte{suffix}")
  np.testing.assert_array_equal(single.test.x, ds.test.x)


def test_idx_train_and_t10k_files_are_the_splits(tmp_path):
  rng = np.random.default_rng(1)
  train = rng.integers(0, 256, size=(12, 3, 3), dtype=np.uint8)
  test = rng.integers(0, 256, size=(7, 3, 3), dtype=np.uint8)
  write_idx(tmp_path / "train-images-idx3-ubyte.gz", train, True)
  write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(12, dtype=np.uint8), True)
  write_idx(tmp_path / "t10k-images-idx3-ubyte", test, False)
  write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(7, dtype=np.uint8), False)
  ds = data.load_dataset(f"idx:{tmp_path}", scale="none")
  np.testing.assert_array_equal(ds.train.x[..., 0], train)
  np.testing.assert_array_equal(ds.test.x[..., 0], test)
  np.testing.assert_array_equal(ds.test.labels, np.arange(7))
  assert ds.spec.num_classes == 12
  batches = list(data.eval_batches(ds, "test", batch_size=4))
  np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches])[:7, ..., 0], test)


def test_idx_other_dtypes_and_bad_files(tmp_path, monkeypatch):
  values = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
  write_idx(tmp_path / "f.idx", values, False)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "f.idx"), values)
  shorts = np.array([-3, 300, 7], np.int16)
  write_idx(tmp_path / "s.idx", shorts, True)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "s.idx"), shorts)
  (tmp_path / "junk-images-idx3").write_bytes(b"not an idx file")
  with pytest.raises(DataError, match="not an IDX file"):
    data.load_dataset(f"idx:{tmp_path}/junk-images-idx3")
  with pytest.raises(DataError, match="no such file") as absolute:
    data.load_dataset(f"idx:{tmp_path}/missing")
  assert "looked for" not in str(absolute.value)
  # A relative path that is not found names where it was looked for.
  (tmp_path / "sub").mkdir()
  monkeypatch.chdir(tmp_path / "sub")
  with pytest.raises(DataError, match="no such file") as relative:
    data.load_dataset("idx:../shared/mnist")
  assert str(tmp_path / "shared" / "mnist") in str(relative.value)
  assert str(tmp_path / "sub") in str(relative.value)


# npz and image folders


def test_npz_single_array_and_presplit(tmp_path):
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, size=(20, 4, 4), dtype=np.int64)
  np.savez(tmp_path / "one.npz", images=images, labels=np.arange(20) % 2)
  ds = data.load_dataset(f"npz:{tmp_path}/one.npz")
  assert ds.spec.shape == (4, 4, 1) and ds.spec.levels == 256 and ds.spec.is_image
  assert (ds.spec.num_train, ds.spec.num_test) == (16, 4) and ds.spec.num_classes == 2
  assert _rows(np.concatenate([ds.train.x, ds.test.x])[..., 0]) == _rows(
      images.astype(np.uint8))

  vectors = rng.normal(size=(10, 3)).astype(np.float32)
  np.savez(tmp_path / "two.npz", x_train=vectors, x_test=vectors[:4] + 10)
  ds = data.load_dataset(f"npz:{tmp_path}/two.npz")
  assert ds.spec.shape == (3,) and not ds.spec.is_image and ds.spec.levels is None
  assert ds.spec.num_classes is None
  assert ds.spec.value_range == (float(vectors.min()), float(vectors.max()))
  np.testing.assert_array_equal(ds.test.x, vectors[:4] + 10)  # floats as-is
  batch = next(data.train_iterator(ds, batch_size=5))
  assert set(batch) == {"x"}

  np.savez(tmp_path / "bad.npz", z=vectors)
  with pytest.raises(DataError, match="'x'"):
    data.load_dataset(f"npz:{tmp_path}/bad.npz")


def test_image_folder_with_classes_sizes_and_channels(tmp_path):
  rng = np.random.default_rng(3)
  expected = {}
  for label, name in enumerate(["cat", "dog"]):
    (tmp_path / name).mkdir()
    for i in range(5):
      pixels = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
      Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
      expected[pixels.tobytes()] = label
  ds = data.load_dataset(f"images:{tmp_path}", scale="none")
  assert ds.spec.shape == (6, 6, 3) and ds.spec.num_classes == 2
  assert (ds.spec.num_train, ds.spec.num_test) == (8, 2)
  for split in (ds.train, ds.test):
    for image, label in zip(split.x, split.labels):
      assert expected[image.tobytes()] == label  # PNG is lossless

  grey = data.load_dataset(f"images:{tmp_path}", channels=1)
  assert grey.spec.shape == (6, 6, 1)
  Image.fromarray(np.zeros((9, 7, 3), np.uint8)).save(tmp_path / "cat" / "big.png")
  with pytest.raises(DataError, match="image_size"):
    data.load_dataset(f"images:{tmp_path}")
  resized = data.load_dataset(f"images:{tmp_path}", image_size=4)
  assert resized.spec.shape == (4, 4, 3) and resized.spec.num_train + resized.spec.num_test == 11


def test_image_options_convert_in_memory_sources():
  ds = data.load_dataset("digits", image_size=16, channels=3, max_examples=40)
  assert ds.spec.shape == (16, 16, 3) and ds.spec.num_train == 40
  assert ds.spec.image_shape == (16, 16, 3)
  x = ds.train.x
  np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey repeated
  assert x.max() <= 16  # resizing keeps the 17 levels
  with pytest.raises(ConfigError, match="image_size"):
    data.load_dataset("toy2d:ring8", image_size=8)


# tfds


def test_tfds_mock_data_shapes_labels_and_iteration():
  with tfds.testing.mock_data(num_examples=20):
    ds = data.load_dataset("tfds:mnist")
    small = data.load_dataset("tfds:cifar10", image_size=8, channels=1)
  spec = ds.spec
  assert spec.shape == (28, 28, 1) and spec.num_classes == 10 and spec.levels == 256
  assert (spec.num_train, spec.num_test) == (20, 20)
  it = data.train_iterator(ds, batch_size=8)
  for _ in range(3):  # crosses an epoch (20 // 8 = 2 batches per epoch)
    batch = next(it)
    assert batch["x"].shape == (8, 28, 28, 1) and batch["x"].dtype == np.float32
    assert 0.0 <= batch["x"].min() and batch["x"].max() <= 1.0
    assert np.all((0 <= batch["label"]) & (batch["label"] < 10))
  masks = [b["mask"] for b in data.eval_batches(ds, "test", batch_size=8)]
  assert len(masks) == 3 and np.concatenate(masks).sum() == 20
  batch = next(data.train_iterator(small, batch_size=4))
  assert small.spec.shape == (8, 8, 1) and batch["x"].shape == (4, 8, 8, 1)


def test_tfds_not_prepared_names_dataset_dir_and_fix(tmp_path):
  with pytest.raises(DataError) as error:
    data.load_dataset("tfds:mnist", data_dir=str(tmp_path))
  message = str(error.value)
  assert "tfds:mnist" in message and str(tmp_path) in message
  assert "download_and_prepare" in message and "array_record" in message
  assert "\n" not in message


def test_tfds_unknown_name_suggests_close_ones():
  with pytest.raises(DataError, match="did you mean.*mnist"):
    data.load_dataset("tfds:mnistt")


# names and options


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(DataError) as error:
    data.load_dataset("mnist")
  message = str(error.value)
  for pattern in ("'digits'", "'toy2d:ring8'", "'tfds:<name>'", "'idx:<path>'",
                  "'npz:<file.npz>'", "'images:<dir>'"):
    assert pattern in message
  with pytest.raises(DataError, match="toy2d:grid25"):
    data.load_dataset("toy2d:ring9")
  with pytest.raises(DataError, match="needs an argument"):
    data.load_dataset("npz:")
  assert set(data.list_datasets()) >= {"digits", "toy2d:moons", "tfds:<name>"}


@pytest.mark.parametrize("options, words", [
    ({"binarize": "foo"}, ["binarize", "'foo'", "'static'", "'dynamic'", "'threshold'"]),
    ({"scale": "zero_one"}, ["scale", "'zero_one'", "'unit'", "'symmetric'"]),
    ({"channels": 2}, ["channels", "2", "1", "3"]),
    ({"bogus": 1}, ["bogus", "'binarize'", "'flatten'"]),
    ({"binarize": "static", "scale": "symmetric"}, ["binarize", "symmetric"]),
    ({"binarize": "static", "scale": "none"}, ["binarize", "'none'", "[0, 16]"]),
    ({"binarize": "dynamic", "dequantize": True}, ["binarize", "dequantize"]),
    ({"test_fraction": 1.5}, ["test_fraction", "1.5"]),
    ({"labels": "yes"}, ["labels", "True or False"]),
    ({"name": "toy2d:moons", "dequantize": True}, ["dequantize", "continuous"]),
])
def test_bad_options_raise_one_line_config_errors(options, words):
  options = {"name": "digits", **options}
  with pytest.raises(ConfigError) as error:
    data.load_dataset(**options)
  message = str(error.value)
  assert "\n" not in message
  for word in words:
    assert word in message


def test_default_config_round_trips_through_from_config():
  cfg = data.default_config()
  assert set(cfg.keys()) == {
      "name", "batch_size", "data_dir", "test_fraction", "generate_seed",
      "num_examples", "image_size", "channels", "max_examples", "scale",
      "binarize", "dequantize", "labels", "flatten", "length", "companding", "crop", "pair"}
  assert cfg.name == "digits" and cfg.batch_size == 128 and cfg.scale == "auto"
  cfg.name = "toy2d:ring8"
  cfg.max_examples = 100
  ds = data.from_config(cfg)
  assert ds.spec.num_train == 100 and ds.spec.num_test == 100
  assert "toy2d:ring8: 100 train / 100 test" in ds.describe()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_non_finite_data_is_refused_at_load(tmp_path, bad):
  """NaN/Inf (or float64 values beyond float32) in a file: one line, not training on zeros."""
  x = np.random.default_rng(0).normal(size=(20, 3))
  x[13, 1] = bad
  np.savez(tmp_path / "bad.npz", x_train=x[:15], x_test=x[15:])
  with pytest.raises(DataError) as error:
    data.load_dataset(f"npz:{tmp_path / 'bad.npz'}")
  message = str(error.value)
  assert "1 train example(s) hold NaN or Inf values (the first is example 13)" in message
  assert "\n" not in message
