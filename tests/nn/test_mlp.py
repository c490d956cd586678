"""MLP."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn import MLP


def _apply(module, x, seed=0):
  """module(x) with params of init's shapes, filled from numpy (no threefry)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  params = jax.tree.map(
      lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes)
  return params, np.asarray(jax.jit(module.apply)(params, x))


X = np.random.default_rng(9).standard_normal((16, 3), dtype=np.float32)


def test_shapes_and_param_names():
  params, y = _apply(MLP((5, 4, 2)), X)
  assert y.shape == (16, 2)
  assert sorted(params["params"]) == ["dense_0", "dense_1", "dense_2"]
  assert params["params"]["dense_1"]["kernel"].shape == (5, 4)


def test_activate_final():
  _, linear_out = _apply(MLP((8, 4)), X)
  _, relu_out = _apply(MLP((8, 4), activate_final=True), X)
  assert linear_out.min() < 0  # the last layer is linear by default
  assert relu_out.min() >= 0
  np.testing.assert_allclose(relu_out, np.maximum(linear_out, 0), atol=1e-6)


def test_single_layer_is_dense():
  params, y = _apply(MLP((3,), activation=nn.tanh), X)
  dense = params["params"]["dense_0"]
  np.testing.assert_allclose(y, X @ dense["kernel"] + dense["bias"], atol=1e-5)


def test_layer_norm_on_activated_layers_only():
  module = MLP((8, 4), norm="layer", activation=lambda x: x,
               activate_final=False)
  params, _ = _apply(module, X)
  assert "norm_0" in params["params"] and "norm_1" not in params["params"]
  hidden = MLP((8,), norm="layer", activation=lambda x: x, activate_final=True)
  params, _ = _apply(hidden, X)
  # With LayerNorm's initial scale 1 and offset 0 each row is standardized.
  params["params"]["norm_0"] = {"scale": np.ones(8, np.float32),
                                "bias": np.zeros(8, np.float32)}
  y = np.asarray(jax.jit(hidden.apply)(params, X))
  np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=-1), 1, atol=1e-3)


def test_bad_norm_and_empty_features_raise():
  x = jax.ShapeDtypeStruct((2, 3), jnp.float32)
  with pytest.raises(ConfigError, match="'none' or 'layer'"):
    jax.eval_shape(MLP((4,), norm="batch").init, jax.random.key(0), x)
  with pytest.raises(ConfigError, match="at least one layer"):
    jax.eval_shape(MLP(()).init, jax.random.key(0), x)


def test_vmap_over_batch_and_params():
  module = MLP((4, 2))
  x = jax.ShapeDtypeStruct((5, 3), jnp.float32)
  params = jax.eval_shape(module.init, jax.random.key(0), x)
  stacked = jax.tree.map(lambda s: jax.ShapeDtypeStruct((3,) + s.shape, s.dtype),
                         params)
  out = jax.eval_shape(jax.vmap(module.apply, in_axes=(0, None)), stacked, x)
  assert out.shape == (3, 5, 2)
