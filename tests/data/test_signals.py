"""1-D signals: μ-law companding, the seq1d sources, npz signals, and the pipeline on them
(resume bit-exact, processes' slices = one process's batch, one-line errors)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import codec
from jaxgen.errors import ConfigError, DataError

KINDS = ("sines", "ar", "am", "mixture")


def test_mu_law_round_trip_error_is_bounded_by_the_quantisation_step():
  x = np.concatenate([np.linspace(-1, 1, 20001), np.array([0.0, 1e-6, -1e-6, 1.0, -1.0]),
                      np.random.default_rng(0).uniform(-1, 1, 10000)]).astype(np.float32)
  k = codec.mu_law_quantize(x)
  assert k.dtype == np.int32 and k.min() == 0 and k.max() == 255
  x_hat = codec.mu_law_dequantize(k)
  half_step = 1.0 / 255  # the companded grid has step 2/255
  companded_error = np.abs(codec.mu_law_compand(x) - codec.mu_law_compand(x_hat))
  assert companded_error.max() <= half_step + 1e-6
  # In the signal's own units the bin of level k is [F⁻¹(y_k − h), F⁻¹(y_k + h)]:
  # the error is at most its wider half, tiny near 0 and largest near ±1.
  y = np.abs(k * (2.0 / 255) - 1.0)
  upper = codec.mu_law_expand(np.minimum(y + half_step, 1.0)) - codec.mu_law_expand(y)
  lower = codec.mu_law_expand(y) - codec.mu_law_expand(np.maximum(y - half_step, 0.0))
  bound = np.maximum(upper, lower)
  assert np.all(np.abs(x - x_hat) <= bound + 1e-6)
  assert np.abs(x - x_hat)[np.abs(x) < 0.001].max() < 1.5e-4  # fine steps near zero
  # The closed form at known points, and expand ∘ compand = identity.
  assert codec.mu_law_compand(np.float32(1.0)) == pytest.approx(1.0)
  assert codec.mu_law_compand(np.float32(0.5)) == pytest.approx(np.log1p(127.5) / np.log(256))
  np.testing.assert_allclose(codec.mu_law_expand(codec.mu_law_compand(x)), x, atol=2e-6)
  # numpy in, numpy out; jax in, the same values from jax.
  np.testing.assert_array_equal(np.asarray(codec.mu_law_quantize(jnp.asarray(x))), k)


@pytest.mark.parametrize("kind", KINDS)
def test_seq1d_kinds_are_deterministic_signals_in_range(kind):
  ds = data.load_dataset(f"seq1d:{kind}", num_examples=40, max_examples=30, length=64)
  again = data.load_dataset(f"seq1d:{kind}", num_examples=40, max_examples=30, length=64)
  other = data.load_dataset(f"seq1d:{kind}", num_examples=40, max_examples=30, length=64,
                            generate_seed=1)
  spec = ds.spec
  assert spec.shape == (64, 1) and spec.is_sequence and not spec.is_image
  assert spec.sample_rate == 8000 and (spec.num_train, spec.num_test) == (30, 30)
  x_train, labels = ds.train.gather(np.arange(30))
  np.testing.assert_array_equal(x_train, again.train.gather(np.arange(30))[0])
  assert not np.array_equal(x_train, other.train.gather(np.arange(30))[0])
  assert not np.array_equal(x_train, ds.test.gather(np.arange(30))[0])
  assert np.abs(x_train).max() <= 1.0 and x_train.std() > 0.05
  assert (labels is not None) == (kind == "mixture")
  if kind == "mixture":
    assert spec.num_classes == 3 and set(labels) == {0, 1, 2}
  assert f"seq1d:{kind}" in data.list_datasets()


def test_ar_signals_have_their_resonance():
  """Least-squares AR(2) fits recover poles inside the generated range (radius 0.9..0.99)."""
  ds = data.load_dataset("seq1d:ar", num_examples=20, length=2048)
  x = ds.train.gather(np.arange(20))[0][..., 0].astype(np.float64)
  for signal in x:
    design = np.stack([signal[1:-1], signal[:-2]], axis=1)
    a1, a2 = np.linalg.lstsq(design, signal[2:], rcond=None)[0]
    assert np.sqrt(-a2) == pytest.approx(0.945, abs=0.07)  # |pole| = sqrt(−a2)


def test_mu_law_companding_gives_the_level_grid():
  ds = data.load_dataset("seq1d:sines", num_examples=16, max_examples=16, length=32,
                         companding="mu_law")
  assert ds.spec.levels == 256 and ds.spec.value_range == (-1.0, 1.0)
  assert ds.spec.companding == "mu_law" and "mu_law companded" in ds.spec.describe()
  batch = next(data.eval_batches(ds, batch_size=16))
  raw = ds.test.gather(np.arange(16))[0]
  expected = codec.mu_law_quantize(raw) * (2.0 / 255) - 1.0
  np.testing.assert_allclose(batch["x"], expected, atol=1e-6)
  level_codec = codec.from_spec(ds.spec)
  assert level_codec.discrete and level_codec.levels == 256
  np.testing.assert_array_equal(level_codec.level_index(jnp.asarray(batch["x"])),
                                codec.mu_law_quantize(raw))


@pytest.mark.parametrize("crop", [0, 12])
def test_sequence_stream_resumes_bit_exactly_and_splits_over_processes(crop):
  ds = data.load_dataset("seq1d:mixture", num_examples=64, length=16, companding="mu_law",
                         crop=crop)
  it = data.train_iterator(ds, batch_size=8, seed=3)
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(12)]  # past the end of an epoch (8 batches)
  resumed = data.train_iterator(ds, batch_size=8, seed=3)
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    np.testing.assert_array_equal(got["x"], want["x"])
    np.testing.assert_array_equal(got["label"], want["label"])
  halves = [next(data.train_iterator(ds, batch_size=8, seed=3, process_index=i,
                                     process_count=2)) for i in range(2)]
  whole = next(data.train_iterator(ds, batch_size=8, seed=3))
  np.testing.assert_array_equal(np.concatenate([h["x"] for h in halves]), whole["x"])
  assert whole["x"].shape == (8, crop or 16, 1)


def test_crops_are_windows_fresh_in_training_and_fixed_in_evaluation():
  ds = data.load_dataset("seq1d:sines", num_examples=4, max_examples=4, length=40, crop=10)
  assert ds.spec.shape == (10, 1)
  signals = ds.train.gather(np.arange(4))[0][..., 0]

  def offset_of(window, signal):
    starts = [o for o in range(31) if np.array_equal(signal[o:o + 10], window)]
    assert len(starts) == 1
    return starts[0]

  it = data.train_iterator(ds, batch_size=4, seed=0)
  # Each of the 4 training signals once per epoch, a different window each time.
  offsets = set()
  for _ in range(6):
    batch = next(it)["x"][..., 0]
    for window in batch:
      signal = [s for s in signals if any(np.array_equal(s[o:o + 10], window)
                                          for o in range(31))]
      assert len(signal) == 1
      offsets.add(offset_of(window, signal[0]))
  assert len(offsets) > 3
  first = next(data.eval_batches(ds, "train", batch_size=4))["x"][..., 0]
  again = next(data.eval_batches(ds, "train", batch_size=2))["x"][..., 0]
  np.testing.assert_array_equal(first[:2], again)  # fixed per example, any batch size
  for window, signal in zip(first, signals):
    offset_of(window, signal)


@pytest.mark.parametrize("shape", [(12, 50), (12, 50, 2)])
def test_npz_signals_with_a_sample_rate(tmp_path, shape):
  x = np.random.default_rng(0).uniform(-0.9, 0.9, shape).astype(np.float32)
  path = tmp_path / "signals.npz"
  np.savez(path, x=x, y=np.arange(12) % 2, sample_rate=16000)
  ds = data.load_dataset(f"npz:{path}", companding="mu_law", test_fraction=0.25)
  channels = shape[2] if len(shape) == 3 else 1
  assert ds.spec.shape == (50, channels) and ds.spec.is_sequence
  assert ds.spec.sample_rate == 16000 and ds.spec.num_classes == 2
  assert (ds.spec.num_train, ds.spec.num_test) == (9, 3)
  # Without a sample rate the same [N, T] array stays vectors (as before).
  np.savez(tmp_path / "vectors.npz", x=x.reshape(12, -1))
  assert not data.load_dataset(f"npz:{tmp_path / 'vectors.npz'}").spec.is_sequence


@pytest.mark.parametrize("name,options,error,fragment", [
    ("digits", dict(companding="mu_law"), ConfigError, "needs signals"),
    ("digits", dict(length=10), ConfigError, "data.length=10 sets the length"),
    ("seq1d:sines", dict(companding="alaw"), ConfigError, "choose 'none' or 'mu_law'"),
    ("seq1d:sines", dict(companding="mu_law", dequantize=True), ConfigError, "excludes"),
    ("seq1d:saw", {}, DataError, "unknown dataset 'seq1d:saw'"),
    ("digits", dict(crop=4), ConfigError, "data.crop=4 cuts windows out of signals"),
    ("seq1d:ar", dict(crop=300), ConfigError, "longer than the 256 samples"),
])
def test_bad_signal_options_are_one_line_errors(name, options, error, fragment):
  with pytest.raises(error) as info:
    data.load_dataset(name, num_examples=8, **options)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_npz_signals_out_of_range_or_badly_shaped(tmp_path):
  np.savez(tmp_path / "loud.npz", x=np.full((4, 10), 2.0, np.float32), sample_rate=0)
  with pytest.raises(ConfigError, match=r"needs signals in \[-1, 1\]; the training"):
    data.load_dataset(f"npz:{tmp_path / 'loud.npz'}", companding="mu_law")
  np.savez(tmp_path / "images.npz", x=np.zeros((4, 5, 5, 1), np.float32), sample_rate=0)
  with pytest.raises(DataError, match=r"must be \[N, T\] or \[N, T, C\]"):
    data.load_dataset(f"npz:{tmp_path / 'images.npz'}")
