"""VAE settings: defaults, the likelihood chosen from the data's value type,
and one-line errors for every value that does not exist or does not fit."""

import dataclasses

import jax
import ml_collections
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError
from jaxgen.families import vae


def small(method="vae", data=None, steps=4, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def _settings(config):
  spec = data_lib.from_config(config.data).spec
  return vae.settings.resolve(config, spec, config.method)


def test_settings_are_frozen_and_typed():
  s = _settings(small())
  assert dataclasses.is_dataclass(s) and dataclasses.is_dataclass(s.model)
  with pytest.raises(dataclasses.FrozenInstanceError):
    s.model.beta = 2.0  # type: ignore[misc]
  assert s.model.hidden == (32,) and isinstance(s.model.beta, float)
  assert s.shape == (8, 8, 1) and (s.low, s.high) == (0.0, 1.0)


@pytest.mark.parametrize("data, overrides, likelihood, source", [
    (None, [], "bernoulli", "binary"),            # digits, binarised dynamically
    ("toy2d:ring8", [], "gaussian", "continuous"),
    (None, ["data.binarize=none"], "discretized_logistic", "levels"),
    (None, ["data.binarize=none", "data.dequantize=True"], "gaussian", "continuous"),
    (None, ["model.likelihood=gaussian", "data.binarize=none"], "gaussian", "config"),
])
def test_default_likelihood_follows_the_datas_value_type(data, overrides, likelihood,
                                                         source):
  s = _settings(small(data=data, overrides=overrides))
  assert (s.model.likelihood, s.likelihood_source) == (likelihood, source)


def _npz(tmp_path, values):
  path = tmp_path / "vectors.npz"
  np.savez(path, x=values)
  return f"npz:{path}"


def test_continuous_npz_data_get_a_gaussian_and_are_not_binarised(tmp_path):
  """Float vectors in [0, 1] look binarisable, but the data are continuous."""
  values = np.random.default_rng(0).random((200, 3)).astype(np.float32)
  config = small(data=_npz(tmp_path, values), steps=3,
                 overrides=["data.batch_size=20", "train.eval_every=0"])
  assert config.data.binarize == "none" and config.model.likelihood == "auto"
  spec = data_lib.from_config(config.data).spec
  assert not spec.binary and spec.levels is None
  method = registry.get("vae").make(config, spec)
  assert method.eval_protocol["likelihood"].startswith("gaussian")
  assert "continuous" in method.eval_protocol["likelihood"]
  result = jaxgen.fit(config)
  assert np.isfinite(result.metrics["train"]["loss"])
  samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(0), 50))
  assert len(np.unique(samples)) > 2  # decoder means of continuous data, not bits
  # Asked for explicitly, a Bernoulli likelihood on the same data is allowed.
  explicit = small(data=config.data.name, overrides=["model.likelihood=bernoulli"])
  assert registry.get("vae").make(explicit, spec).eval_protocol["likelihood"] == "bernoulli"


def test_integer_npz_images_get_the_discretized_logistic(tmp_path):
  values = np.random.default_rng(0).integers(0, 256, (40, 4, 4, 1)).astype(np.uint8)
  s = _settings(small(data=_npz(tmp_path, values)))
  assert (s.model.likelihood, s.levels) == ("discretized_logistic", 256)


def test_toy2d_defaults_use_a_gaussian_decoder():
  config = small(data="toy2d:ring8", steps=3)
  assert config.data.binarize == "none"
  assert _settings(config).model.likelihood == "gaussian"
  result = jaxgen.fit(config)
  assert result.method.eval_protocol["likelihood"].startswith("gaussian")
  assert result.method.sample(result.state, jax.random.PRNGKey(0), 7).shape == (7, 2)
  assert 0 <= result.metrics["eval"]["modes_covered"] <= 8


@pytest.mark.parametrize("method, data, overrides, fragment", [
    ("vae", "toy2d:ring8", ["model.architecture=conv"], "needs image data"),
    ("vae", None, ["model.likelihood=bernoulli", "data.binarize=none",
                   "data.scale=symmetric"], "needs data in [0, 1]"),
    ("vae", None, ["model.likelihood=poisson"], "unknown model.likelihood 'poisson'"),
    ("vae", None, ["model.architecture=conv", "model.channels=(8, 8, 8, 8)"],
     "divisible by 16"),
    ("vae", None, ["model.latent_dim=0"], "model.latent_dim must be >= 1"),
    ("vae", None, ["model.hidden=()"], "model.hidden needs at least one width"),
    ("vae", None, ["model.beta=-1.0"], "model.beta must be >= 0.0"),
    ("vae", None, ["model.scale=0.0"], "model.scale must be > 0.0"),
    ("iwae", None, ["model.beta=2.0"], "no KL weight"),
    ("iwae", None, ["model.importance_samples=0"], "importance_samples"),
    ("cvae", None, ["data.labels=False"], "needs labelled data"),
    ("vae", None, ["model.likelihood=discretized_logistic"], "binarized"),
    ("vae", None, ["model.likelihood=discretized_logistic", "data.binarize=none",
                   "data.dequantize=True"], "dequantized"),
    ("vae", "toy2d:ring8", ["model.likelihood=discretized_logistic"], "continuous"),
    ("vae", None, ["model.activation=swish"], "unknown model.activation 'swish'"),
    ("vae", None, ["model.kl_warmup_steps=-1"], "kl_warmup_steps"),
    ("vae", None, ["model.eval_importance_samples=-5"], "eval_importance_samples"),
    ("vae", None, ["model.eval_chunk_size=0"], "eval_chunk_size"),
])
def test_settings_that_do_not_fit_are_one_line_errors(method, data, overrides, fragment):
  config = small(method, data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get(method).make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_key_or_a_wrong_type_is_refused():
  config = small()
  with pytest.raises(AttributeError, match="colour"):
    config.model.colour = 1  # configs are locked: a typo cannot add a key
  with config.unlocked():    # and should one get in anyway, make refuses it
    config.model.colour = 1
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError, match="unknown key model.colour"):
    vae.make(config, spec)
  loaded = small().to_dict()
  loaded["model"]["latent_dim"] = "8"  # a config file may hold any type
  config = ml_collections.ConfigDict(loaded)
  with pytest.raises(ConfigError, match="model.latent_dim must be an integer"):
    vae.make(config, spec)
