"""Autoencoder settings: frozen, typed, and one-line errors for values that do
not exist or do not fit the data."""

import dataclasses

import pytest

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError
from jaxgen.families import autoencoder as ae


def small(method, data=None, steps=4, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.code_dim=8", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def test_settings_are_frozen_and_typed():
  config = small("dae")
  s = ae.settings.resolve(config, data_lib.from_config(config.data).spec, "dae")
  with pytest.raises(dataclasses.FrozenInstanceError):
    s.model.corruption_rate = 0.5  # type: ignore[misc]
  assert s.model.hidden == (32,) and s.shape == (8, 8, 1)
  assert (s.low, s.high) == (0.0, 1.0)


@pytest.mark.parametrize("name, data, overrides, fragment", [
    ("dae", None, ["model.corruption=blur"], "unknown model.corruption 'blur'"),
    ("dae", None, ["model.corruption_rate=1.5"], "corruption_rate"),
    ("sae", None, ["model.code_activation=relu"], "code_activation='sigmoid'"),
    ("sae", None, ["model.kl_weight=-1.0"], "kl_weight"),
    ("ae", "toy2d:ring8", ["model.architecture=conv"], "needs image data"),
    ("ae", None, ["data.scale=symmetric"], "model.loss='bernoulli' needs data in [0, 1]"),
    ("ae", None, ["model.code_dim=0"], "code_dim"),
    ("ae", None, ["model.hidden=()"], "model.hidden needs at least one width"),
    ("ae", None, ["model.l1_weight=-0.5"], "model.l1_weight must be >= 0.0"),
    ("sae", None, ["model.sparsity_target=1.5"], "model.sparsity_target must be <= 1.0"),
    ("dae", None, ["model.corruption=gaussian", "model.noise_std=0.0"], "noise_std"),
])
def test_settings_that_do_not_fit_are_one_line_errors(name, data, overrides, fragment):
  config = small(name, data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get(name).make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_model_key_is_refused():
  config = small("ae")
  with pytest.raises(AttributeError, match="colour"):
    config.model.colour = 1  # configs are locked: a typo cannot add a key
  with config.unlocked():    # and should one get in anyway, make refuses it
    config.model.colour = 1
  with pytest.raises(ConfigError, match="unknown key model.colour"):
    ae.make(config, data_lib.from_config(config.data).spec)
