"""DCGAN networks: shapes, the paper's architecture rules, virtual batch norm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn.dcgan import DCGANDiscriminator, DCGANGenerator, VirtualBatchNorm


def conv_dilations(jaxpr):
  """lhs_dilation of every convolution in a jaxpr (sub-jaxprs included)."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      found.append(tuple(eqn.params["lhs_dilation"]))
    for value in eqn.params.values():
      inner = getattr(value, "jaxpr", None)
      if inner is not None:
        found += conv_dilations(getattr(inner, "jaxpr", inner))
  return found


@pytest.fixture(scope="module")
def generator():
  gen = DCGANGenerator(output_shape=(12, 12, 1), channels=(16, 8))
  z = jax.random.normal(jax.random.PRNGKey(0), (5, 10))
  return gen, jax.jit(lambda k: gen.init(k, z, train=False))(jax.random.PRNGKey(1)), z


def test_generator_shapes_range_and_layers(generator):
  gen, variables, z = generator
  x, updates = jax.jit(lambda v: gen.apply(v, z, train=True, mutable=["batch_stats"]))(
      variables)
  assert x.shape == (5, 12, 12, 1)
  assert float(jnp.max(jnp.abs(x))) <= 1.0  # tanh output
  params = variables["params"]
  # One dense layer (the projection of z), two upsampling levels, BN after the
  # projection and the hidden level, none on the output.
  assert sorted(params) == ["norm_0", "norm_project", "project", "up_0", "up_1"]
  assert params["project"]["kernel"].shape == (10, 3 * 3 * 16)
  assert params["up_1"]["kernel"].shape == (4, 4, 8, 1)
  # No bias where batch norm follows (it would be removed); the output keeps one.
  assert "bias" not in params["project"] and "bias" not in params["up_0"]
  assert params["up_1"]["bias"].shape == (1,)
  assert set(updates["batch_stats"]) == {"norm_0", "norm_project"}
  # Upsampling is the phase decomposition: no input-dilated (transposed) conv.
  jaxpr = jax.make_jaxpr(lambda v: gen.apply(v, z, train=False))(variables).jaxpr
  dilations = conv_dilations(jaxpr)
  assert dilations and all(d == (1, 1) for d in dilations)


def test_generator_phase_upsampling_equals_conv_transpose(generator):
  gen, variables, z = generator

  class Reference(nn.Module):
    """The same network written with nn.ConvTranspose."""

    @nn.compact
    def __call__(self, z):
      x = nn.Dense(3 * 3 * 16, use_bias=False, name="project")(z).reshape(-1, 3, 3, 16)
      x = nn.relu(nn.BatchNorm(use_running_average=True, name="norm_project")(x))
      x = nn.ConvTranspose(8, (4, 4), (2, 2), "SAME", use_bias=False, name="up_0")(x)
      x = nn.relu(nn.BatchNorm(use_running_average=True, name="norm_0")(x))
      return jnp.tanh(nn.ConvTranspose(1, (4, 4), (2, 2), "SAME", name="up_1")(x))

  ours = jax.jit(lambda v: gen.apply(v, z, train=False))(variables)
  ref = jax.jit(lambda v: Reference().apply(v, z))(variables)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=2e-5)


def test_discriminator_shapes_norms_and_leaky_relu():
  disc = DCGANDiscriminator(channels=(8, 16), outputs=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 12, 12, 1))

  @jax.jit
  def init_and_apply(key):
    variables = disc.init(key, x, train=False)
    return variables, disc.apply(variables, x, train=True, mutable=["batch_stats"])[0]

  variables, (out, features) = init_and_apply(jax.random.PRNGKey(1))
  assert out.shape == (4, 3) and features.shape == (4, 3 * 3 * 16)
  # Strided convs, no BN on the first level, one dense output layer.
  assert sorted(variables["params"]) == ["conv_0", "conv_1", "norm_1", "output"]
  assert sorted(variables["batch_stats"]) == ["norm_1"]
  assert "bias" in variables["params"]["conv_0"] and "bias" not in variables["params"]["conv_1"]
  jaxpr = jax.make_jaxpr(lambda v: disc.apply(v, x, train=False))(variables).jaxpr
  names = {e.primitive.name for e in jaxpr.eqns}
  assert "reduce_window_max" not in names and "reduce_window_sum" not in names  # no pooling
  # LeakyReLU keeps a slope of 0.2 for negative inputs: features can be negative.
  assert float(jnp.min(features)) < 0
  (empty, feats), _ = jax.eval_shape(
      lambda: DCGANDiscriminator(channels=(8,), norm="layer", outputs=0).init_with_output(
          jax.random.PRNGKey(2), x, train=False))
  assert empty.shape == (4, 0) and feats.shape == (4, 6 * 6 * 8)


def test_bad_settings_are_one_line_errors():
  z = jnp.zeros((2, 3))
  with pytest.raises(ConfigError, match="norm 'group'"):
    DCGANGenerator((8, 8, 1), norm="group").init(jax.random.PRNGKey(0), z)
  with pytest.raises(ConfigError, match="divisible by 8"):
    DCGANGenerator((28, 28, 1), channels=(8, 8, 8)).init(jax.random.PRNGKey(0), z)


def test_virtual_batch_norm_matches_its_formula_and_ignores_the_batch():
  rng = np.random.default_rng(0)
  ref = rng.normal(size=(6, 3)).astype(np.float32) * 2 + 1
  x = rng.normal(size=(4, 3)).astype(np.float32)
  vbn = VirtualBatchNorm(num_reference=6)
  variables = vbn.init(jax.random.PRNGKey(0), jnp.concatenate([ref, x]))
  out = np.asarray(vbn.apply(variables, jnp.concatenate([ref, x])))
  # The reference rows: normalized by the reference batch's own statistics.
  np.testing.assert_allclose(out[:6], (ref - ref.mean(0)) / np.sqrt(ref.var(0) + 1e-5),
                             rtol=1e-4, atol=1e-5)
  # Every other row: by the reference batch plus itself, weights R/(R+1), 1/(R+1).
  for i in range(4):
    joint = np.concatenate([ref, x[i:i + 1]])
    expected = (x[i] - joint.mean(0)) / np.sqrt(joint.var(0) + 1e-5)
    np.testing.assert_allclose(out[6 + i], expected, rtol=1e-4, atol=1e-5)
  # Unlike batch norm, an example's output does not depend on its batch-mates.
  other = np.concatenate([x[:1], rng.normal(size=(7, 3)).astype(np.float32) * 10])
  alone = np.asarray(vbn.apply(variables, jnp.concatenate([ref, other])))
  np.testing.assert_allclose(alone[6], out[6], rtol=1e-5, atol=1e-6)


def test_virtual_batch_norm_in_the_generator_uses_spatial_statistics():
  gen = DCGANGenerator(output_shape=(8, 8, 1), channels=(4, 4), norm="virtual")
  z = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
  variables = jax.jit(lambda k: gen.init(k, z, num_reference=3))(jax.random.PRNGKey(1))
  assert "batch_stats" not in variables
  apply = jax.jit(lambda v, z: gen.apply(v, z, num_reference=3)[3:])
  a = apply(variables, z)
  z2 = z.at[4].set(100.0)  # change one non-reference example
  b = apply(variables, z2)
  np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b[0]), atol=1e-6)
  assert not np.allclose(np.asarray(a[1]), np.asarray(b[1]))
