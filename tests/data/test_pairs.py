"""Paired data: derived sources against scipy, file pairs aligned through
shuffling, process sharding, seeds and resume, and one-line errors."""

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image

from jaxgen import data as data_lib
from jaxgen.data import _pairs
from jaxgen.errors import ConfigError, DataError


def test_sobel_edges_match_scipy():
  unit = np.random.default_rng(0).random((3, 9, 7, 2)).astype(np.float32)
  got = _pairs.sobel_edges(unit)
  for n in range(3):
    for c in range(2):
      image = unit[n, :, :, c].astype(np.float64)
      rows = scipy.ndimage.sobel(image, axis=0, mode="constant")
      cols = scipy.ndimage.sobel(image, axis=1, mode="constant")
      np.testing.assert_allclose(got[n, :, :, c], np.hypot(rows, cols) / (4 * np.sqrt(2)),
                                 rtol=1e-5, atol=1e-6)
  # 4√2 bounds the magnitude of any image in [0, 1]: edges stay in [0, 1];
  binary = (np.random.default_rng(1).random((50, 6, 6, 1)) > 0.5).astype(np.float32)
  assert 0.0 <= _pairs.sobel_edges(binary).min() and _pairs.sobel_edges(binary).max() <= 1.0
  # a pattern symmetric about its centre has no gradient there.
  corner = np.float32([[0, 1, 1], [1, 0, 1], [1, 1, 0]])[None, :, :, None]
  assert _pairs.sobel_edges(corner)[0, 1, 1, 0] == pytest.approx(0.0)


def test_derived_pairs_in_the_pipeline():
  edges = data_lib.load_dataset("digits", pair="edges", scale="symmetric")
  assert edges.spec.source_shape == (8, 8, 1) and edges.spec.pair == "edges"
  batch = next(data_lib.train_iterator(edges, batch_size=16, seed=3))
  unit = (batch["x"] + 1) / 2
  expected = 2 * _pairs.sobel_edges(unit) - 1
  np.testing.assert_allclose(batch["source"], expected, atol=1e-6)
  masked = data_lib.load_dataset("digits", pair="masked")   # scale 'unit'
  test = next(iter(data_lib.eval_batches(masked, "test", batch_size=8)))
  np.testing.assert_array_equal(test["source"][:, :4], test["x"][:, :4])
  np.testing.assert_array_equal(test["source"][:, 4:], 0.5)
  assert masked.spec.example_batch(2)["source"].shape == (2, 8, 8, 1)


def _paired_npz(path, count=40):
  x = np.random.default_rng(1).integers(0, 256, (count, 4, 4)).astype(np.uint8)
  # Each example's id is written into its source and target, so alignment is checkable.
  x[:, 0, 0] = np.arange(count)
  source = 255 - x
  np.savez(path, x=x, source=source, y=np.arange(count) % 3)
  return path


def _ids(batch):
  """The example ids carried by target and source (unit scale)."""
  target = np.rint(batch["x"][:, 0, 0, 0] * 255).astype(int)
  source = 255 - np.rint(batch["source"][:, 0, 0, 0] * 255).astype(int)
  return target, source


def test_npz_pairs_stay_aligned_through_shuffling_sharding_seeds_and_resume(tmp_path):
  ds = data_lib.load_dataset(f"npz:{_paired_npz(tmp_path / 'pairs.npz')}")
  assert ds.spec.pair == "file" and ds.spec.source_shape == (4, 4, 1)
  for seed in (0, 1):
    it = data_lib.train_iterator(ds, batch_size=8, seed=seed)
    batches = [next(it) for _ in range(9)]     # past an epoch (32 train examples)
    for batch in batches:
      target, source = _ids(batch)
      np.testing.assert_array_equal(target, source)
      np.testing.assert_allclose(batch["source"], 1.0 - batch["x"], atol=1e-6)
    # Two processes' rows concatenate to the one-process batch, pairs included.
    halves = [next(iter(data_lib.train_pipeline(ds, 8, seed, p, 2)[4:5])) for p in (0, 1)]
    for key in ("x", "source"):
      np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]),
                                    batches[4][key])
    # Resume from a saved position gives the same pairs.
    again = data_lib.train_iterator(ds, batch_size=8, seed=seed)
    next(again)
    state = again.get_state()
    resumed = data_lib.train_iterator(ds, batch_size=8, seed=seed)
    resumed.set_state(state)
    for expected in batches[1:4]:
      got = next(resumed)
      for key in ("x", "source"):
        np.testing.assert_array_equal(got[key], expected[key])
  first = [next(data_lib.train_iterator(ds, batch_size=8, seed=s))["x"] for s in (0, 1)]
  assert not np.array_equal(*first)   # the seeds shuffle differently
  for batch in data_lib.eval_batches(ds, "test", batch_size=3):
    np.testing.assert_array_equal(*_ids(batch))


