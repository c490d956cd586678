"""SRResNet's sub-pixel upsampling against a NumPy reshape/transpose; shapes and ranges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import depth_to_space, srresnet


def _pixel_shuffle_numpy(x, r):
  """The sub-pixel shuffle (DCR order) as a NumPy reshape and transpose."""
  n, h, w, depth = x.shape
  c = depth // (r * r)
  return x.reshape(n, h, w, r, r, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * r, w * r, c)


@pytest.mark.parametrize("r,channels", [(2, 1), (2, 3), (3, 2), (4, 1)])
def test_depth_to_space_is_the_numpy_pixel_shuffle(r, channels):
  x = np.random.default_rng(r).normal(size=(2, 3, 5, r * r * channels)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(depth_to_space(jnp.asarray(x), r)),
                                _pixel_shuffle_numpy(x, r))


def test_sub_pixel_block_is_conv_then_shuffle_then_prelu():
  block = srresnet.SubPixelUpsample(features=3, factor=2)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 4, 5)), jnp.float32)
  variables = jax.jit(block.init)(jax.random.PRNGKey(0), x)
  conv = jax.lax.conv_general_dilated(
      x, variables["params"]["conv"]["kernel"], (1, 1), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC")) + variables["params"]["conv"]["bias"]
  shuffled = _pixel_shuffle_numpy(np.asarray(conv), 2)
  alpha = float(variables["params"]["prelu"]["negative_slope"])
  expected = np.where(shuffled >= 0, shuffled, alpha * shuffled)
  np.testing.assert_allclose(np.asarray(jax.jit(block.apply)(variables, x)), expected,
                             rtol=1e-5, atol=1e-5)
  assert alpha == pytest.approx(0.25)


def test_scale_factors():
  assert srresnet.scale_factors(2) == (2,)
  assert srresnet.scale_factors(4) == (2, 2)
  assert srresnet.scale_factors(3) == (3,)
  assert srresnet.scale_factors(8) == (2, 2, 2)
  with pytest.raises(ValueError):
    srresnet.scale_factors(5)


def test_generator_upsamples_into_the_range_and_discriminator_scores():
  scale, low = 4, 7   # MNIST's 7x7 -> 28x28 (the family's tests run 2x on digits)
  gen = srresnet.SRResNet(scale=scale, out_channels=1, value_range=(-1.0, 1.0),
                          features=4, blocks=1)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, low, low, 1)), jnp.float32)
  variables = jax.jit(lambda k, v: gen.init(k, v, train=False))(jax.random.PRNGKey(0), x)
  y, _ = jax.jit(lambda v, a: gen.apply(v, a, train=True, mutable=["batch_stats"]))(
      variables, x)
  assert y.shape == (3, low * scale, low * scale, 1)
  assert float(jnp.min(y)) >= -1 and float(jnp.max(y)) <= 1
  disc = srresnet.SRDiscriminator(value_range=(-1.0, 1.0), channels=(4, 8), hidden=8)
  d_vars = jax.eval_shape(lambda k, v: disc.init(k, v, train=False),
                          jax.random.PRNGKey(1), y)
  assert jax.eval_shape(lambda v, a: disc.apply(v, a, train=False), d_vars, y).shape == (3,)
  # The paper's first block has no stride-1 conv.
  assert "block0_conv0" not in d_vars["params"] and "block1_conv0" in d_vars["params"]
