"""The denoising autoencoder as a generative model (Bengio et al. 2013): the chain's
transition, the sampler's documented loop, walk-back pairs, and a chain whose
stationary distribution is known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families import autoencoder
from jaxgen.families.autoencoder import losses


def _config(data="toy2d:ring8", steps=4, overrides=()):
  config = config_lib.get_config("dae", data)
  config_lib.apply_overrides(config, [
      "model.hidden=(16,)", "data.batch_size=32", "train.progress=False",
      "train.final_eval=False", "train.num_samples=0", *overrides])
  config.train.steps = steps
  return config


def _method(config):
  spec = data_lib.from_config(config.data).spec
  return registry.get(config.method).make(config, spec), spec


def _network_output(config, spec, params, x):
  """The decoder's raw output (logits or means) for inputs x, by hand."""
  m = autoencoder.settings.resolve(config, spec, "dae").model
  encoder = autoencoder.Encoder(m.architecture, m.code_dim, m.hidden, m.channels,
                                autoencoder.ACTIVATIONS[m.activation],
                                autoencoder.CODE_ACTIVATIONS[m.code_activation])
  decoder = autoencoder.Decoder(m.architecture, tuple(spec.shape), m.hidden, m.channels,
                                autoencoder.ACTIVATIONS[m.activation])
  code = encoder.apply({"params": params["encoder"]}, x)
  return decoder.apply({"params": params["decoder"]}, code)


# ------------------------------------------------------------- the transition


def test_reconstruction_sample_draws_from_the_loss_distribution():
  key = jax.random.PRNGKey(0)
  logits = jnp.linspace(-3, 3, 6)[None].repeat(20000, 0)           # [B, 6]
  draws, mean = losses.reconstruction_sample(key, output=logits, kind="bernoulli")
  np.testing.assert_array_equal(mean, jax.nn.sigmoid(logits))
  # Fixed key, by hand: x = 1[u < sigmoid(logit)] with the per-example uniforms.
  np.testing.assert_array_equal(draws, (rng.uniform(key, logits.shape)
                                        < jax.nn.sigmoid(logits)).astype(jnp.float32))
  np.testing.assert_allclose(draws.mean(0), jax.nn.sigmoid(logits[0]), atol=0.015)
  means = jnp.arange(6.0)[None].repeat(20000, 0)
  draws, mean = losses.reconstruction_sample(key, output=means, kind="mse", std=0.3)
  np.testing.assert_array_equal(mean, means)
  np.testing.assert_allclose(draws - means, 0.3 * rng.normal(key, means.shape), atol=1e-5)
  np.testing.assert_allclose(np.std(draws - means, axis=0), 0.3, rtol=0.03)


def test_chain_transition_is_corrupt_then_draw_by_hand():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 7)), jnp.float32)
  weight = jnp.asarray(np.random.default_rng(1).normal(size=(7, 7)), jnp.float32)
  key = jax.random.PRNGKey(3)
  keys = rng.split(key, "corruption", "reconstruction")
  corrupt = lambda k, v: losses.corrupt(k, v, kind="masking", rate=0.3)  # noqa: E731
  draw, mean = losses.chain_transition(key, x, corrupt_fn=corrupt,
                                       denoise_fn=lambda v: v @ weight, kind="bernoulli")
  x_tilde = jnp.where(rng.uniform(keys["corruption"], x.shape) < 0.3, 0.0, x)
  np.testing.assert_allclose(mean, jax.nn.sigmoid(x_tilde @ weight), rtol=1e-6)
  np.testing.assert_array_equal(
      draw, rng.uniform(keys["reconstruction"], x.shape) < jax.nn.sigmoid(x_tilde @ weight))


def test_gaussian_chain_transition_has_the_closed_form_moments():
  # x' = W (x + s_c e1) + s_r e2: mean W x, covariance s_c² W Wᵀ + s_r² I.
  weight = jnp.asarray([[1.0, 0.5], [0.0, 2.0]])
  x = jnp.broadcast_to(jnp.asarray([1.0, -1.0]), (40000, 2))
  corrupt = lambda k, v: losses.corrupt(k, v, kind="gaussian", noise_std=0.4)  # noqa: E731
  draw, _ = losses.chain_transition(jax.random.PRNGKey(5), x, corrupt_fn=corrupt,
                                    denoise_fn=lambda v: v @ weight.T, kind="mse", std=0.3)
  draw = np.asarray(draw, np.float64)
  np.testing.assert_allclose(draw.mean(0), weight @ jnp.asarray([1.0, -1.0]), atol=0.02)
  expected = 0.16 * weight @ weight.T + 0.09 * np.eye(2)
  np.testing.assert_allclose(np.cov(draw.T), expected, rtol=0.04, atol=0.01)


