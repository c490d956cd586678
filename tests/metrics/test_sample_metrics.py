"""The sample-metric plumbing: names, options, streaming statistics, the
reference-feature cache, the evaluator against direct computations, image files."""

import re

import numpy as np
import pytest
from PIL import Image

from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.metrics import fid as fid_lib
from jaxgen.metrics import kid
from jaxgen.metrics.inception_score import inception_score
from jaxgen.metrics.precision_recall import density_coverage, precision_recall
from jaxgen.metrics import sample_metrics as sm


def test_unknown_metric_names_the_valid_ones():
  assert sm.parse_metrics("fid, KID,fid") == ("fid", "kid")
  assert sm.parse_metrics(["is", "modes"]) == ("is", "modes")
  with pytest.raises(ConfigError, match=re.escape(
      "unknown metric 'fld'; valid metrics: 'fid', 'kid', 'is', 'pr', 'dc' or 'modes'")):
    sm.parse_metrics("fld,kid")
  with pytest.raises(ConfigError, match="no metric given"):
    sm.parse_metrics(",")


def test_options_from_overrides_check_keys_and_types():
  options = sm.MetricOptions.from_overrides({"metrics.chunk_size": "64",
                                             "metrics.network": "lenet_mnist"})
  assert options.chunk_size == 64 and options.network == "lenet_mnist"
  with pytest.raises(ConfigError, match="unknown config key 'metrics.chunksize'.*chunk_size"):
    sm.MetricOptions.from_overrides({"metrics.chunksize": 3})
  with pytest.raises(ConfigError, match="takes an integer, got 'many'"):
    sm.MetricOptions.from_overrides({"metrics.kid_subsets": "many"})
  with pytest.raises(ConfigError, match="metrics.network='vgg' is not valid"):
    sm.MetricOptions(network="vgg")
  with pytest.raises(ConfigError, match="metrics.pr_k=0 must be at least 1"):
    sm.MetricOptions(pr_k=0)


class _Spec:
  def __init__(self, name, shape):
    self.name, self.shape = name, shape


@pytest.mark.parametrize("name,shape,network", [
    ("digits", (8, 8, 1), "lenet_digits"),
    ("digits", (64,), "lenet_digits"),
    ("idx:../shared/data/mnist-t10k", (28, 28, 1), "lenet_mnist"),
    ("tfds:mnist", (784,), "lenet_mnist"),
    ("tfds:fashion_mnist", (28, 28, 1), "inception"),
    ("tfds:cifar10", (32, 32, 3), "inception"),
    ("digits", (16, 16, 1), "inception"),     # resized digits: not the LeNet's size
    ("toy2d:ring8", (2,), "raw"),
])
def test_the_network_follows_the_data(name, shape, network):
  assert sm.choose_network(_Spec(name, shape), sm.MetricOptions()) == network
  assert sm.choose_network(_Spec(name, shape),
                           sm.MetricOptions(network="inception")) == "inception"


def test_running_gaussian_equals_the_statistics_of_all_features():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(203, 5)) * [1, 2, 3, 4, 5] + 1e3   # a large mean
  running = sm.RunningGaussian()
  for start in range(0, 203, 17):
    running.update(x[start:start + 17])
  mu, sigma = running.statistics()
  mu_ref, sigma_ref = fid_lib.gaussian_statistics(x)
  np.testing.assert_allclose(mu, mu_ref, rtol=1e-12)
  np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-9, atol=1e-9)
  with pytest.raises(ValueError, match="at least 2"):
    one = sm.RunningGaussian()
    one.update(x[:1])
    one.statistics()


def _counting_network(name="fake", sha256="aa", resize="none"):
  """A feature network that counts the images it sees: features = pixels."""
  calls = []

  def fn(images, value_range):
    calls.append(len(images))
    x = (np.asarray(images, np.float32) - value_range[0]) / (value_range[1] - value_range[0])
    x = x.reshape(len(x), -1)
    return {"features": x, "logits": x[:, :10] * 10}

  return sm.FeatureNetwork(name, sha256, resize, fn, {"network": name}), calls


def test_reference_features_are_cached_and_any_key_change_recomputes(tmp_path):
  options = sm.MetricOptions(cache_dir=str(tmp_path), chunk_size=500)
  config = dict(data_lib.default_config().to_dict(), name="digits")
  dataset = data_lib.from_config(config)
  network, calls = _counting_network()
  features, info = sm.reference_features(network, dataset, config, options)
  x_train, _ = data_lib.eval_arrays(dataset, "train")
  np.testing.assert_array_equal(features, x_train.reshape(len(x_train), -1))
  assert info["cached"] is False and info["examples"] == 1438 and sum(calls) == 1438
  again, info = sm.reference_features(network, dataset, config, options)
  assert info["cached"] is True and sum(calls) == 1438      # nothing recomputed
  np.testing.assert_array_equal(again, features)
  files = {info["cache"]}

  changes = [
      ("split", network, dataset, config, sm.MetricOptions(
          cache_dir=str(tmp_path), reference_split="test")),
      ("network", _counting_network(name="other")[0], dataset, config, options),
      ("weights", _counting_network(sha256="bb")[0], dataset, config, options),
      ("resize", _counting_network(resize="bilinear")[0], dataset, config, options),
  ]
  symmetric = dict(config, scale="symmetric")
  changes.append(("dataset", network, data_lib.from_config(symmetric), symmetric, options))
  for what, net, data, cfg, opts in changes:
    before = sum(calls)
    _, info = sm.reference_features(net, data, cfg, opts)
    assert info["cached"] is False, what
    assert info["cache"] not in files, what
    files.add(info["cache"])
    if net is network:
      assert sum(calls) > before, what
  # The batch size is not part of the key.
  _, info = sm.reference_features(network, dataset, dict(config, batch_size=7), options)
  assert info["cached"] is True


