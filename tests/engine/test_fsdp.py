"""train.strategy=fsdp: state sharded over the data axis, numbers of the replicated strategy."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.engine import parallel, runs
from tests.helpers import assert_trees_close, assert_trees_equal, params_of, tiny_vae


def fsdp_vae(steps=5, **train):
  """A VAE whose large kernels ([64, 256], [256, 64]) dominate the state."""
  config = tiny_vae(steps=steps, **train)
  config_lib.apply_overrides(config, ["model.hidden=(256,)"])
  return config


def test_fsdp_spec_shards_the_largest_divisible_axis():
  spec = parallel.fsdp_spec
  assert spec((64, 256), 4) == P(None, "data")
  assert spec((256, 64), 4) == P("data")
  assert spec((3, 3, 8, 64), 4) == P(None, None, None, "data")
  assert spec((256, 6), 4) == P("data")        # the divisible one, though not largest
  assert spec((255, 9), 4) == P()              # nothing divisible: replicated
  assert spec((256,), 4) == P()                # small: replicated
  assert spec((), 4) == P()
  assert spec((64, 256), 1) == P()
  assert spec((2, 64, 256), 4, skip_leading=True) == P(None, None, "data")
  assert spec((4096, 3), 4, skip_leading=True) == P()


def test_fsdp_gives_the_replicated_parameters_and_shards_the_state():
  replicated = jaxgen.fit(fsdp_vae(num_devices=4))
  sharded = jaxgen.fit(fsdp_vae(num_devices=4, strategy="fsdp"))
  assert_trees_close(params_of(sharded), params_of(replicated), rtol=1e-5, atol=1e-6)
  kernel = sharded.state.params["encoder"]
  specs = {leaf.sharding.spec for leaf in jax.tree.leaves(sharded.state)}
  assert P("data") in specs or P(None, "data") in specs, specs
  assert all(not leaf.sharding.is_fully_replicated
             for leaf in jax.tree.leaves((sharded.state.params, sharded.state.opt_state))
             if leaf.size >= parallel.FSDP_MIN_SIZE), kernel


def test_fsdp_two_player_game_matches_replicated():
  config = config_lib.get_config("gan", "toy2d:ring8")
  config_lib.apply_overrides(config, [
      "model.generator_hidden=(64, 64)", "model.discriminator_hidden=(64, 64)",
      "model.latent_dim=3", "data.batch_size=16", "train.progress=False",
      "train.final_eval=False", "train.steps=4", "train.num_devices=4"])
  replicated = jaxgen.fit(config)
  config.train.strategy = "fsdp"
  sharded = jaxgen.fit(config)
  assert_trees_close(params_of(sharded), params_of(replicated), rtol=1e-5, atol=1e-6)
  assert_trees_close(jax.tree.map(np.asarray, sharded.state.model_state),
                     jax.tree.map(np.asarray, replicated.state.model_state),
                     rtol=1e-5, atol=1e-6)


def _state_and_batch(strategy_name):
  config = fsdp_vae()
  dataset = data_lib.from_config(config.data)
  method = registry.get("vae").make(config, dataset.spec)
  strategy = parallel.Strategy(strategy_name, 4)
  batch = next(data_lib.train_iterator(dataset, batch_size=config.data.batch_size))
  state = strategy.init(method.init, runs.init_keys([0], False), batch)
  step = strategy.compile_step(method.train_step, donate=False)
  return state, step, strategy.put_batch(batch)


def _bytes_on(device, tree):
  return sum(shard.data.nbytes for leaf in jax.tree.leaves(tree)
             for shard in leaf.addressable_shards if shard.device == device)


def test_fsdp_state_takes_about_a_quarter_of_the_memory_per_device():
  replicated, replicated_step, batch = _state_and_batch("jit")
  sharded, sharded_step, _ = _state_and_batch("fsdp")
  device = jax.devices()[0]
  ratio = _bytes_on(device, sharded) / _bytes_on(device, replicated)
  assert 0.25 <= ratio < 0.3, ratio
  # The compiled step's own account: its arguments (state + the batch shard).
  memory = [step.lower(state, batch).compile().memory_analysis()
            for step, state in ((replicated_step, replicated), (sharded_step, sharded))]
  if memory[0] is None:
    pytest.skip("this backend gives no memory analysis")
  batch_bytes = _bytes_on(device, batch)
  arguments = [m.argument_size_in_bytes - batch_bytes for m in memory]
  assert 0.25 <= arguments[1] / arguments[0] < 0.3, arguments
  assert memory[1].output_size_in_bytes < 0.3 * memory[0].output_size_in_bytes


def test_fsdp_resume_is_bitwise(tmp_path):
  whole = jaxgen.fit(fsdp_vae(steps=6, strategy="fsdp", num_devices=4))
  jaxgen.fit(fsdp_vae(steps=3, strategy="fsdp", num_devices=4, schedule_steps=6),
             workdir=tmp_path)
  resumed = jaxgen.fit(fsdp_vae(steps=6, strategy="fsdp", num_devices=4,
                                schedule_steps=6), workdir=tmp_path, resume=True)
  assert_trees_equal(params_of(resumed), params_of(whole))
  assert_trees_equal(jax.tree.map(np.asarray, resumed.state.opt_state),
                     jax.tree.map(np.asarray, whole.state.opt_state))
  specs = {leaf.sharding.spec for leaf in jax.tree.leaves(resumed.state.params)}
  assert specs - {P()}, "the restored state is sharded again"
