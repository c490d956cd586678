"""Projection onto a generator (jaxgen.core.projection): oracles and invariants.

The generator is a fixed random MLP (4 -> 32 -> 16, tanh): small enough that
every test compiles and runs in about a second.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.core import projection
from jaxgen.errors import ConfigError

LATENT = 4


def _generator():
  k1, k2 = jax.random.split(jax.random.PRNGKey(42))
  w1 = jax.random.normal(k1, (LATENT, 32)) / np.sqrt(LATENT)
  w2 = jax.random.normal(k2, (32, 16)) / np.sqrt(32)

  def decode(z):
    return jnp.tanh(jnp.tanh(z @ w1) @ w2).reshape(z.shape[0], 4, 4, 1)
  return decode


DECODE = _generator()


@functools.lru_cache(maxsize=None)
def _compiled(steps=200, restarts=3, learning_rate=0.1):
  return jax.jit(functools.partial(projection.project, DECODE, LATENT, steps=steps,
                                   restarts=restarts, learning_rate=learning_rate))


@functools.lru_cache(maxsize=None)
def _run(num=6, steps=200, restarts=3, seed=0):
  images = DECODE(jax.random.normal(jax.random.PRNGKey(7), (num, LATENT)))
  fn = _compiled(steps, restarts)
  return images, jax.tree.map(np.asarray, fn(images, jax.random.PRNGKey(seed)))


def test_reconstruction_loss_matches_formula():
  rng = np.random.default_rng(0)
  x, r = rng.normal(size=(3, 4, 4, 1)), rng.normal(size=(3, 4, 4, 1))
  z, fx, fr = rng.normal(size=(3, 5)), rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
  terms = projection.reconstruction_loss(
      x=jnp.asarray(x), reconstruction=jnp.asarray(r), z=jnp.asarray(z),
      features_x=jnp.asarray(fx), features_reconstruction=jnp.asarray(fr),
      feature_weight=0.3, prior_weight=0.1)
  pixel = ((x - r) ** 2).reshape(3, -1).mean(1)
  feature = ((fx - fr) ** 2).mean(1)
  prior = 0.5 * (z ** 2).mean(1)
  np.testing.assert_allclose(terms["pixel"], pixel, rtol=1e-6)
  np.testing.assert_allclose(terms["feature"], feature, rtol=1e-6)
  np.testing.assert_allclose(terms["total"], pixel + 0.3 * feature + 0.1 * prior, rtol=1e-6)


def test_projection_recovers_the_generating_code():
  images, (z, reconstructions, losses) = _run()
  # G(z*) matches G(z0): the generator's outputs lie in (-1, 1).
  np.testing.assert_allclose(reconstructions, images, atol=2e-3)
  np.testing.assert_allclose(np.asarray(DECODE(jnp.asarray(z))), reconstructions, atol=1e-5)
  assert np.all(losses["pixel"] < 1e-6)
  # The reported loss is the formula's value at the returned code.
  again = projection.reconstruction_loss(x=images, reconstruction=DECODE(jnp.asarray(z)),
                                         z=jnp.asarray(z))
  np.testing.assert_allclose(losses["total"], again["total"], rtol=1e-4, atol=1e-9)


def test_reported_loss_is_the_min_over_restarts():
  _, (_, _, losses) = _run()
  assert losses["per_restart"].shape == (3, 6)
  np.testing.assert_array_equal(losses["total"], losses["per_restart"].min(0))
  np.testing.assert_array_equal(losses["curve"][-1], losses["total"])
  np.testing.assert_array_equal(losses["history"][-1], losses["per_restart"])
  np.testing.assert_array_equal(losses["curve"], losses["history"].min(1))


def test_more_restarts_are_never_worse():
  totals = [_run(restarts=r)[1][2] for r in (1, 3)]
  # Restart r draws from fold_in(key, r): fewer restarts are a prefix of more.
  np.testing.assert_allclose(totals[1]["per_restart"][:1], totals[0]["per_restart"],
                             rtol=1e-4, atol=1e-9)
  for fewer, more in zip(totals, totals[1:]):
    assert np.all(more["total"] <= fewer["total"] * (1 + 1e-5) + 1e-9)


def test_curve_is_what_shorter_runs_report():
  _, (_, _, long) = _run()
  _, (_, _, short) = _run(steps=40)
  np.testing.assert_allclose(long["curve"][40], short["total"], rtol=1e-4, atol=1e-8)
  assert np.all(long["curve"][-1] <= long["curve"][0])


def test_deterministic_for_a_key_and_independent_of_other_images():
  images, first = _run()
  _, again = _run.__wrapped__()
  jax.tree.map(np.testing.assert_array_equal, first, again)
  _, other_key = _run(seed=1)
  assert not np.allclose(first[0], other_key[0])
  z_two, _, _ = _compiled()(images[:2], jax.random.PRNGKey(0))
  np.testing.assert_allclose(z_two, first[0][:2], rtol=1e-4, atol=1e-5)


def _trained_encoder(steps=200):
  module = projection.LatentEncoder(latent_dim=LATENT, hidden=(64,))
  params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))["params"]
  optimizer = optax.adam(5e-3)
  opt_state = optimizer.init(params)
  step = jax.jit(functools.partial(projection.encoder_train_step, module, DECODE, optimizer,
                                   batch_size=64))
  losses = []
  for t in range(steps):
    params, opt_state, loss = step(params, opt_state, jax.random.PRNGKey(1000 + t))
    losses.append(loss)
  return module, params, np.asarray(jnp.stack(losses))


def test_encoder_loss_matches_formula_and_encoder_init_helps_at_step_zero():
  z, z_hat = np.ones((2, 4)), np.array([[1, 2, 3, 4], [0, 0, 0, 0]], float)
  np.testing.assert_allclose(projection.encoder_loss(z=z, z_hat=z_hat), [14 / 4, 1.0])
  module, params, losses = _trained_encoder()
  assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
  # Held-out samples of G (codes never used in training); step 0 = the starting codes.
  images = DECODE(jax.random.normal(jax.random.PRNGKey(99), (32, LATENT)))
  init = module.apply({"params": params}, images)
  key = jax.random.PRNGKey(3)
  fn = jax.jit(functools.partial(projection.project, DECODE, LATENT, steps=0, restarts=2))
  z, _, plain = fn(images, key)
  _, _, encoded = fn(images, key, init=init)
  # Restart 0 starts at the encoder's codes; restart 1 is the same random start.
  assert np.mean(encoded["per_restart"][0]) < 0.5 * np.mean(plain["per_restart"][0])
  np.testing.assert_allclose(encoded["per_restart"][1], plain["per_restart"][1], rtol=1e-5)
  # With no steps, the kept codes are the best starting codes.
  starts = np.asarray(projection.starting_codes(key, 2, 32, LATENT))
  chosen = np.argmin(plain["per_restart"], axis=0)
  np.testing.assert_allclose(z, starts[chosen, np.arange(32)], rtol=1e-6)
  assert plain["curve"].shape == (1, 32)


def test_feature_loss_enters_with_its_weight():
  images = DECODE(jax.random.normal(jax.random.PRNGKey(7), (3, LATENT)))

  def features(x):
    return jnp.tanh(x.reshape(x.shape[0], -1)[:, :5] * 3.0)
  key = jax.random.PRNGKey(0)
  z, rec, losses = projection.project(DECODE, LATENT, images, key, steps=0, restarts=1,
                                      features=features, feature_weight=2.0)
  expected = np.mean((np.asarray(features(rec)) - np.asarray(features(images))) ** 2, -1)
  np.testing.assert_allclose(losses["feature"], expected, rtol=1e-5)
  np.testing.assert_allclose(losses["total"], losses["pixel"] + 2.0 * expected, rtol=1e-5)


@pytest.mark.parametrize("options,message", [
    ({"steps": -1}, "steps"), ({"restarts": 0}, "restarts"),
    ({"learning_rate": 0.0}, "learning_rate"), ({"feature_weight": -1.0}, "feature_weight"),
    ({"stepz": 3}, "unknown projection option"), ({"feature_weight": 1.0}, "feature network"),
])
def test_bad_options_are_one_line_errors(options, message):
  images = jnp.zeros((2, 4, 4, 1))
  with pytest.raises(ConfigError, match=message):
    projection.project(DECODE, LATENT, images, jax.random.PRNGKey(0), **options)
