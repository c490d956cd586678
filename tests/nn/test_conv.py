"""ConvEncoder, ConvDecoder and the image-shape check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn import ConvDecoder, ConvEncoder, check_image_shape

# Shapes come from jax.eval_shape and params from numpy: nothing here needs
# XLA to compile threefry, which is slow for N-d kernels.

LATENT = 6


def _random_params(module, *args, seed=0):
  """Params with the shapes `module.init` would make, filled from numpy."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(module.init, jax.random.key(0), *args)
  return jax.tree.map(
      lambda s: 0.3 * rng.standard_normal(s.shape).astype(s.dtype), shapes)


def _count(params):
  return sum(np.prod(p.shape) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("norm", ["none", "layer", "group"])
def test_decoder_and_encoder_shapes(shape, norm):
  z = jax.ShapeDtypeStruct((2, LATENT), jnp.float32)
  decoder = ConvDecoder(output_shape=shape, norm=norm)
  params = jax.eval_shape(decoder.init, jax.random.key(0), z)
  assert jax.eval_shape(decoder.apply, params, z).shape == (2,) + shape

  x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
  encoder = ConvEncoder(features=2 * LATENT, norm=norm)
  params = jax.eval_shape(encoder.init, jax.random.key(0), x)
  assert jax.eval_shape(encoder.apply, params, x).shape == (2, 2 * LATENT)


def test_encoder_accepts_odd_sizes():
  x = jax.ShapeDtypeStruct((3, 7, 5, 2), jnp.float32)
  encoder = ConvEncoder(features=4, channels=(8, 8, 8))
  params = jax.eval_shape(encoder.init, jax.random.key(0), x)
  assert jax.eval_shape(encoder.apply, params, x).shape == (3, 4)


def test_decoder_param_count():
  z = jax.ShapeDtypeStruct((1, LATENT), jnp.float32)
  decoder = ConvDecoder(output_shape=(28, 28, 1), channels=(64, 32))
  params = jax.eval_shape(decoder.init, jax.random.key(0), z)
  dense = LATENT * 7 * 7 * 64 + 7 * 7 * 64
  up_0 = 4 * 4 * 64 * 32 + 32
  up_1 = 4 * 4 * 32 * 32 + 32
  output = 3 * 3 * 32 * 1 + 1
  assert _count(params) == dense + up_0 + up_1 + output
  assert params["params"]["up_0"]["kernel"].shape == (4, 4, 64, 32)


def test_decoder_uses_phase_form_not_conv_transpose():
  decoder = ConvDecoder(output_shape=(8, 8, 1))
  z = jnp.zeros((1, LATENT))
  table = decoder.tabulate(jax.random.key(0), z, depth=1,
                           console_kwargs={"width": 200})
  assert "PhaseConvTranspose" in table
  assert "ConvTranspose" not in table.replace("PhaseConvTranspose", "")
  jaxpr = str(jax.make_jaxpr(decoder.apply)(
      _random_params(decoder, z), z))
  assert "conv_general_dilated" in jaxpr
  # lax.conv_transpose lowers to a dilated conv; the phase form never dilates.
  assert "lhs_dilation=(2, 2)" not in jaxpr


def test_decoder_runs_under_jit_and_vmap_over_params():
  decoder = ConvDecoder(output_shape=(8, 8, 1), channels=(8, 4), norm="group")
  z = np.random.default_rng(1).standard_normal((2, LATENT), dtype=np.float32)
  stacked = jax.tree.map(
      lambda *p: np.stack(p),
      *[_random_params(decoder, z, seed=seed) for seed in range(2)])

  @jax.jit
  def run(stacked, z):
    batched = jax.vmap(decoder.apply, in_axes=(0, None))(stacked, z)
    looped = jnp.stack([decoder.apply(jax.tree.map(lambda p: p[i], stacked), z)
                        for i in range(2)])
    return batched, looped

  batched, looped = run(stacked, z)
  assert batched.shape == (2, 2, 8, 8, 1)
  assert np.all(np.isfinite(batched))
  np.testing.assert_allclose(batched, looped, atol=1e-5)
  # Different seeds give different decoders.
  assert not np.allclose(batched[0], batched[1])


def test_check_image_shape_message():
  check_image_shape((8, 8, 1), 2)
  check_image_shape(np.array([28, 28, 1]), 2)  # numpy ints, as data specs hold
  with pytest.raises(ConfigError) as error:
    check_image_shape((7, 7, 1), 2)
  message = str(error.value)
  assert "\n" not in message
  assert "divisible by 4" in message and "(7, 7, 1)" in message
  assert "model.channels" in message
  with pytest.raises(ConfigError, match="divisible by 8"):
    check_image_shape((28, 28, 1), 3)
  with pytest.raises(ConfigError, match="height, width, channels"):
    check_image_shape((784,), 2)
  with pytest.raises(ConfigError, match="height, width, channels"):
    check_image_shape((28.0, 28, 1), 2)


def test_decoder_rejects_bad_shape_and_norm():
  z = jax.ShapeDtypeStruct((1, LATENT), jnp.float32)
  with pytest.raises(ConfigError, match="divisible by 8"):
    jax.eval_shape(ConvDecoder(output_shape=(28, 28, 1), channels=(8, 8, 8)).init,
                   jax.random.key(0), z)
  with pytest.raises(ConfigError, match="'none', 'layer' or 'group'"):
    jax.eval_shape(ConvDecoder(output_shape=(8, 8, 1), norm="batch").init,
                   jax.random.key(0), z)
  with pytest.raises(ConfigError, match="at least one upsampling level"):
    jax.eval_shape(ConvDecoder(output_shape=(8, 8, 1), channels=()).init,
                   jax.random.key(0), z)
  x = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
  with pytest.raises(ConfigError, match="norm 'batch'"):
    jax.eval_shape(ConvEncoder(features=2, norm="batch").init,
                   jax.random.key(0), x)
