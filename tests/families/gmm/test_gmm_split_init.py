"""`init_data="split"`: the GMM's k-means++ sees the whole training split, not one batch."""

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.engine import loop
from jaxgen.families import gmm

from tests.helpers import assert_trees_close, assert_trees_equal

OUTLIER = np.array([50.0, 50.0], np.float32)


@pytest.fixture(scope="module")
def outlier_data(tmp_path_factory):
  """301 training points: 300 near the origin, then one far away, last in the split."""
  rng = np.random.default_rng(0)
  x_train = np.concatenate([0.1 * rng.standard_normal((300, 2)), OUTLIER[None]])
  x_test = 0.1 * rng.standard_normal((40, 2))
  path = tmp_path_factory.mktemp("data") / "outlier.npz"
  np.savez(path, x_train=x_train.astype(np.float32), x_test=x_test.astype(np.float32))
  return f"npz:{path}"


def _config(data, **train):
  config = config_lib.get_config("gmm", data)
  config_lib.apply_overrides(config, [
      "model.num_components=2", "model.em=stepwise", "model.kmeans_iterations=0",
      "data.batch_size=20", "train.progress=False", "train.final_eval=False",
      "train.num_samples=0", "train.checkpoint_every=0", "train.steps=1"])
  for key, value in train.items():
    config.train[key] = value
  return config


def _initial_state(config):
  """The state the engine initialises (before any train step)."""
  trainer = loop.Trainer(config, None, resume=False, overwrite=False)
  return jax.device_get(trainer.strategy.unreplicate(
      trainer._restore_or_init(trainer._iterators())))  # pylint: disable=protected-access


def test_the_engine_hands_init_the_whole_split_in_fixed_order(outlier_data):
  config = _config(outlier_data, num_devices=1)
  state = _initial_state(config)
  dataset = data_lib.from_config(config.data)
  method = gmm.make(config, dataset.spec)
  x, _ = data_lib.eval_arrays(dataset, "train")
  assert x.shape == (301, 2) and np.array_equal(x[-1], OUTLIER)
  expected = jax.device_get(jax.jit(method.init)(jax.random.PRNGKey(0), {"x": x}))
  assert_trees_equal(state.params, expected.params)


def test_a_point_only_in_a_later_batch_becomes_a_centre(outlier_data):
  # With batches of 20 of 301 points, the far point is in a seed's first batch
  # with probability 1/15; seen whole, k-means++ picks it as the second centre
  # with probability ~0.999 (squared distance 5000 against ~0.02 per point).
  seeds = tuple(range(6))
  state = _initial_state(_config(outlier_data, num_devices=1, seeds=seeds))
  means = np.asarray(state.params["gmm"]["means"])      # [seeds, K, 2]
  distance = np.linalg.norm(means - OUTLIER, axis=-1)
  # A component of its own (the M-step's mean of one point, weight 1/301),
  # 70 away from every other point.
  assert np.all(distance.min(axis=1) < 0.05), distance
  weights = np.asarray(state.params["gmm"]["weights"])
  np.testing.assert_allclose(weights[np.arange(len(seeds)), distance.argmin(axis=1)],
                             1 / 301, rtol=1e-3)
  # ...and the first batches of these seeds' streams do not hold it.
  dataset = data_lib.from_config(_config(outlier_data).data)
  firsts = [next(data_lib.train_iterator(dataset, batch_size=20, seed=s))["x"] for s in seeds]
  assert sum(bool(np.any(np.all(b == OUTLIER, axis=1))) for b in firsts) <= 1


@pytest.mark.slow
def test_split_init_on_four_devices_and_pmap_matches_one(outlier_data):
  one = _initial_state(_config(outlier_data, num_devices=1))
  for strategy in ("jit", "pmap"):
    four = _initial_state(_config(outlier_data, num_devices=4, strategy=strategy))
    assert_trees_close(four.params, one.params, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_resume_after_a_split_init_is_bit_exact(outlier_data, tmp_path):
  uninterrupted = jaxgen.fit(_config(outlier_data, steps=6))
  jaxgen.fit(_config(outlier_data, steps=3, checkpoint_every=3), workdir=tmp_path)
  resumed = jaxgen.fit(_config(outlier_data, steps=6, checkpoint_every=3),
                       workdir=tmp_path, resume=True)
  assert_trees_equal(jax.device_get(resumed.state.params),
                     jax.device_get(uninterrupted.state.params))
  # jaxgen.load builds the abstract state from a batch of data.batch_size rows.
  run = jaxgen.load(tmp_path)
  assert_trees_equal(jax.device_get(run.state.params), jax.device_get(resumed.state.params))
