"""Shared optimizer helpers: one update path, one EMA convention."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.core import optim
from jaxgen.errors import ConfigError


def test_apply_gradients_is_optax_update():
  params = {"w": jnp.arange(3.0)}
  grads = {"w": jnp.array([1.0, -2.0, 0.5])}
  tx = optax.adamw(0.1, weight_decay=0.01)   # reads params: they must be passed
  state = tx.init(params)
  new_params, new_state = optim.apply_gradients(tx, grads, state, params)
  updates, expected_state = tx.update(grads, state, params)
  np.testing.assert_array_equal(new_params["w"], optax.apply_updates(params, updates)["w"])
  for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(expected_state)):
    np.testing.assert_array_equal(got, want)


def test_ema_is_the_warmed_up_average():
  """ema_n+1 = r_n ema_n + (1 - r_n) p, r_n = min(d, (1+n)/(10+n)), from a copy: a NumPy loop."""
  decay = 0.9
  tx = optim.ema(decay)
  values = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
  initial = np.ones(3, np.float32)
  state = tx.init({"w": jnp.asarray(initial)})
  np.testing.assert_array_equal(state.ema["w"], initial)       # the initial weights
  expected = initial.astype(np.float64)
  for n, p in enumerate(values):
    averaged, state = tx.update({"w": jnp.asarray(p)}, state)
    rate = min(decay, (1 + n) / (10 + n))
    expected = rate * expected + (1 - rate) * p
    np.testing.assert_allclose(averaged["w"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(averaged["w"], state.ema["w"])
  assert int(state.count) == 40
  # The warm-up reaches the decay at n = 80 for d = 0.9 and never exceeds it.
  assert min(decay, 81 / 90) == decay


def test_ema_init_is_a_copy():
  params = {"w": jnp.arange(3.0)}
  state = optim.ema(0.99).init(params)
  assert state.ema["w"] is not params["w"]
  np.testing.assert_array_equal(state.ema["w"], params["w"])


def test_ema_decay_range():
  with pytest.raises(ConfigError, match=r"EMA decay must be in \[0, 1\), got 1.0"):
    optim.ema(1.0)


@pytest.mark.parametrize("key, value, message", [
    ("grad_clip_norm", -1.0, "optim.grad_clip_norm must be >= 0.0, got -1.0"),
    ("eps", 0.0, "optim.eps must be > 0.0, got 0.0"),
    ("learning_rate", 0.0, "optim.learning_rate must be > 0.0, got 0.0"),
    ("learning_rate", float("inf"), "optim.learning_rate must be finite, got inf"),
    ("learning_rate", "abc", "optim.learning_rate must be a number, got 'abc'"),
    ("b1", 1.0, "optim.b1 must be < 1.0, got 1.0"),
    ("name", "adamax", "unknown optim.name 'adamax'; valid:"),
    ("warmup_steps", -5, "optim.warmup_steps must be >= 0, got -5"),
])
def test_optimizer_settings_that_would_break_training_are_refused(key, value, message):
  cfg = optim.default_config()
  cfg[key] = value if not isinstance(value, str) or key == "name" else 0.0
  if isinstance(value, str) and key != "name":
    cfg = dict(cfg.items(), **{key: value})
  with pytest.raises(ConfigError) as error:
    optim.make(cfg, 100)
  assert str(error.value).startswith(message)


def test_the_prefix_names_the_section():
  cfg = optim.default_config(grad_clip_norm=-1.0)
  with pytest.raises(ConfigError, match="generator_optim.grad_clip_norm must be >= 0.0"):
    optim.make(cfg, 100, prefix="generator_optim")


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_weight_decay_is_applied_by_every_optimizer(name):
  """No optimizer ignores `weight_decay`: adam, sgd and rmsprop add the L2
  term's gradient (their update is the one of g + wd·w); adamw and lamb decay
  in their own update."""
  params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3])}
  grads = {"w": jnp.array([0.1, 0.2, -0.3]), "b": jnp.array([-0.05])}

  def update(weight_decay, grads):
    cfg = optim.default_config(name, learning_rate=0.1, momentum=0.5,
                               weight_decay=weight_decay)
    tx = optim.make(cfg, total_steps=10)
    new, _ = optim.apply_gradients(tx, grads, tx.init(params), params)
    return new

  # A decay large enough to flip gradient signs: Adam's first step only
  # sees the signs.
  decayed, plain = update(1.0, grads), update(0.0, grads)
  assert not np.allclose(decayed["w"], plain["w"], rtol=0, atol=1e-7)
  if name in optim.COUPLED_WEIGHT_DECAY:
    l2 = jax.tree.map(lambda g, w: g + 1.0 * w, grads, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                 decayed, update(0.0, l2))