def test_eval_split_and_split_batch_keep_the_sources(tmp_path):
  from jaxgen.engine import loop  # pylint: disable=import-outside-toplevel
  ds = data_lib.load_dataset(f"npz:{_paired_npz(tmp_path / 'pairs.npz')}")
  for split in ("train", "test"):
    whole = data_lib.eval_split(ds, split, batch_size=3)   # the last batch padded
    assert set(whole) == {"x", "source", "label"}
    assert len(whole["x"]) == len(whole["source"]) == len(ds.split(split))
    np.testing.assert_array_equal(*_ids(whole))            # every pair aligned
    batches = list(data_lib.eval_batches(ds, split, batch_size=7))
    for key in whole:
      np.testing.assert_array_equal(
          whole[key], np.concatenate([b[key][b["mask"] > 0] for b in batches]))
    x, labels = data_lib.eval_arrays(ds, split)
    np.testing.assert_array_equal(x, whole["x"])
    np.testing.assert_array_equal(labels, whole["label"])
  train = loop.split_batch(ds)
  for key in ("x", "source", "label"):
    np.testing.assert_array_equal(train[key], data_lib.eval_split(ds, "train")[key])
  derived = data_lib.load_dataset("digits", pair="edges", labels=False)
  whole = data_lib.eval_split(derived, "test")
  assert set(whole) == {"x", "source"}
  np.testing.assert_allclose(whole["source"], _pairs.sobel_edges(whole["x"]), atol=1e-6)


def test_image_folder_pairs_are_matched_by_name(tmp_path):
  rng = np.random.default_rng(2)
  for folder in ("a", "b"):
    (tmp_path / folder).mkdir()
  names = [f"{i:03d}.png" for i in range(6)]
  for i, name in enumerate(reversed(names)):   # written in another order
    target = rng.integers(0, 256, (5, 5)).astype(np.uint8)
    target[0, 0] = i
    Image.fromarray(target).save(tmp_path / "b" / name)
    Image.fromarray(255 - target).save(tmp_path / "a" / name)
  ds = data_lib.load_dataset(f"pairs:{tmp_path / 'a'},{tmp_path / 'b'}")
  assert ds.spec.shape == (5, 5, 1) and ds.spec.source_shape == (5, 5, 1)
  batch = next(data_lib.train_iterator(ds, batch_size=4, seed=0))
  np.testing.assert_allclose(batch["source"], 1.0 - batch["x"], atol=1e-6)
  (tmp_path / "b" / names[0]).unlink()
  with pytest.raises(DataError, match="matched by file name"):
    data_lib.load_dataset(f"pairs:{tmp_path / 'a'},{tmp_path / 'b'}")
  with pytest.raises(DataError, match="two folders"):
    data_lib.load_dataset(f"pairs:{tmp_path / 'a'}")


@pytest.mark.parametrize("options,error,fragment", [
    ({"name": "digits", "pair": "sketch"}, ConfigError, "data.pair='sketch' is not valid"),
    ({"name": "toy2d:ring8", "pair": "edges"}, ConfigError, "needs images"),
    ({"name": "digits", "pair": "edges", "flatten": True}, ConfigError, "needs images"),
    ({"name": "digits", "pair": "edges", "binarize": "dynamic"}, ConfigError,
     "cannot be combined"),
])
def test_bad_pair_options_are_one_line_errors(options, error, fragment):
  with pytest.raises(error, match=fragment) as info:
    data_lib.load_dataset(**options)
  assert "\n" not in str(info.value)


def test_file_pairs_refuse_a_derived_pair_and_mismatched_sources(tmp_path):
  path = _paired_npz(tmp_path / "pairs.npz")
  with pytest.raises(ConfigError, match="holds its own"):
    data_lib.load_dataset(f"npz:{path}", pair="edges")
  np.savez(tmp_path / "bad.npz", x=np.zeros((6, 4, 4), np.uint8),
           source=np.zeros((5, 4, 4), np.uint8))
  with pytest.raises(DataError, match="6 examples but 5 source images"):
    data_lib.load_dataset(f"npz:{tmp_path / 'bad.npz'}")
  np.savez(tmp_path / "mixed.npz", x=np.zeros((6, 4, 4), np.uint8),
           source=np.zeros((6, 4, 4), np.float32))
  with pytest.raises(DataError, match="both must be integer"):
    data_lib.load_dataset(f"npz:{tmp_path / 'mixed.npz'}")
