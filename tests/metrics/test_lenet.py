"""The shipped LeNet feature networks: hash-checked weights, recorded accuracy, inputs."""

import re
import shutil

import numpy as np
import pytest

from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.metrics import lenet


@pytest.fixture(scope="module")
def digits_params():
  return lenet.load("digits")


@pytest.fixture(scope="module")
def digits_test():
  return data_lib.eval_arrays(data_lib.load_dataset("digits"), "test")


def test_both_networks_are_shipped_with_their_hash_and_accuracy():
  records = lenet.records()
  for name in ("mnist", "digits"):
    params = lenet.load(name)
    assert params.sha256 == records[name]["sha256"] == lenet.file_sha256(
        lenet.WEIGHTS_DIR / f"lenet_{name}.npz")
    assert params.network == f"lenet_{name}"
    assert 0.0 < records[name]["accuracy"] <= 1.0
    assert records[name]["test_examples"] == {"mnist": 2000, "digits": 359}[name]
    # Small enough to ship in the package.
    assert (lenet.WEIGHTS_DIR / f"lenet_{name}.npz").stat().st_size < 2_000_000


def test_digits_accuracy_is_the_recorded_one_and_meets_the_target(digits_params,
                                                                  digits_test):
  x, labels = digits_test
  predicted = np.argmax(lenet.logits(digits_params, x), -1)
  accuracy = float(np.mean(predicted == labels))
  assert accuracy == pytest.approx(digits_params.record["accuracy"], abs=1e-12)
  assert accuracy >= 0.98


def test_a_changed_weights_file_is_refused(tmp_path):
  shutil.copytree(lenet.WEIGHTS_DIR, tmp_path / "w")
  path = tmp_path / "w" / "lenet_digits.npz"
  assert lenet.load("digits", tmp_path / "w").sha256 == lenet.records()["digits"]["sha256"]
  data = bytearray(path.read_bytes())
  data[-100] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(ConfigError, match="SHA-256 .* records .* a damaged or different"):
    lenet.load("digits", tmp_path / "w")
  path.unlink()
  with pytest.raises(ConfigError, match="not in .*train them with"):
    lenet.load("digits", tmp_path / "w")


def test_unknown_network_names_the_valid_ones():
  with pytest.raises(ConfigError, match=re.escape("choose 'mnist' or 'digits'")):
    lenet.load("cifar10")


def test_layouts_value_ranges_and_chunks_give_the_same_features(digits_params,
                                                                digits_test):
  x = digits_test[0][:37]                      # [37, 8, 8, 1] in [0, 1]
  reference = lenet.features(digits_params, x)
  assert reference.shape == (37, 128) and reference.dtype == np.float32
  np.testing.assert_allclose(lenet.features(digits_params, x.reshape(37, 64)), reference)
  np.testing.assert_allclose(lenet.features(digits_params, x[..., 0]), reference)
  np.testing.assert_allclose(
      lenet.features(digits_params, 2 * x - 1, value_range=(-1, 1)), reference,
      rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      lenet.features(digits_params, x * 255, value_range=(0, 255)), reference,
      rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(lenet.features(digits_params, x, chunk_size=5), reference)
  # Values outside the range are clipped to it.
  np.testing.assert_array_equal(lenet.features(digits_params, x + (x > 0.99) * 0.5),
                                reference)


def test_wrong_image_shape_is_one_line(digits_params):
  with pytest.raises(ConfigError, match=r"takes 8x8 grey images, got examples of shape \(28, 28, 1\)"):
    lenet.features(digits_params, np.zeros((2, 28, 28, 1)))
