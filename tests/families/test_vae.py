"""The VAE: training improves the test ELBO; every configuration runs; errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.families import vae


def small(data=None, steps=4, overrides=()):
  config = config_lib.get_config("vae", data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def test_test_elbo_improves_steadily_on_digits():
  config = small(steps=300, overrides=[
      "model.hidden=(64,)", "optim.learning_rate=0.003", "train.eval_every=100",
      "data.batch_size=64"])
  result = jaxgen.fit(config)
  evals = [r for r in result.history if r["split"] == "test"]
  assert [r["step"] for r in evals] == [100, 200, 300]
  elbos = [r["elbo"] for r in evals]
  assert elbos[0] < elbos[1] < elbos[2], elbos
  # An untrained decoder scores about 64·log 2 ≈ 44 nats per image.
  assert elbos[-1] > -34, elbos
  protocol = evals[-1]["protocol"]
  assert protocol["num_examples"] == result.spec.num_test
  assert protocol["split"] == "test" and "ELBO" in protocol["estimator"]
  for record in evals:
    assert record["kl"] >= 0
    assert record["elbo"] == pytest.approx(record["reconstruction"] - record["kl"])


@pytest.mark.parametrize("overrides", [
    ["model.architecture=conv"],
    ["model.likelihood=gaussian", "data.binarize=none"],
    ["model.likelihood=gaussian", "model.variance=learned", "data.binarize=none",
     "data.scale=symmetric"],
    ["model.sample_mode=sample"],
])
def test_configurations_train_and_sample(overrides):
  result = jaxgen.fit(small(overrides=overrides))
  assert np.isfinite(result.metrics["train"]["loss"])
  assert np.isfinite(result.metrics["eval"]["elbo"])
  samples = result.method.sample(result.state, jax.random.PRNGKey(0), 5)
  assert samples.shape == (5, 8, 8, 1)
  lo, hi = result.spec.value_range
  if "model.sample_mode=sample" not in overrides or "bernoulli" in str(overrides):
    assert float(samples.min()) >= lo - 1e-6 and float(samples.max()) <= hi + 1e-6


def test_sample_draws_are_binary_for_bernoulli():
  result = jaxgen.fit(small(overrides=["model.sample_mode=sample"]))
  samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(1), 8))
  assert set(np.unique(samples)) <= {0.0, 1.0}


def test_toy2d_defaults_use_a_gaussian_decoder():
  config = small("toy2d:ring8", steps=3)
  assert config.model.likelihood == "gaussian" and config.data.binarize == "none"
  result = jaxgen.fit(config)
  assert result.method.sample(result.state, jax.random.PRNGKey(0), 7).shape == (7, 2)
  assert 0 <= result.metrics["eval"]["modes_covered"] <= 8


def test_encode_decode_and_reconstruct_shapes():
  result = jaxgen.fit(small(steps=2))
  x = jnp.zeros((3, 8, 8, 1))
  mean, logvar = result.method.encode(result.state, x, None)
  assert mean.shape == logvar.shape == (3, 2)
  assert result.method.decode(result.state, mean).shape == (3, 8, 8, 1)
  assert result.method.reconstruct(result.state, {"x": x}, None).shape == (3, 8, 8, 1)


@pytest.mark.parametrize("data,overrides,fragment", [
    ("toy2d:ring8", ["model.architecture=conv"], "needs image data"),
    (None, ["model.likelihood=bernoulli", "data.binarize=none", "data.scale=symmetric"],
     "needs data in [0, 1]"),
    (None, ["model.likelihood=poisson"], "model.likelihood='poisson' is not one of"),
    (None, ["model.architecture=conv", "model.channels=(8, 8, 8, 8)"], "divisible by 16"),
    (None, ["model.latent_dim=0"], "latent_dim must be at least 1"),
])
def test_settings_that_do_not_fit_are_one_line_errors(data, overrides, fragment):
  config = small(data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    vae.make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)
