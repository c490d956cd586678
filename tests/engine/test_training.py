"""The loop's promises: device-count independence, multi-seed, bit-exact runs."""

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib


def tiny_vae(steps=6, **train):
  """A small VAE on digits whose runs take about a second."""
  config = config_lib.get_config("vae")
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "data.batch_size=32",
      "optim.learning_rate=0.003", "train.progress=False", "train.final_eval=False"])
  config.train.steps = steps
  for key, value in train.items():
    config.train[key] = value
  return config


def params_of(result, replica=None):
  params = result.state.params
  if replica is not None:
    params = jax.tree.map(lambda x: x[replica], params)
  return jax.tree.map(np.asarray, params)


def assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_same_seed_is_bitwise_reproducible_and_seeds_differ():
  first = jaxgen.fit(tiny_vae())
  second = jaxgen.fit(tiny_vae())
  assert_trees_equal(params_of(first), params_of(second))
  other = jaxgen.fit(tiny_vae(seed=1))
  leaves = jax.tree.leaves(jax.tree.map(
      lambda x, y: np.array_equal(x, y), params_of(first), params_of(other)))
  assert not any(leaves)
  assert int(first.state.step) == 6


@pytest.mark.parametrize("strategy", ["jit", "pmap"])
def test_four_devices_give_the_one_device_parameters(strategy):
  assert jax.device_count() == 4
  one = jaxgen.fit(tiny_vae(num_devices=1))
  four = jaxgen.fit(tiny_vae(num_devices=4, strategy=strategy))
  assert_trees_close(params_of(one), params_of(four))
  assert one.metrics["train"]["loss"] == pytest.approx(four.metrics["train"]["loss"], rel=1e-5)


def test_multi_seed_replicas_match_single_seed_runs():
  seeds = (0, 1, 2)
  together = jaxgen.fit(tiny_vae(seeds=seeds))
  assert together.state.step.shape == (3,)
  for i, seed in enumerate(seeds):
    alone = jaxgen.fit(tiny_vae(seed=seed))
    assert_trees_close(params_of(together, i), params_of(alone))


def test_multi_seed_under_pmap_matches_single_seed():
  together = jaxgen.fit(tiny_vae(seeds=(0, 1), strategy="pmap", num_devices=2))
  alone = jaxgen.fit(tiny_vae(seed=1, num_devices=1))
  assert_trees_close(params_of(together, 1), params_of(alone))


def test_bad_train_settings_are_rejected():
  with pytest.raises(jaxgen.errors.ConfigError if hasattr(jaxgen, "errors") else Exception,
                     match="strategy"):
    jaxgen.fit(tiny_vae(strategy="mpi"))
  config = tiny_vae()
  config.data.batch_size = 30
  with pytest.raises(Exception, match="does not split over 4 devices"):
    jaxgen.fit(config)
  with pytest.raises(Exception, match="train.steps must be at least 1"):
    jaxgen.fit(tiny_vae(steps=0))
