"""GAN objectives as data: one table entry per objective.

An entry pairs the objective's two per-example losses (pure functions in
`losses`, signatures `(*, real, fake, **arguments)` and `(*, fake,
**arguments)`) with what the discriminator outputs, the paper's defaults
(optimizer for both players, critic steps, hyperparameters) and the names of
the values its losses read. The train step looks the entry up and never
branches on the objective's name. Adding an objective is one loss function
(or two) and one `register` call:

  def lsgan_generator(*, fake, c=1.0): ...           # in losses.py, tested alone
  register("lsgan", Objective(
      discriminator=losses.lsgan_discriminator, generator=losses.lsgan_generator,
      output="score", paper="Mao et al. 2017", optim=adam(2e-4, 0.5)))

A hyperparameter is a keyword of the loss plus a `Hyperparameter` in the
entry: it becomes the config key `model.<name>` (default None, meaning the
published value), typed and range-checked when the method is made and refused
for the other objectives. See docs/gans.md, "Adding an objective".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import losses

Array = jax.Array

# What the discriminator outputs per example, and how a score is read from it:
#   logit       a score head read as a Bernoulli logit (label smoothing applies)
#   score       a score head, unbounded (critic values, f-GAN's V)
#   mse_energy  an autoencoder discriminator; the energy is the per-value MSE
#   l1_energy   the same with the per-value mean absolute error (BEGAN)
OUTPUTS = ("logit", "score", "mse_energy", "l1_energy")
ENERGY_POWER = {"mse_energy": 2.0, "l1_energy": 1.0}
# Where a gradient penalty is taken (`penalty` of an entry), see step.py.
PENALTIES = ("interpolates", "dragan")
# Values every objective's losses may read besides their hyperparameters:
#   real_target  1 - tricks.label_smoothing (one-sided smoothing, logit outputs)
#   k            BEGAN's controller variable k_t, from model_state
STEP_VALUES = ("real_target", "k")


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
  """A model key only one objective reads: its published value, type and range."""

  default: Any
  type: type = float
  minimum: float | None = None
  maximum: float | None = None
  exclusive_minimum: bool = False
  choices: tuple[Any, ...] | None = None
  help: str = ""


@dataclasses.dataclass(frozen=True)
class Objective:
  """One GAN objective (see the module docstring)."""

  discriminator: Callable[..., Array]  # (*, real, fake, **arguments) -> [B]
  generator: Callable[..., Array]      # (*, fake, **arguments) -> [B]
  output: str                          # one of OUTPUTS
  paper: str
  optim: Mapping[str, Any]             # optimizer keys for both players
  n_critic: int = 1
  hyperparameters: Mapping[str, Hyperparameter] = dataclasses.field(default_factory=dict)
  # Names (hyperparameters or STEP_VALUES) each loss receives as keywords.
  discriminator_arguments: tuple[str, ...] = ()
  generator_arguments: tuple[str, ...] = ()
  penalty: str | None = None           # one of PENALTIES (weight: penalty_weight)
  controller: bool = False             # BEGAN's k_t (began_gamma, began_lambda_k)
  # check(values, given): raises a ConfigError for hyperparameters that do not
  # fit together (values: resolved; given: the keys the user set).
  check: Callable[[Mapping[str, Any], frozenset[str]], None] | None = None

  def __post_init__(self):
    if self.output not in OUTPUTS:
      raise ValueError(f"output {self.output!r} is not one of {OUTPUTS}")
    if self.penalty is not None and self.penalty not in PENALTIES:
      raise ValueError(f"penalty {self.penalty!r} is not one of {PENALTIES}")
    known = set(self.hyperparameters) | set(STEP_VALUES)
    for name in self.discriminator_arguments + self.generator_arguments:
      if name not in known:
        raise ValueError(f"argument {name!r} is neither a hyperparameter nor one of "
                         f"{STEP_VALUES}")

  @property
  def autoencoder(self) -> bool:
    """Whether the discriminator is an autoencoder (energy outputs)."""
    return self.output in ENERGY_POWER

  def discriminator_loss(self, real: Array, fake: Array,
                         values: Mapping[str, Any]) -> Array:
    """Per-example discriminator loss; `values` holds the arguments by name."""
    return self.discriminator(real=real, fake=fake,
                              **{k: values[k] for k in self.discriminator_arguments})

  def generator_loss(self, fake: Array, values: Mapping[str, Any]) -> Array:
    """Per-example generator loss."""
    return self.generator(fake=fake, **{k: values[k] for k in self.generator_arguments})


def adam(learning_rate: float, b1: float, b2: float = 0.999) -> dict[str, Any]:
  """An Adam optimizer section (for the table's `optim`)."""
  return dict(name="adam", learning_rate=learning_rate, b1=b1, b2=b2)


def _penalty_weight(default: float) -> Hyperparameter:
  return Hyperparameter(default, minimum=0.0, help="λ of the gradient penalty")


OBJECTIVES: dict[str, Objective] = {}


def register(name: str, objective: Objective) -> Objective:
  """Adds `objective` to the table under `name` (the `model.objective` value)."""
  if not name.isidentifier():
    raise ValueError(f"objective name {name!r} must be an identifier")
  OBJECTIVES[name] = objective
  return objective


def get(name: str) -> Objective:
  """The table entry of `name`, or a one-line ConfigError naming the choices."""
  if name not in OBJECTIVES:
    raise ConfigError(f"model.objective={name!r} is not one of {choices(tuple(OBJECTIVES))}")
  return OBJECTIVES[name]


def hyperparameter_names() -> tuple[str, ...]:
  """Every model key some objective reads (each defaults to None in configs)."""
  names: dict[str, None] = {}
  for objective in OBJECTIVES.values():
    names.update(dict.fromkeys(objective.hyperparameters))
  return tuple(names)


_CROSS_ENTROPY = dict(discriminator=losses.minimax_discriminator, output="logit",
                      discriminator_arguments=("real_target",))

register("non_saturating", Objective(
    **_CROSS_ENTROPY, generator=losses.non_saturating_generator,
    paper="Goodfellow et al. 2014 (-log D(G(z))); Adam of Radford et al. 2016",
    optim=adam(2e-4, 0.5)))
register("minimax", Objective(
    **_CROSS_ENTROPY, generator=losses.minimax_generator,
    paper="Goodfellow et al. 2014 (saturating log(1 - D(G(z)))); Adam of "
          "Radford et al. 2016",
    optim=adam(2e-4, 0.5)))
register("lsgan", Objective(
    discriminator=losses.lsgan_discriminator, generator=losses.lsgan_generator,
    output="score", paper="Mao et al. 2017 (a, b, c = 0, 1, 1)", optim=adam(2e-4, 0.5)))
register("wgan", Objective(
    discriminator=losses.wasserstein_critic, generator=losses.wasserstein_generator,
    output="score", paper="Arjovsky et al. 2017 (RMSProp, decay 0.99 as in Torch)",
    optim=dict(name="rmsprop", learning_rate=5e-5, decay=0.99), n_critic=5,
    hyperparameters={"clip": Hyperparameter(0.01, minimum=0.0, exclusive_minimum=True,
                                            help="weight clipping bound")}))
register("wgan_gp", Objective(
    discriminator=losses.wasserstein_critic, generator=losses.wasserstein_generator,
    output="score", paper="Gulrajani et al. 2017 (algorithm 1)",
    optim=adam(1e-4, 0.0, 0.9), n_critic=5, penalty="interpolates",
    hyperparameters={"penalty_weight": _penalty_weight(10.0)}))
register("wgan_gp_drift", Objective(
    discriminator=losses.wasserstein_critic_drift, generator=losses.wasserstein_generator,
    output="score", paper="Karras et al. 2018 (WGAN-GP, n_critic 1, ε_drift 0.001, "
                          "Adam 1e-3, β (0, 0.99))",
    optim=dict(name="adam", learning_rate=1e-3, b1=0.0, b2=0.99, eps=1e-8), n_critic=1,
    penalty="interpolates",
    hyperparameters={"penalty_weight": _penalty_weight(10.0),
                     "drift": Hyperparameter(0.001, minimum=0.0, help="ε_drift")},
    discriminator_arguments=("drift",)))
register("dragan", Objective(
    **_CROSS_ENTROPY, generator=losses.non_saturating_generator,
    paper="Kodali et al. 2017 (reference code)", optim=adam(1e-4, 0.5, 0.9),
    penalty="dragan", hyperparameters={"penalty_weight": _penalty_weight(10.0)}))
register("hinge", Objective(
    discriminator=losses.hinge_discriminator, generator=losses.hinge_generator,
    output="score", paper="Lim & Ye 2017; Miyato et al. 2018 (n_dis = 5, β = (0, 0.9))",
    optim=adam(2e-4, 0.0, 0.9), n_critic=5))
register("ebgan", Objective(
    discriminator=losses.ebgan_discriminator, generator=losses.ebgan_generator,
    output="mse_energy",
    paper="Zhao et al. 2017 (margin on per-value MSE energies, pull-away weight 0.1)",
    optim=adam(1e-3, 0.5),
    hyperparameters={
        "margin": Hyperparameter(1.0, minimum=0.0, help="m of max(0, m - D(G(z)))"),
        "pull_away_weight": Hyperparameter(0.1, minimum=0.0, help="λ_PT")},
    discriminator_arguments=("margin",)))
register("began", Objective(
    discriminator=losses.began_discriminator, generator=losses.began_generator,
    output="l1_energy", paper="Berthelot et al. 2017 (γ = 0.5, λ_k = 0.001, k_0 = 0)",
    optim=adam(1e-4, 0.5), controller=True,
    hyperparameters={
        "began_gamma": Hyperparameter(0.5, minimum=0.0, maximum=1.0,
                                      exclusive_minimum=True, help="diversity ratio γ"),
        "began_lambda_k": Hyperparameter(0.001, minimum=0.0, help="k_t learning rate")},
    discriminator_arguments=("k",)))
def _check_fgan(values: Mapping[str, Any], given: frozenset[str]) -> None:
  if "alpha" in given and values["divergence"] != "alpha":
    raise ConfigError(f"model.alpha applies to model.divergence='alpha', not "
                      f"{values['divergence']!r}")
  losses.divergence(values["divergence"], values["alpha"])  # raises on a bad α


register("fgan", Objective(
    discriminator=losses.fgan_discriminator, generator=losses.fgan_generator,
    output="score", paper="Nowozin et al. 2016", optim=adam(2e-4, 0.5),
    hyperparameters={
        "divergence": Hyperparameter("gan", type=str, choices=losses.DIVERGENCES),
        "alpha": Hyperparameter(0.5, help="α of divergence='alpha', not 0 or 1"),
        "fgan_generator": Hyperparameter("alternative", type=str,
                                         choices=losses.FGAN_GENERATOR)},
    discriminator_arguments=("divergence", "alpha"),
    generator_arguments=("divergence", "alpha", "fgan_generator"), check=_check_fgan))
