"""The diffusion U-Net, its blocks, and the MLP denoiser."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn.denoiser import MLPDenoiser
from jaxgen.nn.unet import (AttentionBlock, ResBlock, UNet, UNetClassifier,
                            check_unet_shape, timestep_embedding, upsample_nearest)


def noisy(params, scale=0.1):
  """Parameters with noise added, so zero-initialised layers pass signals.

  The noise comes from numpy: nothing to compile.
  """
  generator = np.random.default_rng(0)
  return jax.tree.map(
      lambda x: x + scale * generator.standard_normal(x.shape).astype(np.float32), params)


def init(module, *args):
  """module.init as one compiled program (cheaper to compile than op by op)."""
  with jax.threefry_partitionable(False):
    return jax.jit(module.init)(jax.random.PRNGKey(1), *args)


def test_timestep_embedding_is_cosines_and_sines_of_geometric_frequencies():
  t = np.array([0.0, 3.0, 250.0])
  emb = np.asarray(timestep_embedding(jnp.asarray(t), 8))
  freqs = np.exp(-math.log(10_000.0) * np.arange(4) / 4)
  np.testing.assert_allclose(emb, np.concatenate([np.cos(t[:, None] * freqs),
                                                  np.sin(t[:, None] * freqs)], -1),
                             rtol=1e-5, atol=1e-5)
  assert timestep_embedding(jnp.asarray(t), 7).shape == (3, 7)


def test_upsample_nearest_repeats_each_pixel():
  x = jnp.arange(4.0).reshape(1, 2, 2, 1)
  np.testing.assert_array_equal(upsample_nearest(x)[0, :, :, 0],
                                [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])


def test_res_block_starts_as_the_identity():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 8))
  emb = jnp.ones((2, 16))
  block = ResBlock(8, groups=4)
  params = init(block, x, emb)
  np.testing.assert_allclose(jax.jit(block.apply)(params, x, emb), x)


def test_attention_is_equivariant_to_permuting_positions():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 8))
  block = AttentionBlock(heads=2, groups=4)
  params = noisy(init(block, x))
  perm = np.random.default_rng(0).permutation(16)
  flat = lambda a: a.reshape(2, 16, 8)  # noqa: E731
  apply = jax.jit(block.apply)
  y = flat(apply(params, x))
  y_perm = flat(apply(params, flat(x)[:, perm].reshape(2, 4, 4, 8)))
  np.testing.assert_allclose(y_perm, y[:, perm], rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(y - flat(x)).max()) > 1e-3  # it does something


@pytest.fixture(scope="module")
def unet():
  net = UNet(out_channels=2, channels=8, channel_mults=(1, 2), num_res_blocks=1,
             attention_resolutions=(4,), heads=2, groups=4, num_classes=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
  t = jnp.array([0, 5, 50, 500])
  params = init(net, x, t, jnp.zeros(4, jnp.int32))
  return net, params, x, t


def test_unet_shapes_zero_output_at_init_and_no_transposed_convs(unet):
  net, params, x, t = unet
  apply = jax.jit(net.apply)
  out = apply(params, x, t, jnp.zeros(4, jnp.int32))
  assert out.shape == (4, 8, 8, 2)
  np.testing.assert_array_equal(out, 0.0)  # zero-initialised last conv (Ho et al.)
  names = jax.tree_util.keystr(params)
  assert "ConvTranspose" not in names
  assert "down_1_0_attn" in str(jax.tree.map(lambda a: a.shape, params))
  # The class embedding has a row for "no label".
  assert params["params"]["embed"]["class"]["embedding"].shape == (4, 32)


def test_unet_output_depends_on_time_and_label(unet):
  net, params, x, t = unet
  params = noisy(params)
  apply = jax.jit(net.apply)
  base = apply(params, x, t, jnp.zeros(4, jnp.int32))
  other_label = apply(params, x, t, jnp.full(4, 3, jnp.int32))
  other_time = apply(params, x, t + 7, jnp.zeros(4, jnp.int32))
  assert float(jnp.abs(base - other_label).max()) > 1e-3
  assert float(jnp.abs(base - other_time).max()) > 1e-3
  # Examples do not interact (GroupNorm normalises each example alone).
  single = apply(params, x[:1], t[:1], jnp.zeros(1, jnp.int32))
  np.testing.assert_allclose(single, base[:1], rtol=1e-4, atol=1e-5)


def test_classifier_and_mlp_denoiser_shapes():
  x = jnp.zeros((3, 8, 8, 1))
  t = jnp.arange(3)
  clf = UNetClassifier(num_classes=10, channels=8, channel_mults=(1, 2), groups=4)
  assert jax.eval_shape(clf.init, jax.random.PRNGKey(0), x, t) is not None
  logits = jax.eval_shape(lambda: clf.apply(clf.init(jax.random.PRNGKey(0), x, t), x, t))
  assert logits.shape == (3, 10)
  mlp = MLPDenoiser(out_features=2, hidden=16, depth=2, num_classes=4)
  v = jnp.ones((3, 2))
  params = noisy(init(mlp, v, t, jnp.zeros(3, jnp.int32)))
  out = jax.jit(mlp.apply)(params, v, t, jnp.array([0, 1, 4]))
  assert out.shape == (3, 2)
  with pytest.raises(ValueError, match="needs labels"):
    mlp.apply(params, v, t)


def test_shapes_that_do_not_halve_are_one_line_errors():
  with pytest.raises(ConfigError, match="divisible by 8"):
    check_unet_shape((28, 28, 1), 4)
  with pytest.raises(ConfigError, match="needs image data"):
    check_unet_shape((2,), 1)
  check_unet_shape((28, 28, 1), 3)
