"""Typed settings: conversion, ranges, choices, unknown keys — one line each."""

import dataclasses

import ml_collections
import pytest

from jaxgen.core import settings
from jaxgen.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Model:
  latent_dim: int = settings.field(minimum=1)
  beta: float = settings.field(minimum=0.0)
  rate: float = settings.field(minimum=0.0, exclusive_minimum=True, maximum=1.0)
  likelihood: str = settings.field(choices=("bernoulli", "gaussian"))
  hidden: tuple[int, ...] = settings.field(minimum=1)
  clip: float | None = settings.field(default=None, minimum=0.0, exclusive_minimum=True)
  flag: bool = settings.field(default=False)


def section(**changes):
  values = dict(latent_dim=8, beta=1, rate=0.5, likelihood="gaussian", hidden=[64, 32])
  values.update(changes)
  return ml_collections.ConfigDict(values)


def test_resolves_and_converts():
  model = settings.resolve(Model, section(), "model")
  assert model == Model(latent_dim=8, beta=1.0, rate=0.5, likelihood="gaussian",
                        hidden=(64, 32), clip=None, flag=False)
  assert isinstance(model.beta, float)
  with pytest.raises(dataclasses.FrozenInstanceError):
    model.beta = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("changes, message", [
    (dict(latent_dim=0), "model.latent_dim must be >= 1, got 0"),
    (dict(latent_dim=2.5), "model.latent_dim must be an integer, got 2.5"),
    (dict(beta="abc"), "model.beta must be a number, got 'abc'"),
    (dict(beta=-1.0), "model.beta must be >= 0.0, got -1.0"),
    (dict(beta=float("nan")), "model.beta must be finite, got nan"),
    (dict(rate=0.0), "model.rate must be > 0.0, got 0.0"),
    (dict(rate=1.5), "model.rate must be <= 1.0, got 1.5"),
    (dict(likelihood="poisson"), "unknown model.likelihood 'poisson'; valid: "
                                 "'bernoulli' or 'gaussian'"),
    (dict(hidden=[64, 0]), "model.hidden[1] must be >= 1, got 0"),
    (dict(hidden=64), "model.hidden must be a tuple, got 64"),
    (dict(clip=-1.0), "model.clip must be > 0.0, got -1.0"),
    (dict(clip="abc"), "model.clip must be a number, got 'abc'"),
    (dict(flag=1), "model.flag must be true or false, got 1"),
    (dict(typo=3), "unknown key model.typo; valid:"),
])
def test_bad_values_are_one_line_errors(changes, message):
  with pytest.raises(ConfigError) as error:
    settings.resolve(Model, section(**changes), "model")
  assert str(error.value).startswith(message)
  assert "\n" not in str(error.value)


def test_missing_key_and_overrides():
  values = section()
  del values["beta"]
  with pytest.raises(ConfigError, match="missing key model.beta"):
    settings.resolve(Model, values, "model")
  model = settings.resolve(Model, values, "model", beta=2)
  assert model.beta == 2.0
  assert settings.resolve(Model, section(other=1), "model", ignore=("other",)).latent_dim == 8
