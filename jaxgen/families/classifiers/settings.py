"""Classifier configs (`gaussian_nb`, `logistic_regression`): defaults and frozen settings.

`make` resolves `config.model` once into frozen settings (typed and
range-checked by `jaxgen.core.settings`); the steps read only these.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from jaxgen.core import optim
from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field

# "batches": fit on the stream of training batches (the engine's usual data);
# "first_batch": fit on the first batch only, kept in model_state — with
# data.batch_size = m, a random m-example training set per seed, the same one
# for both classifiers (Ng & Jordan 2002's learning curves; see
# experiments/generative_vs_discriminative.py).
TRAIN_ON = ("batches", "first_batch")


def default_config_nb(data: str = "digits") -> ml_collections.ConfigDict:
  """Gaussian naive Bayes: one closed-form fit on the whole training set (one batch)."""
  del data
  return ml_collections.ConfigDict(dict(
      model=dict(
          var_smoothing=1e-9,   # ε = var_smoothing · max feature variance (sklearn's default)
          train_on="batches",
      ),
      # digits: the batch is the whole 1,438-image training split, so one step
      # is the exact fit; more steps refit the same set.
      data=dict(batch_size=1438),
      train=dict(steps=1, log_every=1, eval_every=0, sample_every=0, checkpoint_every=0,
                 num_samples=40),
  ))


def default_config_lr(data: str = "digits") -> ml_collections.ConfigDict:
  """Multinomial logistic regression with an L2 penalty, trained by Adam."""
  del data
  return ml_collections.ConfigDict(dict(
      model=dict(
          # sklearn's C: minimises C·Σ_i CE_i + ½‖W‖² (intercepts not penalised),
          # i.e. mean CE + ‖W‖² / (2·C·n) with n the examples fitted; 0 turns L2 off
          inverse_regularization=1.0,
          train_on="batches",
      ),
      optim=optim.default_config("adam", 0.01),
      train=dict(steps=2000, log_every=100, eval_every=500, sample_every=0,
                 checkpoint_every=1000, num_samples=0),
  ))


@dataclasses.dataclass(frozen=True)
class NaiveBayesSettings:
  """`gaussian_nb`'s `model` section, typed and range-checked."""

  var_smoothing: float = field(minimum=0.0)
  train_on: str = field(choices=TRAIN_ON)


@dataclasses.dataclass(frozen=True)
class LogisticSettings:
  """`logistic_regression`'s `model` section, typed and range-checked."""

  inverse_regularization: float = field(minimum=0.0)
  train_on: str = field(choices=TRAIN_ON)


def resolve_nb(section: ml_collections.ConfigDict) -> NaiveBayesSettings:
  return settings_lib.resolve(NaiveBayesSettings, section, "model")


def resolve_lr(section: ml_collections.ConfigDict) -> LogisticSettings:
  return settings_lib.resolve(LogisticSettings, section, "model")
