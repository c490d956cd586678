"""PhaseConvTranspose against the oracle nn.ConvTranspose, and depth_to_space."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn import PhaseConvTranspose, depth_to_space

ATOL = 1e-5

# Everything runs under jax.jit with numpy-made inputs: eager op-by-op dispatch
# compiles every primitive for every new shape, which costs seconds per case.


def _pair(kernel_size, strides, padding="SAME", **kwargs):
  """The oracle and the phase module with identical settings."""
  settings = dict(kernel_size=kernel_size, strides=strides, padding=padding,
                  **kwargs)
  return nn.ConvTranspose(**settings), PhaseConvTranspose(**settings)


def _inputs_and_params(x_shape, kernel_size, features, seed=0, use_bias=True):
  """Random x and a ConvTranspose-shaped param tree with a non-zero bias."""
  rng = np.random.default_rng(seed)
  kernel_size = (kernel_size,) if isinstance(kernel_size, int) else kernel_size
  x = rng.standard_normal(x_shape, dtype=np.float32)
  params = {"kernel": rng.standard_normal(
      tuple(kernel_size) + (x_shape[-1], features), dtype=np.float32)}
  if use_bias:
    # Non-zero, so a bias that is dropped or doubled shows.
    params["bias"] = rng.standard_normal((features,), dtype=np.float32)
  return x, {"params": params}


def _check_forward(x_shape, features, kernel_size, strides, padding="SAME"):
  """Both forms (one conv per phase; one combined conv) against the oracle."""
  reference, phase = _pair(kernel_size, strides, padding, features=features)
  combined = phase.clone(form="combined")
  x, params = _inputs_and_params(x_shape, kernel_size, features)
  expected, actual, actual_combined = jax.jit(
      lambda p, x: (reference.apply(p, x), phase.apply(p, x),
                    combined.apply(p, x)))(params, x)
  for out in (actual, actual_combined):
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize(
    "kernel_size, strides, x_shape, features",
    [
        ((4, 4), (2, 2), (2, 4, 4, 3), 5),  # DCGAN
        ((3, 3), (2, 2), (2, 5, 5, 3), 4),
        ((5, 5), (2, 2), (1, 4, 6, 2), 3),
        ((2, 2), (2, 2), (3, 3, 4, 2), 2),
        ((3, 3), (1, 1), (2, 5, 4, 3), 2),
        ((4, 4), (4, 4), (2, 3, 3, 2), 3),
        ((1, 1), (2, 2), (2, 3, 5, 4), 3),
        ((3, 5), (2, 1), (2, 5, 4, 2), 3),
        ((2, 3), (3, 2), (1, 4, 3, 3), 2),
        ((4, 4), (3, 3), (2, 3, 2, 1), 2),
        ((5, 2), (1, 3), (2, 3, 3, 2), 4),
        ((4, 4), (2, 2), (2, 1, 1, 3), 2),  # 1x1 input
        ((7, 7), (2, 2), (1, 7, 7, 2), 2),  # kernel wider than input
    ],
)
def test_forward_matches_conv_transpose_same(kernel_size, strides, x_shape,
                                             features):
  _check_forward(x_shape, features, kernel_size, strides)


@pytest.mark.parametrize(
    "padding, kernel_size, strides",
    [
        ("VALID", (4, 3), (2, 2)),
        ("VALID", (1, 2), (3, 2)),
        (1, (4, 4), (2, 2)),
        (((1, 2), (0, 3)), (3, 3), (2, 2)),
        (((-1, 0), (2, -1)), (4, 3), (2, 3)),
    ],
)
def test_forward_matches_conv_transpose_other_padding(padding, kernel_size,
                                                      strides):
  _check_forward((2, 5, 4, 3), 2, kernel_size, strides, padding)


@pytest.mark.parametrize(
    "x_shape, kernel_size, strides",
    [
        ((2, 7, 3), 4, 2),  # an int kernel_size is 1-d, as in flax
        ((2, 9, 3), (3,), (3,)),
        ((1, 3, 2, 3, 2), (3, 2, 4), (2, 1, 3)),
    ],
)
def test_forward_other_ranks(x_shape, kernel_size, strides):
  _check_forward(x_shape, 3, kernel_size, strides)


@pytest.mark.parametrize("x_shape", [(4, 4, 3), (2, 3, 4, 4, 3)])
def test_unbatched_and_multi_batch_inputs(x_shape):
  _check_forward(x_shape, 2, (4, 4), (2, 2))


@pytest.mark.parametrize(
    "kernel_size, strides, x_shape",
    [((4, 4), (2, 2), (2, 4, 4, 3)), ((3, 5), (2, 3), (2, 5, 3, 2))],
)
def test_gradients_match_conv_transpose(kernel_size, strides, x_shape):
  reference, phase = _pair(kernel_size, strides, features=3)
  x, params = _inputs_and_params(x_shape, kernel_size, 3, seed=1)
  output_shape = jax.eval_shape(reference.apply, params, x).shape
  target = np.random.default_rng(2).standard_normal(output_shape)

  def loss(module, params, x):
    # A random projection, so every output position carries its own weight.
    return jnp.sum(module.apply(params, x) * target)

  grads = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=0)
  expected = grads(reference, params, x)
  for module in (phase, phase.clone(form="combined")):
    actual = grads(module, params, x)
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, e, atol=1e-4, rtol=1e-5),
        actual, expected)


def test_params_are_interchangeable_with_conv_transpose():
  reference, phase = _pair((4, 3), (2, 2), features=5)
  x = jnp.zeros((1, 4, 4, 3))
  # An rbg key: threefry over N-d shapes takes seconds to compile on CPU.
  key = jax.random.key(2, impl="rbg")
  expected, actual = jax.jit(
      lambda key: (reference.init(key, x), phase.init(key, x)))(key)
  # Same names, shapes and (same default initializers) values.
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  assert actual["params"]["kernel"].shape == (4, 3, 3, 5)
  assert actual["params"]["bias"].shape == (5,)
  jax.tree.map(np.testing.assert_array_equal, actual, expected)


def test_no_bias():
  reference, phase = _pair((3, 3), (2, 2), features=2, use_bias=False)
  x, params = _inputs_and_params((2, 3, 3, 2), (3, 3), 2, use_bias=False)
  expected, actual = jax.jit(
      lambda p, x: (reference.apply(p, x), phase.apply(p, x)))(params, x)
  np.testing.assert_allclose(actual, expected, atol=ATOL)


def test_dtype_follows_flax():
  reference, phase = _pair((4, 4), (2, 2), features=2, dtype=jnp.bfloat16)
  x, params = _inputs_and_params((1, 3, 3, 2), (4, 4), 2)
  initial = jax.eval_shape(phase.init, jax.random.key(6), x)
  assert initial["params"]["kernel"].dtype == jnp.float32
  expected, actual = jax.jit(
      lambda p, x: (reference.apply(p, x), phase.apply(p, x)))(params, x)
  assert actual.dtype == expected.dtype == jnp.bfloat16
  np.testing.assert_allclose(actual.astype(np.float32),
                             expected.astype(np.float32), atol=0.05)


def test_jit_and_vmap_over_params():
  phase = PhaseConvTranspose(3, (4, 4), strides=(2, 2))
  x = np.random.default_rng(7).standard_normal((2, 3, 3, 2), dtype=np.float32)
  keys = jax.random.split(jax.random.key(8, impl="rbg"), 3)

  @jax.jit
  def run(keys, x):
    stacked = jax.vmap(lambda k: phase.init(k, x))(keys)
    batched = jax.vmap(phase.apply, in_axes=(0, None))(stacked, x)
    # The oracle, seed by seed, on the same params.
    looped = jnp.stack([phase.apply(jax.tree.map(lambda p: p[i], stacked), x)
                        for i in range(len(keys))])
    return batched, looped

  batched, looped = run(keys, x)
  assert batched.shape == (3, 2, 6, 6, 3)
  np.testing.assert_allclose(batched, looped, atol=ATOL)


@pytest.mark.parametrize("padding", ["CIRCULAR", "same", "REFLECT", ((1,),)])
def test_unsupported_padding_raises(padding):
  phase = PhaseConvTranspose(2, (3, 3), strides=(2, 2), padding=padding)
  with pytest.raises(ConfigError, match="padding"):
    jax.eval_shape(phase.init, jax.random.key(0), jnp.zeros((1, 3, 3, 1)))


def test_unknown_form_raises():
  phase = PhaseConvTranspose(2, (3, 3), strides=(2, 2), form="fft")
  with pytest.raises(ConfigError, match="form 'fft' is not one of"):
    jax.eval_shape(phase.init, jax.random.key(0), jnp.zeros((1, 3, 3, 1)))


def test_strides_rank_mismatch_raises():
  phase = PhaseConvTranspose(2, (3, 3), strides=(2, 2, 2))
  with pytest.raises(ConfigError, match="strides"):
    jax.eval_shape(phase.init, jax.random.key(0), jnp.zeros((1, 3, 3, 1)))


def test_depth_to_space_places_blocks():
  batch, height, width, channels, block = 2, 3, 2, 4, (2, 3)
  x = np.arange(batch * height * width * 6 * channels, dtype=np.float32)
  x = x.reshape(batch, height, width, 6 * channels)
  y = np.asarray(depth_to_space(jnp.asarray(x), block))
  assert y.shape == (batch, 6, 6, channels)
  for h in range(height):
    for w in range(width):
      for i in range(2):
        for j in range(3):
          block_index = i * 3 + j
          np.testing.assert_array_equal(
              y[:, h * 2 + i, w * 3 + j],
              x[:, h, w, block_index * channels:(block_index + 1) * channels])


def test_depth_to_space_int_block_and_bad_channels():
  x = jnp.ones((1, 2, 2, 8))
  assert depth_to_space(x, 2).shape == (1, 4, 4, 2)
  with pytest.raises(ValueError, match="divisible"):
    depth_to_space(jnp.ones((1, 2, 2, 6)), 2)
