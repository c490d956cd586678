"""Boltzmann-machine configs: the `model` and `ais` sections, and their frozen settings.

`make` resolves the sections once into `RbmSettings` / `StackSettings` /
`AisSettings` (typed and range-checked by `jaxgen.core.settings`); the energies,
steps and AIS read only these.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError

VISIBLE = ("bernoulli", "gaussian")
PROPAGATE = ("mean", "sample")
# Salakhutdinov & Murray 2008, section 4: 14,500 intermediate distributions,
# 500 uniformly spaced in [0, 0.5], 4,000 in [0.5, 0.9] and 10,000 in [0.9, 1].
PAPER_BOUNDARIES = (0.5, 0.9, 1.0)
PAPER_COUNTS = (500, 4000, 10000)


def ais_config(quick: bool = True) -> dict[str, Any]:
  """The `ais` section. `quick`: 1,450 temperatures (the paper's shape, a tenth of each)."""
  return dict(
      runs=100,                    # M parallel AIS runs (S&M 2008: 100)
      boundaries=PAPER_BOUNDARIES,  # β segments end here (the last must be 1)
      # temperatures per segment (S&M 2008: 500, 4000, 10000 = 14,500)
      counts=(50, 400, 1000) if quick else PAPER_COUNTS,
      chunk=500,                   # temperatures per compiled chunk (progress bar step)
      # base-rate model: visible biases log(p/(1-p)) of the training marginals p
      # (running mean over every training batch seen), p shrunk towards 1/2 by
      # this many pseudo-counts over the examples seen (keeps it off 0 and 1)
      base_rate_pseudocount=1.0,
      progress=True,
      # rbm only: also RAISE (reverse AIS from every test point, Burda et al. 2015),
      # a per-example evaluator over the same temperatures: `raise_log_likelihood`
      # (conservative) beside AIS's `log_likelihood` (optimistic). Costs
      # reverse_runs x temperatures Gibbs sweeps per test example.
      reverse=False,
      reverse_runs=1,              # reverse chains per test example
  )


def rbm_model_config() -> dict[str, Any]:
  """The `model` section of `rbm`: Hinton's practical guide (2010) where it gives a value."""
  return dict(
      visible="bernoulli",   # "bernoulli" or "gaussian" (unit variance: standardize the data)
      hidden=64,             # hidden units (S&M 2008 on MNIST: 500)
      cd_steps=1,            # k of CD-k (or Gibbs steps per update of the persistent chains)
      persistent=False,      # PCD (Tieleman 2008): the negative chains persist in model_state
      num_chains=100,        # persistent chains (PCD only)
      init_std=0.01,         # weights ~ N(0, init_std²) (guide, section 8)
      # visible biases log(p/(1-p)) of the first training batch (guide, section 8)
      # or zeros
      data_bias_init=True,
      weight_decay=1e-4,     # L2 on the weights only, as an optax transform (guide, section 10)
      sample_steps=1000,     # Gibbs steps of `sample` from noise
  )


def default_config_rbm(data: str = "digits") -> ml_collections.ConfigDict:
  """RBM defaults: binarized data, SGD with momentum, linearly decaying learning rate."""
  del data
  return ml_collections.ConfigDict(dict(
      model=rbm_model_config(),
      optim=optim.default_config("sgd", 0.02, momentum=0.9, schedule="linear"),
      ais=ais_config(),
      data=dict(binarize="static", flatten=True, batch_size=100),
      train=dict(steps=2000, eval_every=0, sample_every=0, checkpoint_every=1000,
                 num_samples=64),
  ))


def stack_model_config(kind: str) -> dict[str, Any]:
  """The `model` section of `dbn` / `dbm` (layer-wise stages, then DBM training)."""
  config = rbm_model_config()
  del config["visible"], config["hidden"]
  config.update(
      layers=(64, 64),         # hidden units per layer (S&M 2008 DBN: 500, 2000;
                               # S&H 2009 DBM: 500, 1000)
      stage_steps=0,           # steps per stage (0: the schedule horizon / number of stages)
      propagate="mean",        # data for the next layer: p(h|v) ("mean") or a sample
  )
  if kind == "dbn":
    config.update(bound_samples=1)   # q(h|v) samples per example of the lower bound
  else:
    config.update(mean_field_steps=10, persistent=True,   # S&H 2009: PCD for the DBM
                  # the DBM stage's learning rate as a multiple of optim's (pre-training's)
                  learning_rate_scale_dbm=1.0,
                  # Gibbs sweeps of the persistent chains (from noise) when the DBM
                  # stage starts, with the pre-trained weights
                  chain_burn_in=0)
  return config


def default_config_stack(kind: str) -> ml_collections.ConfigDict:
  """DBN / DBM defaults: as `rbm`, with the layers trained in stages."""
  return ml_collections.ConfigDict(dict(
      model=stack_model_config(kind),
      optim=optim.default_config("sgd", 0.02, momentum=0.9),
      ais=ais_config(),
      data=dict(binarize="static", flatten=True, batch_size=100),
      train=dict(steps=3000 if kind == "dbm" else 2000, eval_every=0, sample_every=0,
                 checkpoint_every=1000, num_samples=64),
  ))


@dataclasses.dataclass(frozen=True)
class RbmSettings:
  """The `model` section of `rbm`, typed and range-checked (see `rbm_model_config`)."""

  visible: str = field(choices=VISIBLE)
  hidden: int = field(minimum=1)
  cd_steps: int = field(minimum=1)
  persistent: bool = field()
  num_chains: int = field(minimum=1)
  init_std: float = field(minimum=0.0, exclusive_minimum=True)
  data_bias_init: bool = field()
  weight_decay: float = field(minimum=0.0)
  sample_steps: int = field(minimum=0)


@dataclasses.dataclass(frozen=True)
class StackSettings:
  """The `model` section of `dbn` and `dbm` (see `stack_model_config`)."""

  layers: tuple[int, ...] = field(minimum=1)
  cd_steps: int = field(minimum=1)
  persistent: bool = field()
  num_chains: int = field(minimum=1)
  init_std: float = field(minimum=0.0, exclusive_minimum=True)
  data_bias_init: bool = field()
  weight_decay: float = field(minimum=0.0)
  sample_steps: int = field(minimum=0)
  stage_steps: int = field(minimum=0)
  propagate: str = field(choices=PROPAGATE)
  bound_samples: int = field(default=1, minimum=1)
  mean_field_steps: int = field(default=10, minimum=1)
  learning_rate_scale_dbm: float = field(default=1.0, minimum=0.0, exclusive_minimum=True)
  chain_burn_in: int = field(default=0, minimum=0)


@dataclasses.dataclass(frozen=True)
class AisSettings:
  """The `ais` section (see `ais_config`)."""

  runs: int = field(minimum=1)
  boundaries: tuple[float, ...] = field(minimum=0.0, maximum=1.0, exclusive_minimum=True)
  counts: tuple[int, ...] = field(minimum=1)
  chunk: int = field(minimum=1)
  base_rate_pseudocount: float = field(minimum=0.0, exclusive_minimum=True)
  progress: bool = field()
  reverse: bool = field(default=False)
  reverse_runs: int = field(default=1, minimum=1)

  @property
  def num_temperatures(self) -> int:
    return sum(self.counts)


def resolve_ais(section: Any, method: str = "rbm") -> AisSettings:
  s = settings_lib.resolve(AisSettings, section, "ais")
  if s.reverse and method != "rbm":
    raise ConfigError(f"ais.reverse (RAISE) is implemented for rbm, not {method}")
  if len(s.boundaries) != len(s.counts):
    raise ConfigError(f"ais.boundaries and ais.counts must have the same length, got "
                      f"{len(s.boundaries)} and {len(s.counts)}")
  if list(s.boundaries) != sorted(set(s.boundaries)) or s.boundaries[-1] != 1.0:
    raise ConfigError(f"ais.boundaries must increase strictly and end at 1, got "
                      f"{s.boundaries}")
  return s


def check_data(spec: Any, visible: str, method: str) -> int:
  """The number of visible units; one-line errors for data the model cannot take."""
  import math  # pylint: disable=import-outside-toplevel
  dims = math.prod(spec.shape)
  if visible == "bernoulli":
    low, high = getattr(spec, "value_range", (0.0, 1.0)) or (0.0, 1.0)
    binary = bool(getattr(spec, "binary", False))
    if not binary and (low < 0.0 or high > 1.0):
      raise ConfigError(f"{method} with model.visible='bernoulli' needs data in [0, 1] "
                        f"(data.binarize='static' or 'dynamic'); dataset {spec.name!r} "
                        f"has values in [{low}, {high}] (or use model.visible='gaussian')")
  return dims


def resolve_rbm(section: Any) -> RbmSettings:
  return settings_lib.resolve(RbmSettings, section, "model")


def resolve_stack(section: Any) -> StackSettings:
  return settings_lib.resolve(StackSettings, section, "model")
