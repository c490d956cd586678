"""Training stream and evaluation batches: order, resume, process slices, transforms.

Most tests use an .npz dataset whose example i is the value i (or whose label is
i), so a batch says exactly which examples it holds.
"""

import json

import numpy as np
import pytest

from jaxgen import data
from jaxgen.errors import ConfigError, DataError


def numbered(tmp_path, num_train=100, num_test=23):
  """Vectors x = [i] for train example i, [1000 + i] for test example i."""
  path = tmp_path / "numbered.npz"
  np.savez(path, x_train=np.arange(num_train, dtype=np.float32)[:, None],
           x_test=1000 + np.arange(num_test, dtype=np.float32)[:, None])
  return data.load_dataset(f"npz:{path}")


def grey(tmp_path, value=128, count=64, **options):
  """count constant 4x4 uint8 images of one grey value; label i = example i."""
  path = tmp_path / f"grey{value}.npz"
  images = np.full((count, 4, 4), value, np.uint8)
  np.savez(path, x_train=images, y_train=np.arange(count), x_test=images[:10],
           y_test=np.arange(10))
  return data.load_dataset(f"npz:{path}", **options)


def ids_of(batch):
  return batch["x"][:, 0].astype(int)


def take(iterator, count):
  return [next(iterator) for _ in range(count)]


