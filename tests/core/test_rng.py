"""Keys: one per step and purpose; per-example noise independent of devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import collectives, rng


def test_step_keys_differ_by_step_and_purpose():
  base = jax.random.PRNGKey(0)
  keys = [rng.step_key(base, t) for t in range(5)]
  flat = {tuple(np.asarray(k).tolist()) for k in keys}
  assert len(flat) == 5
  split = rng.split(keys[0], "noise", "time")
  assert not np.array_equal(split["noise"], split["time"])
  with pytest.raises(ValueError, match="distinct"):
    rng.split(base, "a", "a")


def test_per_example_noise_is_the_same_under_pmap():
  """Each device draws exactly its slice of the global batch's noise."""
  key = jax.random.PRNGKey(3)
  devices = jax.devices()[:4]
  assert len(devices) == 4
  reference = rng.normal(key, (8, 3))

  def draw(k, x):
    with collectives.pmap_axis("data"):
      return rng.normal(k, x.shape)

  def per_device(k, x):
    return draw(k, x)

  pmapped = jax.pmap(per_device, axis_name="data", devices=devices,
                     in_axes=(None, 0))
  sharded = pmapped(key, jnp.zeros((4, 2, 3)))
  np.testing.assert_array_equal(np.asarray(sharded).reshape(8, 3), reference)


def test_per_example_draws_have_the_right_law():
  key = jax.random.PRNGKey(1)
  u = np.asarray(rng.uniform(key, (4000, 5), minval=-1.0, maxval=3.0))
  assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1.0) < 0.05
  b = np.asarray(rng.bernoulli(key, 0.3, (4000, 5)))
  assert abs(b.mean() - 0.3) < 0.02
  r = np.asarray(rng.randint(key, (4000,), 2, 5))
  assert set(np.unique(r)) == {2, 3, 4}
  n = np.asarray(rng.normal(key, (4000, 5)))
  assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


def test_index_keys_do_not_depend_on_batching():
  """Example i's evaluation key is fold_in(key, i), however the split is batched."""
  core_rng = rng
  key = jax.random.PRNGKey(3)
  index = jnp.arange(12)
  whole = core_rng.each(core_rng.index_keys(key, index),
                        lambda k: jax.random.normal(k, (2,)))
  parts = [core_rng.each(core_rng.index_keys(key, index[i:i + 4]),
                         lambda k: jax.random.normal(k, (2,))) for i in (0, 4, 8)]
  np.testing.assert_array_equal(whole, jnp.concatenate(parts))
  split = core_rng.split_each(core_rng.index_keys(key, index), "a", "b")
  assert split["a"].shape == split["b"].shape == (12, 2)
  assert not np.array_equal(split["a"], split["b"])


def test_helpers_accept_per_example_keys():
  """rng.normal & co. with per-example keys draw example i from keys[i]."""
  keys = rng.index_keys(jax.random.PRNGKey(5), jnp.arange(6))
  assert rng.is_per_example(keys) and not rng.is_per_example(jax.random.PRNGKey(5))
  drawn = rng.normal(keys, (6, 3))
  np.testing.assert_array_equal(drawn[4], jax.random.normal(keys[4], (3,)))
  split = rng.split(keys, "a", "b")
  np.testing.assert_array_equal(rng.uniform(split["b"], (6,))[2],
                                jax.random.uniform(jax.random.split(keys[2], 2)[1], ()))
  with pytest.raises(ValueError, match="6 per-example keys for a batch of 4"):
    rng.normal(keys, (4, 3))
