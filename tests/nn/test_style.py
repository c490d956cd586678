"""The style-based generator: mapping network, AdaIN, constant input, noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn.style import AdaIN, MappingNetwork, StyleGenerator, pixel_norm


@pytest.fixture(scope="module")
def style():
  gen = StyleGenerator(output_shape=(8, 8, 1), channels=(8, 4), style_dim=6,
                       mapping_layers=2)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
  variables = jax.jit(lambda k1, k2: gen.init({"params": k1, "noise": k2}, z))(
      jax.random.PRNGKey(1), jax.random.PRNGKey(2))
  apply = jax.jit(lambda v, k: gen.apply(v, z, rngs={"noise": k}))
  return gen, variables, z, apply


def test_shapes_constant_input_and_mapping(style):
  gen, variables, z, apply = style
  params = variables["params"]
  assert params["constant"].shape == (4, 4, 8)  # learned constant at 8 / 2
  assert sorted(params["mapping"]) == ["dense_0", "dense_1"]
  x = apply(variables, jax.random.PRNGKey(3))
  assert x.shape == (3, 8, 8, 1) and float(jnp.max(jnp.abs(x))) <= 1.0
  assert jax.eval_shape(lambda: MappingNetwork(7, 3).init_with_output(
      jax.random.PRNGKey(0), z)[0]).shape == (3, 7)


def test_per_layer_noise_changes_only_through_learned_strengths(style):
  _, variables, z, apply = style
  # Strengths start at zero (StyleGAN): the noise has no effect yet.
  a = apply(variables, jax.random.PRNGKey(3))
  b = apply(variables, jax.random.PRNGKey(4))
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
  bumped = jax.tree_util.tree_map_with_path(
      lambda path, v: v + 0.5 if "strength" in jax.tree_util.keystr(path) else v,
      variables)
  a = apply(bumped, jax.random.PRNGKey(3))
  b = apply(bumped, jax.random.PRNGKey(4))
  assert not np.allclose(np.asarray(a), np.asarray(b))
  quiet = StyleGenerator((8, 8, 1), (8, 4), style_dim=6, mapping_layers=2, noise=False)
  quiet_apply = jax.jit(lambda v: quiet.apply(v, z))  # no noise stream needed
  c, d = quiet_apply(bumped), quiet_apply(bumped)
  np.testing.assert_array_equal(np.asarray(c), np.asarray(d))


def test_adain_gives_each_channel_the_style_statistics():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 3)) * 5 + 2
  w = jax.random.normal(jax.random.PRNGKey(1), (2, 6))
  ada = AdaIN()
  kernel = jax.random.normal(jax.random.PRNGKey(3), (6, 6))
  bias = jax.random.normal(jax.random.PRNGKey(4), (6,))
  variables = {"params": {"style": {"kernel": kernel, "bias": bias}}}
  out = np.asarray(jax.jit(ada.apply)(variables, x, w))
  style = np.asarray(w @ kernel + bias)
  scale, shift = 1 + style[:, :3], style[:, 3:]
  np.testing.assert_allclose(out.mean(axis=(1, 2)), shift, atol=1e-4)
  np.testing.assert_allclose(out.std(axis=(1, 2)), np.abs(scale), rtol=1e-3)


def test_pixel_norm_and_errors():
  z = jnp.array([[3.0, 4.0]])
  np.testing.assert_allclose(np.asarray(pixel_norm(z)), [[3 / np.sqrt(12.5), 4 / np.sqrt(12.5)]],
                             rtol=1e-6)
  with pytest.raises(ConfigError, match="two resolution levels"):
    jax.eval_shape(lambda: StyleGenerator((8, 8, 1), channels=(8,)).init(
        jax.random.PRNGKey(0), z))
  with pytest.raises(ConfigError, match="batch normalization"):
    jax.eval_shape(lambda: StyleGenerator((8, 8, 1)).init(
        {"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(1)}, z,
        num_reference=2))
