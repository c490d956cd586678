"""Shared helpers for tests: tiny configs and tree comparisons."""

import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError


def tiny_vae(steps=6, **train):
  """A small VAE on digits whose runs take about a second."""
  config = config_lib.get_config("vae")
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "data.batch_size=32",
      "optim.learning_rate=0.003", "train.progress=False", "train.final_eval=False"])
  config.train.steps = steps
  for key, value in train.items():
    config.train[key] = value
  return config


def tiny_config(method, data, base=(), overrides=(), steps=4, **train):
  """`method`'s config on `data` with `base` then `overrides` applied, train.steps
  = `steps` and `train` keys set (the tiny configs of the family tests)."""
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, list(base) + list(overrides))
  config.train.steps = steps
  for key, value in train.items():
    config.train[key] = value
  return config


def full_state(result):
  """Everything a resumed run must reproduce bit for bit, on the host."""
  s = result.state
  return jax.device_get((s.step, s.params, s.opt_state, s.model_state, s.key))


def config_error(config) -> str:
  """The ConfigError that making `config`'s method on its data raises; one line."""
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as error:
    registry.get(config.method).make(config, spec)
  assert "\n" not in str(error.value), str(error.value)
  return str(error.value)


def params_of(result, replica=None):
  params = result.state.params
  if replica is not None:
    params = jax.tree.map(lambda x: x[replica], params)
  return jax.tree.map(np.asarray, params)


def assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(name):
  """An experiment script (experiments/NAME.py) as a module."""
  spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  # Dataclasses (flax modules) defined in the script look their module up here.
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module
