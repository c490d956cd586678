"""The config sections every generator/discriminator method shares, and their resolution.

A two-player method (gan and its kinds, pggan, srgan, pix2pix) has a `model`
section of its own, one optimizer section per player (`generator_optim`,
`discriminator_optim`, built alike) and, when it takes any adversarial
objective of `objectives.OBJECTIVES`, that objective's hyperparameters as
`model` keys. This module builds those sections and resolves them:

  sections = two_player.config_sections(model, data=..., train=...)  # default_config
  hyper, m = two_player.resolve_model(ModelSection, config)          # resolve
  g_optim, d_optim = two_player.resolve_optimizers(config, entry.optim)

An optimizer section either leaves every key None, so that the objective's
published values (or the family's) fill it when the method is made, or holds
core.optim's section with the family's published values (pix2pix).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.core import settings as core_settings
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import objectives

PLAYERS = ("generator", "discriminator")
OPTIMIZER_SECTIONS = tuple(f"{player}_optim" for player in PLAYERS)


@dataclasses.dataclass(frozen=True)
class OptimSection:
  """A `*_optim` section; None takes the objective's (then core.optim's) value."""

  name: str | None = field(choices=optim.OPTIMIZERS, default=None)
  learning_rate: float | None = field(minimum=0.0, exclusive_minimum=True, default=None)
  b1: float | None = field(minimum=0.0, maximum=1.0, exclusive_maximum=True, default=None)
  b2: float | None = field(minimum=0.0, maximum=1.0, exclusive_maximum=True, default=None)
  eps: float | None = field(minimum=0.0, exclusive_minimum=True, default=None)
  momentum: float | None = field(minimum=0.0, maximum=1.0, exclusive_maximum=True,
                                 default=None)
  decay: float | None = field(minimum=0.0, maximum=1.0, exclusive_maximum=True,
                              default=None)
  weight_decay: float | None = field(minimum=0.0, default=None)
  schedule: str | None = field(choices=optim.SCHEDULES, default=None)
  warmup_steps: int | None = field(minimum=0, default=None)
  decay_steps: int | None = field(minimum=0, default=None)   # 0: the run's steps
  grad_clip_norm: float | None = field(minimum=0.0, default=None)  # 0: off


def optimizer_section(published: Mapping[str, Any] | None = None
                      ) -> ml_collections.ConfigDict:
  """One player's optimizer section.

  published=None: every key of core.optim's section None (filled from the
  objective's values by `resolve_optimizers`); otherwise core.optim's section
  with these values, e.g. {"learning_rate": 2e-4, "b1": 0.5}.
  """
  if published is None:
    return ml_collections.ConfigDict(dict.fromkeys(optim.default_config()))
  return optim.default_config(**published)


def config_sections(model: Mapping[str, Any], *, data: Mapping[str, Any], steps: int,
                    every: int = 1000, optimizer: Mapping[str, Any] | None = None,
                    objective_keys: bool = True,
                    extra: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> ml_collections.ConfigDict:
  """A two-player method's config sections: model, `extra` (e.g. tricks), one
  `optimizer_section(optimizer)` per player, data, and train (`steps`, with an
  evaluation, a sample grid and a checkpoint `every` so many steps), in that order.

  With `objective_keys`, `model` gets every objective hyperparameter
  (`objectives.hyperparameter_names()`) as a key whose None means "the chosen
  objective's published value".
  """
  model = dict(model)
  if objective_keys:
    model.update(dict.fromkeys(objectives.hyperparameter_names()))
  sections: dict[str, Any] = dict(model=model, **dict(extra or {}))
  for name in OPTIMIZER_SECTIONS:
    sections[name] = optimizer_section(optimizer)
  sections.update(data=dict(data), train=dict(steps=steps, eval_every=every,
                                              sample_every=every, checkpoint_every=every))
  return ml_collections.ConfigDict(sections)


def objective_hyperparameters(objective: str, model: Any) -> dict[str, Any]:
  """The objective's hyperparameters: typed, range-checked, defaults filled.

  A hyperparameter set for an objective that does not read it is refused.
  """
  entry = objectives.get(objective)
  for key in objectives.hyperparameter_names():
    if model.get(key) is not None and key not in entry.hyperparameters:
      readers = [n for n, o in objectives.OBJECTIVES.items() if key in o.hyperparameters]
      raise ConfigError(f"model.{key} applies to objective {choices(readers)}, not "
                        f"{objective!r}; remove it or change model.objective")
  spec = dataclasses.make_dataclass("Hyperparameters", [
      (name, h.type, field(default=h.default, minimum=h.minimum, maximum=h.maximum,
                           exclusive_minimum=h.exclusive_minimum, choices=h.choices))
      for name, h in entry.hyperparameters.items()], frozen=True)
  given = {k: model.get(k) for k in entry.hyperparameters if model.get(k) is not None}
  values = dataclasses.asdict(core_settings.resolve(spec, given, "model"))
  if entry.check is not None:
    entry.check(values, frozenset(given))
  return values


def resolve_model(section_type: type, config: ml_collections.ConfigDict
                  ) -> tuple[dict[str, Any], Any]:
  """(the objective's hyperparameters, `config.model` as `section_type`).

  `section_type` declares the model keys but the objective hyperparameters,
  which `objective_hyperparameters` resolves for `config.model.objective`.
  """
  hyper = objective_hyperparameters(config.model.objective, config.model)
  model = core_settings.resolve(section_type, config.model, "model",
                                ignore=objectives.hyperparameter_names())
  return hyper, model


def resolve_optimizer(section: Any, published: Mapping[str, Any], name: str
                      ) -> ml_collections.ConfigDict:
  """core.optim's defaults, then the `published` ones, then the user's values."""
  given = core_settings.resolve(OptimSection, section, name)
  cfg = optim.default_config()
  cfg.update(dict(published))
  cfg.update({k: v for k, v in dataclasses.asdict(given).items() if v is not None})
  return cfg


def resolve_optimizers(config: ml_collections.ConfigDict, published: Mapping[str, Any]
                       ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """(generator's, discriminator's) optimizer sections, resolved alike."""
  generator, discriminator = (resolve_optimizer(config[name], published, name)
                              for name in OPTIMIZER_SECTIONS)
  return generator, discriminator