def test_a_cache_file_with_another_key_inside_is_recomputed(tmp_path):
  options = sm.MetricOptions(cache_dir=str(tmp_path), reference_split="test")
  config = dict(data_lib.default_config().to_dict(), name="digits")
  dataset = data_lib.from_config(config)
  network, calls = _counting_network()
  _, info = sm.reference_features(network, dataset, config, options)
  path = info["cache"]
  np.savez(path, format=np.array("jaxgen-reference-features-v1"), key=np.array("{}"),
           features=np.zeros((3, 64), np.float32))
  features, info = sm.reference_features(network, dataset, config, options)
  assert info["cached"] is False and features.shape == (359, 64) and sum(calls) == 718


def test_the_evaluator_equals_the_metric_functions_on_all_features():
  rng = np.random.default_rng(1)
  real = rng.normal(size=(300, 12)).astype(np.float32)
  fake = (rng.normal(size=(250, 12)) * 1.2 + 0.3).astype(np.float32)
  network = sm.FeatureNetwork(
      "toy", "", "none", lambda x, r: {"features": x, "logits": x[:, :4]}, {})
  options = sm.MetricOptions(kid_subsets=20, kid_subset_size=100, chunk_size=40)
  evaluator = sm.sample_evaluator(["fid", "kid", "is", "pr", "dc"], network,
                                  (real, {"examples": 300}), num_samples=250,
                                  options=options, value_range=(0, 1), seed=5)
  assert evaluator.name == "toy" and evaluator.chunk_size == 40
  values = evaluator.fn(fake[i:i + 40] for i in range(0, 250, 40))
  assert values["fid_toy"] == pytest.approx(fid_lib.fid_from_features(real, fake),
                                            rel=1e-9)
  expected_kid = kid.kid_from_features(real, fake, num_subsets=20, subset_size=100, seed=5)
  assert values["kid_toy"] == expected_kid["mean"]
  assert values["kid_toy_std"] == expected_kid["std"]
  score = inception_score(fake[:, :4], from_logits=True)
  assert values["is_toy"] == score["mean"] and values["is_toy_std"] == score["std"]
  pr = precision_recall(real, fake, k=3)
  assert (values["pr_toy_precision"], values["pr_toy_recall"]) == (
      pr["precision"], pr["recall"])
  dc = density_coverage(real, fake, k=5)
  assert (values["dc_toy_density"], values["dc_toy_coverage"]) == (
      dc["density"], dc["coverage"])
  protocol = evaluator.protocol
  assert protocol["generated"] == 250 and protocol["metrics"]["kid"]["subset_seed"] == 5
  assert protocol["reference"]["examples"] == 300 and "jaxgen_version" in protocol


def test_fid_of_a_set_with_itself_is_zero_and_only_fid_is_reported():
  def fn(x, value_range):
    return {"features": x, "logits": None}

  network = sm.FeatureNetwork("toy", "", "none", fn, {})
  real = np.random.default_rng(0).normal(size=(50, 3))
  evaluator = sm.sample_evaluator(["fid"], network, (real, {}), num_samples=50,
                                  options=sm.MetricOptions(), value_range=(0, 1))
  values = evaluator.fn(iter([real[:25], real[25:]]))
  assert values == {"fid_toy": pytest.approx(0.0, abs=1e-9)}


def test_images_from_a_folder_and_an_npz(tmp_path):
  rng = np.random.default_rng(0)
  grey = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
  folder = tmp_path / "grey"
  folder.mkdir()
  for i, image in enumerate(grey):
    Image.fromarray(image).save(folder / f"{i:03d}.png")
  (folder / "notes.txt").write_text("not an image")
  images, value_range = sm.read_images(folder)
  np.testing.assert_array_equal(images, grey[..., None])
  assert value_range == (0.0, 255.0)
  np.savez(tmp_path / "f.npz", x=grey.astype(np.float32) / 255)
  images, value_range = sm.read_images(tmp_path / "f.npz")
  assert images.shape == (5, 8, 8, 1) and value_range == (0.0, 1.0)
  np.savez(tmp_path / "bad.npz", y=grey)
  with pytest.raises(ConfigError, match="has no array 'x'"):
    sm.read_images(tmp_path / "bad.npz")
  with pytest.raises(ConfigError, match="holds no image files"):
    sm.read_images(tmp_path)
  Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "999.png")
  with pytest.raises(ConfigError, match="differ in size"):
    sm.read_images(folder)
