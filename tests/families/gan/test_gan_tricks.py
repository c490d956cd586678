"""Training tricks: consensus optimization, clipping, smoothing, minibatch features."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import collectives
from jaxgen.families.gan import tricks


def test_consensus_on_the_bilinear_game_matches_the_closed_form():
  # L_G = θ φ, L_D = -θ φ: v = (φ, -θ), L = ½(θ² + φ²), ∇L = (θ, φ).
  theta, phi, gamma = 0.7, -1.3, 10.0

  def game(p):
    product = jnp.sum(p["generator"] * p["discriminator"])
    return product, -product, None

  params = {"generator": jnp.array([theta]), "discriminator": jnp.array([phi])}
  directions, metrics, _ = tricks.consensus_gradients(game, params, gamma)
  np.testing.assert_allclose(directions["generator"], [phi + gamma * theta], rtol=1e-6)
  np.testing.assert_allclose(directions["discriminator"], [-theta + gamma * phi], rtol=1e-6)
  np.testing.assert_allclose(metrics["consensus"], 0.5 * (theta**2 + phi**2), rtol=1e-6)
  # Plain simultaneous gradients rotate around the equilibrium; the consensus
  # term makes the step contract towards it: ‖p - h·d‖ < ‖p‖.
  h = 0.01
  after = np.array([theta, phi]) - h * np.array(
      [directions["generator"][0], directions["discriminator"][0]])
  assert np.linalg.norm(after) < np.hypot(theta, phi)


def test_consensus_on_a_nonlinear_game_matches_an_explicit_jacobian():
  key_g, key_d, key_x = jax.random.split(jax.random.PRNGKey(0), 3)
  params = {"generator": {"w": jax.random.normal(key_g, (3, 2)), "b": jnp.ones(2)},
            "discriminator": {"v": jax.random.normal(key_d, (2,))}}
  x = jax.random.normal(key_x, (5, 3))

  def game(p):
    fake = jnp.tanh(x @ p["generator"]["w"] + p["generator"]["b"])
    scores = jnp.sin(fake @ p["discriminator"]["v"]) + fake[:, 0] ** 2
    loss_d = jnp.mean(jax.nn.softplus(scores))
    loss_g = jnp.mean(jax.nn.softplus(-scores))
    return loss_g, loss_d, {"mean_score": jnp.mean(scores)}

  gamma = 0.5
  directions, metrics, aux = jax.jit(
      lambda p: tricks.consensus_gradients(game, p, gamma))(params)

  # Explicit: flatten, v(p) = (∂L_G/∂θ, ∂L_D/∂φ), ∇(½‖v‖²) = J_vᵀ v.
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  n_g = jax.flatten_util.ravel_pytree(params["generator"])[0].size

  def field(flat):
    p = unravel(flat)
    g = jax.grad(lambda q: game({**p, "generator": q})[0])(p["generator"])
    d = jax.grad(lambda q: game({**p, "discriminator": q})[1])(p["discriminator"])
    # The same layout as `flat`: the field is a pytree shaped like params.
    return jax.flatten_util.ravel_pytree({"generator": g, "discriminator": d})[0]

  v, jacobian = jax.jit(lambda f: (field(f), jax.jacfwd(field)(f)))(flat)
  expected = v + gamma * jacobian.T @ v
  got = jax.flatten_util.ravel_pytree(directions)[0]
  assert got.shape == (flat.size,) and n_g == 8
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(metrics["consensus"], 0.5 * jnp.sum(v * v), rtol=1e-5)
  np.testing.assert_allclose(metrics["generator_loss"], game(params)[0], rtol=1e-6)
  np.testing.assert_allclose(aux["mean_score"], game(params)[2]["mean_score"], rtol=1e-6)


def test_weight_clipping_bounds_every_parameter():
  params = {"a": jnp.array([-3.0, -0.005, 0.0, 0.02]), "b": {"c": jnp.full((2, 2), 7.0)}}
  clipped = tricks.clip_weights(params, 0.01)
  np.testing.assert_array_equal(clipped["a"], np.array([-0.01, -0.005, 0.0, 0.01], np.float32))
  assert np.all(np.asarray(clipped["b"]["c"]) == np.float32(0.01))


def test_one_sided_label_smoothing_targets():
  assert tricks.one_sided_targets(smoothing=0.1) == pytest.approx((0.9, 0.0))
  assert tricks.one_sided_targets(smoothing=0.0) == (1.0, 0.0)
  with pytest.raises(ValueError, match="label smoothing"):
    tricks.one_sided_targets(smoothing=1.0)


@pytest.fixture(scope="module")
def minibatch_layer():
  layer = tricks.MinibatchDiscrimination(num_kernels=4, kernel_dim=3)
  h = jax.random.normal(jax.random.PRNGKey(0), (6, 5))
  variables = layer.init(jax.random.PRNGKey(1), h)
  return jax.jit(layer.apply), variables, h


def test_minibatch_discrimination_shape_and_formula(minibatch_layer):
  apply, variables, h = minibatch_layer
  out = np.asarray(apply(variables, h))
  assert out.shape == (6, 5 + 4)
  np.testing.assert_allclose(out[:, :5], h, rtol=1e-6)
  m = (np.asarray(h) @ np.asarray(variables["params"]["T"])).reshape(6, 4, 3)
  expected = np.zeros((6, 4))
  for i in range(6):
    for j in range(6):
      expected[i] += np.exp(-np.abs(m[i] - m[j]).sum(-1))
  np.testing.assert_allclose(out[:, 5:], expected / 6, rtol=1e-5)


def test_minibatch_discrimination_is_permutation_equivariant(minibatch_layer):
  apply, variables, h = minibatch_layer
  perm = np.array([3, 0, 5, 1, 4, 2])
  out = np.asarray(apply(variables, h))
  np.testing.assert_allclose(np.asarray(apply(variables, h[perm])), out[perm], rtol=1e-5)
  # ... and not per-example: an example's features depend on its batch-mates.
  other = h.at[1:].set(h[1:] * 3.0)
  assert not np.allclose(np.asarray(apply(variables, other))[0], out[0])


def test_historical_average_is_the_running_mean_and_penalty_its_distance():
  history = [{"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 0.0])},
             {"w": jnp.array([-1.0, 4.0])}]
  average, count = history[0], jnp.ones((), jnp.int32)
  for params in history[1:]:
    average, count = tricks.historical_average_update(average, params, count)
  np.testing.assert_allclose(average["w"], np.mean([p["w"] for p in history], 0))
  assert int(count) == 3
  current = {"w": jnp.array([0.5, 0.5])}
  penalty = tricks.historical_averaging(params=current, average=average)
  np.testing.assert_allclose(penalty, np.sum((np.array([0.5, 0.5]) - average["w"]) ** 2))
  grad = jax.grad(lambda p: tricks.historical_averaging(params=p, average=average))(current)
  np.testing.assert_allclose(grad["w"], 2 * (np.array([0.5, 0.5]) - average["w"]), rtol=1e-6)


def test_feature_matching_matches_the_squared_mean_difference():
  real = jax.random.normal(jax.random.PRNGKey(0), (7, 3)) + 1.0
  fake = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
  value = tricks.feature_matching(real_features=real, fake_features=fake)
  np.testing.assert_allclose(value, np.sum((real.mean(0) - fake.mean(0)) ** 2), rtol=1e-5)
  # The generator matches fixed statistics: no gradient flows into the real side.
  g_real = jax.grad(lambda r: tricks.feature_matching(real_features=r, fake_features=fake))(real)
  assert np.all(np.asarray(g_real) == 0)


def test_global_batch_helpers_give_single_device_gradients_under_pmap():
  n = jax.device_count()
  assert n == 4
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
  w = jnp.array([0.5, -1.0, 2.0])
  target = jnp.array([1.0, 0.0, 0.0])

  def loss(w, x):
    features = jnp.tanh(x * w)
    return tricks.feature_matching(real_features=jnp.zeros_like(features) + target,
                                   fake_features=features)

  single_value, single_grad = jax.value_and_grad(loss)(w, x)

  def per_device(w, x):
    value, grad = jax.value_and_grad(loss)(w, x)
    gathered = tricks.gather_batch(x)
    return value, collectives.mean_over_devices(grad), gathered

  with collectives.pmap_axis("data"):
    value, grad, gathered = jax.pmap(per_device, axis_name="data",
                                     in_axes=(None, 0))(w, x.reshape(n, 2, 3))
  np.testing.assert_allclose(value[0], single_value, rtol=1e-5)
  np.testing.assert_allclose(grad[0], single_grad, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(gathered[2], x, rtol=0)
