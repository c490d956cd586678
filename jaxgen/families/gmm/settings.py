"""Gaussian-mixture configs: the `model` section's defaults and its frozen settings.

`make` resolves `config.model` once into `ModelSettings` (typed and
range-checked by `jaxgen.core.settings`); the EM steps read only these.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
EM_MODES = ("batch", "stepwise")
INITS = ("kmeans++", "random")


def default_config(data: str = "toy2d:grid25") -> ml_collections.ConfigDict:
  """Defaults: exact EM over the whole training set (one batch) for 100 iterations.

  On toy2d the training set is 10,000 points, all in one batch, so one train
  step is one EM iteration (Dempster et al. 1977). Other data: set
  `data.batch_size` to the training-set size for exact EM, or use
  `model.em='stepwise'` with minibatches.
  """
  vectors = data.startswith("toy2d:")
  sections = dict(
      model=dict(
          num_components=25 if data == "toy2d:grid25" else 10,   # K
          covariance_type="full",  # "full", "diag", "tied" or "spherical" (as sklearn)
          reg_covar=1e-6,          # added to every covariance's diagonal (sklearn's default)
          # "batch": one step = one EM iteration over the batch (exact EM when the
          # batch is the training set); "stepwise": online EM on minibatches
          # (Cappé & Moulines 2009; Liang & Klein 2009)
          em="batch",
          # stepwise EM's step size η_t = (t + offset)^(-power), power in (0.5, 1]
          # (Liang & Klein 2009 use offset 2 and power 0.5-1)
          step_size_power=0.7,
          step_size_offset=2.0,
          init="kmeans++",         # k-means++ over the whole training split, or "random" points
          kmeans_iterations=10,    # Lloyd iterations after the seeding (0: seeding only)
      ),
      train=dict(steps=100, log_every=10, eval_every=0, sample_every=0,
                 checkpoint_every=50),
  )
  if vectors:
    sections["data"] = dict(num_examples=10_000, batch_size=10_000)
  else:
    sections["data"] = dict(batch_size=1438)   # digits: the 1,438 training images
  return ml_collections.ConfigDict(sections)


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `default_config`)."""

  num_components: int = field(minimum=1)
  covariance_type: str = field(choices=COVARIANCE_TYPES)
  reg_covar: float = field(minimum=0.0)
  em: str = field(choices=EM_MODES)
  step_size_power: float = field(minimum=0.5, maximum=1.0, exclusive_minimum=True)
  step_size_offset: float = field(minimum=1.0)
  init: str = field(choices=INITS)
  kmeans_iterations: int = field(minimum=0)


def resolve(section: ml_collections.ConfigDict) -> ModelSettings:
  """The frozen settings of a `model` section."""
  return settings_lib.resolve(ModelSettings, section, "model")
