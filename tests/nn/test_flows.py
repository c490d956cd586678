"""Oracle tests of the invertible layers and flows: inverses, log-dets against jax.jacobian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn import flows


def perturbed(variables, seed=1, scale=0.1):
  """Variables with noisy parameters (the couplings start as the identity otherwise)."""
  params = variables["params"]
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  leaves = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  return {**variables, "params": jax.tree.unflatten(tree, leaves)}


def setup_layer(layer, x, seed=1):
  variables = jax.jit(lambda k, x: layer.init(k, x, method=layer.forward))(
      jax.random.PRNGKey(0), x)
  return perturbed(variables, seed)


def jacobian_log_dets(module, variables, x):
  """log|det ∂forward/∂x| of each example of x by jax.jacobian (float64 slogdet): [B]."""
  def one(v):
    y, _ = module.apply(variables, v.reshape((1,) + x.shape[1:]), method=module.forward)
    return y.reshape(-1)
  jacobians = jax.jit(jax.vmap(jax.jacobian(one)))(x.reshape(x.shape[0], -1))
  signs, log_dets = np.linalg.slogdet(np.asarray(jacobians, np.float64))
  assert np.all(signs != 0)
  return log_dets


def forward(module, variables, x, **kwargs):
  return jax.jit(lambda v, x: module.apply(v, x, method=module.forward, **kwargs))(
      variables, x)


def inverse(module, variables, z):
  return jax.jit(lambda v, z: module.apply(v, z, method=module.inverse))(variables, z)


def image(shape=(2, 2, 4), batch=3, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (batch,) + shape)


LAYERS = [
    ("checkerboard", lambda: flows.AffineCoupling(mask="checkerboard", parity=0,
                                                  features=8, blocks=1), (2, 2, 4)),
    ("checkerboard_odd", lambda: flows.AffineCoupling(mask="checkerboard", parity=1,
                                                      features=8, blocks=1), (3, 3, 2)),
    ("channel", lambda: flows.AffineCoupling(mask="channel", parity=0, features=8,
                                             blocks=1), (2, 2, 4)),
    ("channel_odd", lambda: flows.AffineCoupling(mask="channel", parity=1, features=8,
                                                 blocks=2), (2, 2, 4)),
    ("alternate", lambda: flows.AffineCoupling(mask="alternate", parity=0,
                                               hidden=(16,)), (5,)),
    ("alternate_odd", lambda: flows.AffineCoupling(mask="alternate", parity=1,
                                                   hidden=(16, 16)), (2,)),
    ("batchnorm", lambda: flows.BatchNorm(momentum=0.9), (2, 2, 4)),
    ("batchnorm_vector", lambda: flows.BatchNorm(momentum=0.9), (3,)),
    ("actnorm", flows.ActNorm, (2, 2, 4)),
]


@pytest.mark.parametrize("name,make_layer,shape", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_every_layer_inverts_and_its_log_det_is_the_jacobians(name, make_layer, shape):
  layer = make_layer()
  x = image(shape)
  variables = setup_layer(layer, x)
  y, log_det = forward(layer, variables, x)
  if name.startswith(("checkerboard", "channel", "alternate")):
    assert np.abs(np.asarray(y - x)).max() > 1e-2  # not the identity
  np.testing.assert_allclose(inverse(layer, variables, y), x, atol=1e-5, rtol=0)
  np.testing.assert_allclose(log_det, jacobian_log_dets(layer, variables, x),
                             rtol=1e-5, atol=1e-4)


def test_coupling_leaves_the_masked_half_unchanged():
  layer = flows.AffineCoupling(mask="checkerboard", parity=1, features=8, blocks=1)
  x = image((4, 4, 1))
  y, _ = forward(layer, setup_layer(layer, x), x)
  b = np.asarray(flows.checkerboard_mask(4, 4, 1))
  np.testing.assert_array_equal(np.asarray(y) * b, np.asarray(x) * b)
  assert b.sum() == 8 and b[0, 0, 0] == 0 and b[0, 1, 0] == 1


def test_squeeze_is_a_permutation_and_unsqueeze_inverts_it():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  s = flows.squeeze(x)
  assert s.shape == (2, 2, 3, 12)
  np.testing.assert_array_equal(np.sort(np.asarray(s).ravel()), np.asarray(x).ravel())
  np.testing.assert_array_equal(flows.unsqueeze(s), x)
  # Each 2×2 square of one channel lands in the channels of one position.
  np.testing.assert_array_equal(s[0, 0, 0, 0::3], x[0, :2, :2, 0].ravel())


def test_batch_norm_train_mode_uses_and_averages_the_batch_statistics():
  layer = flows.BatchNorm(momentum=0.75, epsilon=1e-5)
  first = image((2, 2, 3), batch=8, seed=1)
  variables = layer.init(jax.random.PRNGKey(0), first, method=layer.forward)
  # Data-dependent init: the running averages start at the first batch's statistics.
  np.testing.assert_allclose(variables["batch_stats"]["mean"], first.mean((0, 1, 2)),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(variables["batch_stats"]["var"], first.var((0, 1, 2)),
                             rtol=1e-5)
  x = 3.0 + 2.0 * image((2, 2, 3), batch=8, seed=2)
  (y, log_det), updates = layer.apply(variables, x, train=True, method=layer.forward,
                                      mutable=["batch_stats"])
  mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
  np.testing.assert_allclose(y, (x - mean) / jnp.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(log_det, -2.0 * jnp.sum(jnp.log(var + 1e-5)) * jnp.ones(8),
                             rtol=1e-5)
  new = updates["batch_stats"]
  np.testing.assert_allclose(new["mean"], 0.75 * first.mean((0, 1, 2)) + 0.25 * mean,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new["var"], 0.75 * first.var((0, 1, 2)) + 0.25 * var,
                             rtol=1e-5)
  # Eval mode reads the running averages: no example depends on another.
  y_eval, _ = layer.apply({**variables, "batch_stats": new}, x, method=layer.forward)
  y_one, _ = layer.apply({**variables, "batch_stats": new}, x[:1], method=layer.forward)
  np.testing.assert_allclose(y_eval[:1], y_one, rtol=1e-6)


def test_act_norm_is_initialised_from_the_first_batch():
  x = 5.0 + 3.0 * image((3, 3, 2), batch=16)
  layer = flows.ActNorm()
  variables = layer.init(jax.random.PRNGKey(0), x, method=layer.forward)
  y, _ = layer.apply(variables, x, method=layer.forward)
  np.testing.assert_allclose(y.mean((0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.std((0, 1, 2)), 1.0, rtol=1e-4)


def realnvp(normalization, shape=(2, 2, 4), num_scales=2):
  return flows.RealNVP(shape=shape, num_scales=num_scales, features=8, blocks=1,
                       normalization=normalization, momentum=0.0)


# Each normalization once, one and two scales, odd and even channel counts
# (each case compiles a vmapped Jacobian of the whole flow: ~10-20 s).
FLOWS = [("batch", (4, 4, 1), 2), ("actnorm", (2, 2, 4), 2), ("none", (4, 4, 2), 1)]


@pytest.mark.slow
@pytest.mark.parametrize("normalization,shape,num_scales", FLOWS)
def test_realnvp_inverts_and_its_log_det_is_the_jacobians(normalization, shape, num_scales):
  flow = realnvp(normalization, shape, num_scales)
  x = image(shape, batch=4)
  variables = setup_layer(flow, x)
  z, log_det = forward(flow, variables, x)
  assert z.shape == (4, int(np.prod(shape)))
  np.testing.assert_allclose(inverse(flow, variables, z), x, atol=1e-5, rtol=0)
  np.testing.assert_allclose(log_det, jacobian_log_dets(flow, variables, x),
                             rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_realnvp_train_mode_inverts_with_the_batch_statistics():
  # momentum 0: the running averages become this batch's statistics, so the
  # inverse (which reads them) undoes the train-mode forward pass exactly.
  flow = realnvp("batch", (4, 4, 1))
  x = image((4, 4, 1), batch=6)
  variables = setup_layer(flow, image((4, 4, 1), batch=6, seed=9))
  (z, _), updates = forward(flow, variables, x, train=True, mutable=["batch_stats"])
  z_eval, _ = forward(flow, variables, x)
  assert np.abs(np.asarray(z - z_eval)).max() > 1e-3  # train mode differs from eval mode
  back = inverse(flow, {**variables, **updates}, z)
  np.testing.assert_allclose(back, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalization", flows.NORMALIZATIONS)
@pytest.mark.parametrize("dim", [2, 5])
def test_mlp_flow_inverts_and_its_log_det_is_the_jacobians(normalization, dim):
  flow = flows.MLPFlow(shape=(dim,), num_couplings=4, hidden=(16, 16),
                       normalization=normalization)
  x = image((dim,), batch=5)
  variables = setup_layer(flow, x)
  z, log_det = forward(flow, variables, x)
  np.testing.assert_allclose(inverse(flow, variables, z), x, atol=1e-5, rtol=0)
  np.testing.assert_allclose(log_det, jacobian_log_dets(flow, variables, x),
                             rtol=1e-5, atol=1e-4)


def test_multiscale_plan_follows_the_paper():
  plan = flows.multiscale_plan((8, 8, 1), 2)
  kinds = [k if k != "coupling" else arg[0] for k, arg in plan]
  assert kinds == ["checkerboard"] * 3 + ["squeeze"] + ["channel"] * 3 + ["factor"] + [
      "checkerboard"] * 4
  assert plan[7] == ("factor", 2)
  parities = [arg[1] for k, arg in plan if k == "coupling"]
  assert parities == [0, 1, 0, 0, 1, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("shape,scales,fragment", [
    ((6, 6, 1), 3, "divisible by 4"),
    ((8, 8, 1), 0, "num_scales must be >= 1"),
])
def test_shapes_that_do_not_fit_are_one_line_errors(shape, scales, fragment):
  with pytest.raises(ConfigError, match=fragment):
    flows.multiscale_plan(shape, scales)
