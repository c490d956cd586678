"""Generative adversarial networks: every objective, conditioning scheme and trick.

Methods (registered on import): `gan` (any `model.objective`), `cgan`, `acgan`,
`infogan`, `ssgan`, `pggan` (progressive growing, progressive.py), `srgan`
(super-resolution, srgan.py). See docs/gans.md.

  config = jaxgen.get_config("gan", "toy2d:ring8")
  config.model.objective = "wgan_gp"        # its published defaults follow
  result = jaxgen.fit(config)

Modules: `losses` (pure per-example losses), `objectives` (the objective
table), `conditioning` (the kinds as strategies), `updates` (model_state
updates), `players` (networks and each player's loss), `step` (train steps),
`method` (make, init, sample, evaluate), `settings`, `networks`, `tricks`.
"""

from jaxgen.families.gan import (conditioning, losses, networks, objectives, players,
                                 settings, step, tricks, updates)
from jaxgen.families.gan import method  # registers the methods
from jaxgen.families.gan import progressive  # registers pggan
from jaxgen.families.gan import srgan  # registers srgan
from jaxgen.families.gan.method import make
from jaxgen.families.gan.objectives import OBJECTIVES, Hyperparameter, Objective, register
from jaxgen.families.gan.settings import default_config

__all__ = ["OBJECTIVES", "Hyperparameter", "Objective", "conditioning", "default_config",
           "losses", "make", "method", "networks", "objectives", "players", "progressive",
           "register",
           "settings", "srgan", "step", "tricks", "updates"]