def assert_batches_equal(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


# order


def test_each_epoch_is_the_seeded_permutation_without_remainder(tmp_path):
  ds = numbered(tmp_path)
  it = data.train_iterator(ds, batch_size=16, seed=3)
  assert it.batches_per_epoch == 6  # 100 // 16; the last 4 of each epoch dropped
  for epoch in range(3):
    seen = np.concatenate([ids_of(b) for b in take(it, 6)])
    assert len(np.unique(seen)) == 96 and seen.max() < 100
    expected = np.random.default_rng([3, epoch]).permutation(100)[:96]
    np.testing.assert_array_equal(seen, expected)


def test_every_example_once_per_epoch_and_epochs_differ(tmp_path):
  ds = numbered(tmp_path)
  it = data.train_iterator(ds, batch_size=20, seed=0)
  epochs = [np.concatenate([ids_of(b) for b in take(it, 5)]) for _ in range(2)]
  for order in epochs:
    np.testing.assert_array_equal(np.sort(order), np.arange(100))
  assert not np.array_equal(epochs[0], epochs[1])


def test_same_seed_same_order_other_seed_other_order(tmp_path):
  ds = numbered(tmp_path)
  first = take(data.train_iterator(ds, batch_size=10, seed=7), 3)
  again = take(data.train_iterator(ds, batch_size=10, seed=7), 3)
  other = take(data.train_iterator(ds, batch_size=10, seed=8), 3)
  assert_batches_equal(first, again)
  assert not np.array_equal(ids_of(first[0]), ids_of(other[0]))


def test_pipeline_has_random_access(tmp_path):
  ds = grey(tmp_path, binarize="dynamic")
  pipeline = data.train_pipeline(ds, batch_size=16, seed=1)
  batches = take(data.train_iterator(ds, batch_size=16, seed=1), 6)
  assert_batches_equal([pipeline[5], pipeline[2]], [batches[5], batches[2]])


# resume


@pytest.mark.parametrize("stop", [2, 6])  # mid-epoch; at the epoch boundary (5 per epoch)
def test_set_state_resumes_bit_exactly(tmp_path, stop):
  ds = grey(tmp_path, value=100, count=80, binarize="dynamic")
  uninterrupted = take(data.train_iterator(ds, batch_size=16, seed=5), stop + 6)
  first = data.train_iterator(ds, batch_size=16, seed=5)
  take(first, stop)
  state = json.loads(json.dumps(first.get_state()))  # as a checkpoint stores it
  resumed = data.train_iterator(ds, batch_size=16, seed=5)
  resumed.set_state(state)
  assert_batches_equal(take(resumed, 6), uninterrupted[stop:])


def test_set_state_refuses_another_stream(tmp_path):
  ds = numbered(tmp_path)
  state = data.train_iterator(ds, batch_size=10, seed=0).get_state()
  with pytest.raises(DataError, match="batch_size=10"):
    data.train_iterator(ds, batch_size=20, seed=0).set_state(state)
  with pytest.raises(DataError, match="seed"):
    data.train_iterator(ds, batch_size=10, seed=1).set_state(state)


# processes


@pytest.mark.parametrize("options", [{}, {"binarize": "dynamic"}, {"dequantize": True}])
def test_process_slices_concatenate_to_the_global_batch(tmp_path, options):
  ds = grey(tmp_path, value=90, **options)
  global_batches = take(data.train_iterator(ds, batch_size=16, seed=2), 5)
  slices = [take(data.train_iterator(ds, 16, 2, process_index=i, process_count=4), 5)
            for i in range(4)]
  for b, batch in enumerate(global_batches):
    for key in batch:
      parts = [slices[i][b][key] for i in range(4)]
      assert parts[0].shape[0] == 4
      np.testing.assert_array_equal(np.concatenate(parts), batch[key])


def test_process_count_must_divide_batch_size(tmp_path):
  ds = numbered(tmp_path)
  with pytest.raises(ConfigError, match="batch_size=10.*process_count=4"):
    data.train_iterator(ds, batch_size=10, process_index=0, process_count=4)
  with pytest.raises(DataError, match="larger than the 100"):
    data.train_iterator(ds, batch_size=128)


# evaluation


@pytest.mark.parametrize("batch_size", [5, 8, 23, 32])
def test_eval_batches_cover_the_split_once_with_mask(tmp_path, batch_size):
  ds = numbered(tmp_path)
  batches = list(data.eval_batches(ds, "test", batch_size=batch_size))
  assert len(batches) == -(-23 // batch_size)
  for batch in batches:
    assert batch["x"].shape == (batch_size, 1) and batch["mask"].shape == (batch_size,)
    assert batch["mask"].dtype == np.float32
  x = np.concatenate([b["x"][:, 0] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  np.testing.assert_array_equal(x[mask == 1], 1000 + np.arange(23))  # in order
  assert mask.sum() == 23 and np.all(mask[:23] == 1)
  # Process slices of eval batches also concatenate to the global ones.
  if batch_size % 4 == 0:
    parts = [list(data.eval_batches(ds, "test", batch_size, process_index=i,
                                    process_count=4)) for i in range(4)]
    for b, batch in enumerate(batches):
      np.testing.assert_array_equal(
          np.concatenate([parts[i][b]["mask"] for i in range(4)]), batch["mask"])


def test_eval_arrays_are_the_split_in_order_with_labels(tmp_path):
  x, labels = data.eval_arrays(numbered(tmp_path), "test", batch_size=5)
  np.testing.assert_array_equal(x[:, 0], 1000 + np.arange(23))
  assert labels is None
  x, labels = data.eval_arrays(grey(tmp_path, value=255), "train", batch_size=7)
  assert x.shape == (64, 4, 4, 1) and np.all(x == 1.0)
  np.testing.assert_array_equal(labels, np.arange(64))


def test_eval_batches_rejects_unknown_split(tmp_path):
  with pytest.raises(ConfigError, match="'train' or 'test'"):
    data.eval_batches(numbered(tmp_path), "validation")


# transforms


def per_example(batches, count):
  """{example id (the label): list of x drawn for it}."""
  draws = {i: [] for i in range(count)}
  for batch in batches:
    for x, label in zip(batch["x"], batch["label"]):
      draws[int(label)].append(x)
  return draws


def test_static_binarization_is_fixed_per_example(tmp_path):
  ds = grey(tmp_path, value=128, binarize="static")
  assert ds.spec.binary and ds.spec.value_range == (0.0, 1.0)
  draws = per_example(take(data.train_iterator(ds, batch_size=16), 12), 64)  # 3 epochs
  for samples in draws.values():
    assert len(samples) == 3
    for sample in samples[1:]:
      np.testing.assert_array_equal(sample, samples[0])
  firsts = np.stack([samples[0] for samples in draws.values()])
  assert set(np.unique(firsts)) == {0.0, 1.0}
  assert abs(firsts.mean() - 128 / 255) < 0.04
  assert len({s.tobytes() for s in firsts}) == 64  # examples differ
  # Evaluating the train split shows the same fixed sample.
  for batch in data.eval_batches(ds, "train", batch_size=16):
    for x, label in zip(batch["x"], batch["label"]):
      np.testing.assert_array_equal(x, draws[int(label)][0])


def test_dynamic_binarization_is_fresh_with_grey_mean(tmp_path):
  ds = grey(tmp_path, value=64, binarize="dynamic")
  batches = take(data.train_iterator(ds, batch_size=16), 40)  # 10 epochs
  x = np.stack([b["x"] for b in batches])
  assert set(np.unique(x)) == {0.0, 1.0}
  assert abs(x.mean() - 64 / 255) < 0.01
  draws = per_example(batches, 64)
  assert not np.array_equal(draws[0][0], draws[0][1])
  first = [b["x"] for b in data.eval_batches(ds, "test", batch_size=4)]
  again = [b["x"] for b in data.eval_batches(ds, "test", batch_size=4)]
  np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
  assert abs(np.concatenate(first).mean() - 64 / 255) < 0.05


def test_threshold_binarization():
  ds = data.load_dataset("digits", binarize="threshold", scale="unit")
  batch = next(data.eval_batches(ds, "test", batch_size=32))
  raw = ds.test.x[:32].astype(np.float32) / 16
  np.testing.assert_array_equal(batch["x"], (raw > 0.5).astype(np.float32))


def test_dequantization_range_and_mean():
  ds = data.load_dataset("digits", dequantize=True)
  assert ds.spec.levels == 17 and ds.spec.value_range == (0.0, 1.0)
  it = data.train_iterator(ds, batch_size=128, seed=0)
  batches = take(it, 20)
  x = np.stack([b["x"] for b in batches])
  assert x.min() >= 0.0 and x.max() < 1.0
  scaled = x * 17  # = raw level + u
  u = scaled - np.floor(scaled)
  assert np.floor(scaled).max() <= 16
  assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
  # Training draws differ; evaluation is deterministic and dequantizes the raw data.
  first_epoch = data.train_iterator(ds, batch_size=128, seed=0)
  assert not np.array_equal(next(first_epoch)["x"], next(
      data.train_iterator(ds, batch_size=128, seed=1))["x"])
  evals = [np.concatenate([b["x"] for b in data.eval_batches(ds, "test", 100)])[:359]
           for _ in range(2)]
  np.testing.assert_array_equal(evals[0], evals[1])
  np.testing.assert_array_equal(np.floor(evals[0] * 17), ds.test.x)
  symmetric = data.load_dataset("digits", dequantize=True, scale="symmetric")
  x = next(data.train_iterator(symmetric, batch_size=128))["x"]
  assert symmetric.spec.value_range == (-1.0, 1.0) and x.min() >= -1 and x.max() < 1


def test_scales_labels_and_flatten():
  raw = data.load_dataset("digits", scale="none")
  assert raw.spec.value_range == (0.0, 16.0)
  first = next(data.eval_batches(raw, "test", 64))["x"]
  np.testing.assert_array_equal(first, raw.test.x[:64])
  symmetric = data.load_dataset("digits", scale="symmetric")
  x = next(data.eval_batches(symmetric, "test", 64))["x"]
  np.testing.assert_allclose(x, raw.test.x[:64] / 8 - 1, atol=1e-6)
  flat = data.load_dataset("digits", flatten=True, labels=False)
  assert flat.spec.shape == (64,) and not flat.spec.is_image
  assert flat.spec.image_shape == (8, 8, 1) and flat.spec.num_classes is None
  batch = next(data.train_iterator(flat, batch_size=8))
  assert set(batch) == {"x"} and batch["x"].shape == (8, 64)
  toy = data.load_dataset("toy2d:ring8", scale="unit", num_examples=1000)
  x = toy.train.x
  scaled = next(data.eval_batches(toy, "train", 1000))["x"]
  np.testing.assert_allclose(scaled, (x - x.min()) / (x.max() - x.min()), atol=1e-6)
