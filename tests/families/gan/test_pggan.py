"""`pggan` through the engine: the stage schedule, one compilation for every
stage, stages touching only their layers, bit-exact resume across a stage
boundary and mid-fade, 4 devices = 1, and one-line config errors."""

import collections
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.families.gan import progressive
from jaxgen.families.gan.progressive_settings import Schedule
from tests.helpers import (assert_trees_close, assert_trees_equal, config_error, full_state,
                           tiny_config)

# batch 16: stage 0 is steps 0-1, stage 1 fades in over steps 2-4 (α = 1/3,
# 2/3, 1) and stabilises from step 5 on.
TINY = ["model.channels=(8, 8)", "model.latent_dim=8", "data.batch_size=16",
        "model.fade_images=48", "model.stable_images=32", "data.max_examples=320",
        "train.progress=False", "train.final_eval=False", "train.num_samples=0",
        "train.log_every=1", "train.eval_every=0", "train.sample_every=0",
        "train.checkpoint_every=0"]


def tiny(steps=8, overrides=(), **train):
  return tiny_config("pggan", "digits", TINY, overrides, steps, **train)


def test_schedule_is_a_pure_function_of_the_step():
  schedule = Schedule(num_stages=3, fade_steps=3, stable_steps=2)
  assert schedule.starts == (0, 2, 7)
  stages = [schedule.stage(t) for t in range(14)]
  assert stages == [0, 0] + [1] * 5 + [2] * 7
  traced = jax.jit(jax.vmap(schedule.stage_array))(jnp.arange(14))
  np.testing.assert_array_equal(np.asarray(traced), stages)
  alphas = [float(schedule.alpha(t, schedule.stage(t))) for t in range(14)]
  np.testing.assert_allclose(alphas, [1, 1, 1 / 3, 2 / 3, 1, 1, 1, 1 / 3, 2 / 3, 1, 1, 1, 1, 1],
                             rtol=1e-6)
  assert float(Schedule(2, 0, 1).alpha(1, 1)) == 1.0       # no fade: the block at once


def test_pggan_trains_through_every_stage_with_one_trace_per_stage(monkeypatch, caplog):
  traced = collections.Counter()
  original = progressive.stage_step

  def counting(nets, tx_g, tx_d, stage, state, batch):
    traced[stage] += 1
    return original(nets, tx_g, tx_d, stage, state, batch)

  monkeypatch.setattr(progressive, "stage_step", counting)
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level(logging.WARNING, logger="jax"):
      result = jaxgen.fit(tiny(8))
  finally:
    jax.config.update("jax_log_compiles", False)
  # Both stage programs traced once, in the one jitted train step, for 8
  # steps that cross the stage boundary and the fade.
  assert traced == {0: 1, 1: 1}
  # jax's own log: the jitted train step is traced once and compiled at most
  # once (not at all when the persistent cache holds it), not once per stage.
  messages = [r.getMessage() for r in caplog.records if "train_step" in r.getMessage()]
  assert len([m for m in messages if m.startswith("Finished tracing")]) == 1, messages
  assert len([m for m in messages if m.startswith("Compiling")]) <= 1, messages
  records = [r for r in result.history if r["split"] == "train"]
  assert [r["stage"] for r in records] == [0, 0, 1, 1, 1, 1, 1, 1]
  np.testing.assert_allclose([r["alpha"] for r in records],
                             [1, 1, 1 / 3, 2 / 3, 1, 1, 1, 1], rtol=1e-6)
  assert all(np.isfinite(r["loss"]) and r["gradient_penalty"] >= 0 for r in records)
  x = result.method.sample(result.state, jax.random.PRNGKey(0), 5)
  assert x.shape == (5, 8, 8, 1)
  lo, hi = result.spec.value_range
  assert float(jnp.min(x)) >= lo and float(jnp.max(x)) <= hi


