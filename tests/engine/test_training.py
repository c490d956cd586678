"""The loop's promises: device-count independence, multi-seed, bit-exact runs."""

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen.errors import ConfigError

from tests.helpers import assert_trees_close, assert_trees_equal, params_of, tiny_vae


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
  looped = jaxgen.fit(tiny_vae(seeds=seeds, seed_strategy="loop"))
  assert together.state.step.shape == looped.state.step.shape == (3,)
  for i, seed in enumerate(seeds):
    alone = jaxgen.fit(tiny_vae(seed=seed))
    assert_trees_close(params_of(together, i), params_of(alone))
    assert_trees_close(params_of(looped, i), params_of(alone))


@pytest.mark.parametrize("seed_strategy", ["vmap", "loop"])
def test_multi_seed_under_pmap_matches_single_seed(seed_strategy):
  together = jaxgen.fit(tiny_vae(seeds=(0, 1), strategy="pmap", num_devices=2,
                                 seed_strategy=seed_strategy))
  alone = jaxgen.fit(tiny_vae(seed=1, num_devices=1))
  assert_trees_close(params_of(together, 1), params_of(alone))


def test_bad_train_settings_are_rejected():
  with pytest.raises(ConfigError, match="strategy"):
    jaxgen.fit(tiny_vae(strategy="mpi"))
  config = tiny_vae()
  config.data.batch_size = 30
  with pytest.raises(ConfigError, match="does not split over 4 devices"):
    jaxgen.fit(config)
  with pytest.raises(ConfigError, match="train.steps must be at least 1"):
    jaxgen.fit(tiny_vae(steps=0))
  with pytest.raises(ConfigError, match="train.seed_strategy 'scan'; valid: 'vmap' or 'loop'"):
    jaxgen.fit(tiny_vae(seeds=(0, 1), seed_strategy="scan"))