def test_sample_runs_the_documented_chain():
  config = _config(overrides=["model.sampler=chain", "model.chain_burn_in=3",
                              "model.chain_thinning=2", "model.chain_count=2",
                              "model.reconstruction_std=0.1"])
  method, spec = _method(config)
  batch = {"x": jnp.zeros((4, 2))}
  state = method.init(jax.random.PRNGKey(0), batch)
  m = autoencoder.settings.resolve(config, spec, "dae").model
  key = jax.random.PRNGKey(9)
  samples = np.asarray(method.sample(state, key, 5))
  # By hand: 2 chains from uniform noise; chain c's sample j after 3 + 2j transitions.
  low, high = spec.value_range
  keys = rng.split(key, "start", "chain")
  x = jax.random.uniform(keys["start"], (2, 2), minval=low, maxval=high)
  kept = []
  for t in range(3 + 2 * 2):
    x, _ = losses.chain_transition(
        jax.random.fold_in(keys["chain"], t), x,
        corrupt_fn=lambda k, v: losses.corrupt(k, v, kind=m.corruption, rate=m.corruption_rate,
                                               noise_std=m.noise_std, low=low, high=high),
        denoise_fn=lambda v: _network_output(config, spec, state.params, v),
        kind="mse", std=0.1)
    if t + 1 in (3, 5, 7):
      kept.append(np.asarray(x))
  by_hand = np.clip(np.stack(kept, 1).reshape(6, 2)[:5], low, high)
  np.testing.assert_allclose(samples, by_hand, rtol=1e-5, atol=1e-5)


def test_chain_sampler_needs_a_denoising_autoencoder():
  config = config_lib.get_config("ae")
  config.model.sampler = "chain"
  with pytest.raises(ConfigError, match="model.sampler='chain'.*dae"):
    _method(config)


# ----------------------------------------------------------------- walk-back