def test_a_stage_updates_only_its_own_layers():
  config = tiny(2)
  result = jaxgen.fit(config)
  dataset = data_lib.from_config(config.data)
  batch = next(data_lib.train_iterator(dataset, batch_size=16, seed=0))
  start = result.method.init(jax.random.PRNGKey(0), batch)
  # Two steps of stage 0: stage 1's layers are untouched, stage 0's moved.
  for player, stage1_only in (("generator", {"block1_conv0", "block1_conv1", "to_rgb1"}),
                              ("discriminator", {"block1_conv0", "block1_conv1",
                                                 "from_rgb1"})):
    trained, initial = result.state.params[player], start.params[player]
    for name in trained:
      same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(trained[name]),
                                                      jax.tree.leaves(initial[name])))
      assert same == (name in stage1_only), (player, name)
    counts = [int(s[0].count) for s in (result.state.opt_state[player]["stage0"],
                                        result.state.opt_state[player]["stage1"])]
    assert counts == [2, 0]


@pytest.mark.slow
def test_resume_across_the_stage_boundary_and_mid_fade_is_bit_exact(tmp_path):
  uninterrupted = jaxgen.fit(tiny(7))
  # Sessions ending at step 2 (the last step of stage 0) and step 3 (mid-fade).
  for steps in (2, 3, 7):
    resumed = jaxgen.fit(tiny(steps), workdir=tmp_path / "run", resume=steps > 2)
  assert_trees_equal(full_state(resumed), full_state(uninterrupted))


@pytest.mark.slow
def test_four_devices_and_pmap_give_the_one_device_run():
  one = jaxgen.fit(tiny(5, num_devices=1))
  for strategy in ("jit", "pmap"):
    four = jaxgen.fit(tiny(5, num_devices=4, strategy=strategy))
    assert_trees_close(jax.device_get(four.state.params), jax.device_get(one.state.params),
                       rtol=2e-4, atol=2e-5)
    assert four.metrics["train"]["loss"] == pytest.approx(one.metrics["train"]["loss"],
                                                          rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("overrides,data,fragment", [
    (["model.channels=(8, 8, 8)"], "digits", "one width per resolution [4, 8]"),
    (["model.objective=began"], "digits", "model.objective must be"),
    (["model.objective=dragan"], "digits", "model.objective must be"),
    (["data.batch_size=18"], "digits", "minibatch-stddev groups"),
    (["model.drift=0.1", "model.objective=wgan_gp"], "digits", "model.drift applies"),
    (["model.ema_decay=0.0"], "digits", "needs model.ema_decay > 0"),
    ([], "toy2d:ring8", "square images"),
])
def test_settings_that_do_not_fit_are_one_line_errors(overrides, data, fragment):
  assert fragment in config_error(tiny_config("pggan", data, overrides=overrides))


def test_mnist_sized_data_is_padded_to_32_and_grows_through_four_stages():
  spec = data_lib.DataSpec(name="mnist-like", shape=(28, 28, 1), num_classes=10,
                           num_train=16, num_test=16, is_image=True,
                           value_range=(-1.0, 1.0), binary=False)
  config = config_lib.get_config("pggan", "mnist")
  config.data.batch_size = 8
  method = progressive.make(config, spec)
  batch = {"x": -jnp.ones((8, 28, 28, 1))}
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  assert set(state.opt_state["generator"]) == {"stage0", "stage1", "stage2", "stage3"}
  assert jax.eval_shape(lambda s: method.sample(s, jax.random.PRNGKey(0), 3),
                        state).shape == (3, 28, 28, 1)
  nets = progressive.build_networks(config, spec)
  x = jnp.linspace(-1.0, 1.0, 28 * 28).reshape(1, 28, 28, 1)
  padded = np.asarray(nets.pad(x))
  assert padded.shape == (1, 32, 32, 1)
  np.testing.assert_array_equal(padded[0, 2:30, 2:30], np.asarray(x[0]))
  assert np.all(padded[0, :2] == -1.0) and np.all(padded[0, :, 30:] == -1.0)
  np.testing.assert_array_equal(np.asarray(nets.to_data(nets.pad(x), 3)), np.asarray(x))
  # D sees the reals at each stage's size, blended during a fade.
  assert nets.reals(x, 1, jnp.float32(1.0)).shape == (1, 8, 8, 1)
  coarse = nets.reals(x, 2, jnp.float32(0.0))
  np.testing.assert_allclose(np.asarray(coarse),
                             np.asarray(nets.reals(x, 1, jnp.float32(1.0))).repeat(2, 1)
                             .repeat(2, 2), rtol=1e-6, atol=1e-6)