def test_walkback_inputs_follow_algorithm_2():
  x = jnp.arange(6.0).reshape(3, 2)
  add_one = lambda k, v: v + 1.0  # noqa: E731
  double = lambda k, v: 2.0 * v  # noqa: E731
  inputs, weights = losses.walkback_inputs(jax.random.PRNGKey(0), x, corrupt_fn=add_one,
                                           draw_fn=double, steps=2, probability=1.0)
  np.testing.assert_array_equal(inputs, jnp.stack([x + 1, 2 * x + 3, 4 * x + 7]))
  np.testing.assert_array_equal(weights, jnp.ones((3, 3)))
  _, weights = losses.walkback_inputs(jax.random.PRNGKey(0), x, corrupt_fn=add_one,
                                      draw_fn=double, steps=2, probability=0.0)
  np.testing.assert_array_equal(weights, [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
  # A geometric walk: pair j is kept with probability p^j, and only after pair j - 1.
  _, weights = losses.walkback_inputs(jax.random.PRNGKey(1), jnp.zeros((40000, 1)),
                                      corrupt_fn=add_one, draw_fn=double, steps=3,
                                      probability=0.5)
  np.testing.assert_allclose(weights.mean(1), [1, 0.5, 0.25, 0.125], atol=0.01)
  assert np.all(np.diff(np.asarray(weights), axis=0) <= 0)


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_walkback_changes_the_training_pairs_as_specified(probability):
  config = _config(overrides=["model.walkback_steps=2",
                              f"model.walkback_probability={probability}"])
  method, spec = _method(config)
  dataset = data_lib.from_config(config.data)
  batch = {"x": jnp.asarray(next(data_lib.train_iterator(dataset, 32, seed=0))["x"])}
  state = method.init(jax.random.PRNGKey(0), batch)
  _, metrics = jax.jit(method.train_step)(state, batch)
  m = autoencoder.settings.resolve(config, spec, "dae").model
  low, high = spec.value_range
  output = lambda v: _network_output(config, spec, state.params, v)  # noqa: E731
  inputs, weights = losses.walkback_inputs(
      state.keys("walkback")["walkback"], batch["x"],
      corrupt_fn=lambda k, v: losses.corrupt(k, v, kind=m.corruption, rate=m.corruption_rate,
                                             noise_std=m.noise_std, low=low, high=high),
      # The Gaussian P(X | x~) with the ML std estimate, 1 at initialisation.
      draw_fn=lambda k, v: losses.reconstruction_sample(k, output=output(v), kind="mse",
                                                        std=1.0)[0],
      steps=2, probability=probability)
  per_pair = jnp.stack([losses.reconstruction_loss(x=batch["x"], output=output(v), kind="mse")
                        for v in inputs])
  expected = jnp.sum(weights * per_pair) / jnp.sum(weights)
  np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
  assert float(metrics["walkback_pairs"]) == 1 + 2 * probability
  if probability == 1.0:   # the walk moved: later pairs' inputs differ from the first's
    assert float(jnp.abs(inputs[2] - inputs[0]).mean()) > 0.1


def test_without_walkback_the_step_trains_on_one_corruption_as_before():
  config = _config()
  method, spec = _method(config)
  dataset = data_lib.from_config(config.data)
  batch = {"x": jnp.asarray(next(data_lib.train_iterator(dataset, 32, seed=0))["x"])}
  state = method.init(jax.random.PRNGKey(0), batch)
  _, metrics = jax.jit(method.train_step)(state, batch)
  m = autoencoder.settings.resolve(config, spec, "dae").model
  x_tilde = losses.corrupt(state.keys("corruption")["corruption"], batch["x"],
                           kind=m.corruption, rate=m.corruption_rate, noise_std=m.noise_std,
                           low=spec.value_range[0], high=spec.value_range[1])
  expected = jnp.mean(losses.reconstruction_loss(
      x=batch["x"], output=_network_output(config, spec, state.params, x_tilde), kind="mse"))
  np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
  assert "walkback_pairs" not in metrics


# ------------------------------------------------- a known stationary distribution


@pytest.fixture(scope="module")
def gaussian_dae(tmp_path_factory):
  """A dae trained on an isotropic Gaussian N((1, -2), 0.5² I) with Gaussian corruption."""
  rng_np = np.random.default_rng(0)
  x = np.asarray([1.0, -2.0]) + 0.5 * rng_np.standard_normal((4000, 2))
  path = tmp_path_factory.mktemp("data") / "gauss.npz"
  np.savez(path, x_train=x[:3000].astype(np.float32), x_test=x[3000:].astype(np.float32))
  config = _config(f"npz:{path}", steps=800, overrides=[
      "model.loss=mse", "model.corruption=gaussian", "model.noise_std=0.5",
      "model.code_dim=2", "model.hidden=(32, 32)", "data.batch_size=128",
      "optim.learning_rate=0.003", "optim.schedule=cosine", "train.eval_every=0",
      "train.checkpoint_every=0"])
  return config, jaxgen.fit(config, workdir=tmp_path_factory.mktemp("dae") / "run")


@pytest.mark.slow
def test_chain_samples_have_the_data_moments(gaussian_dae):
  config, result = gaussian_dae
  # Gaussian data and corruption: P(X | x~) = N((x~ + mu) / 2, 0.125 I) exactly,
  # so the ML std of the reconstruction distribution is sqrt(0.125) = 0.354 and
  # the chain's stationary distribution is the data distribution.
  np.testing.assert_allclose(np.sqrt(result.state.model_state["reconstruction_mse"]),
                             np.sqrt(0.125), rtol=0.15)
  run = jaxgen.load(result.workdir)
  chain = jaxgen.sample(run, num=4000, seed=1, overrides={
      "model.sampler": "chain", "model.chain_burn_in": 50})
  assert chain.shape == (4000, 2)
  np.testing.assert_allclose(chain.mean(0), [1.0, -2.0], atol=0.08)
  np.testing.assert_allclose(chain.std(0), [0.5, 0.5], rtol=0.15)
  np.testing.assert_allclose(np.corrcoef(chain.T)[0, 1], 0.0, atol=0.08)
  # ...which is not where it started: uniform noise over the data's range.
  low, high = run.spec.value_range
  assert (high - low) / np.sqrt(12) > 0.8
