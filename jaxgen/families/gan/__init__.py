"""Generative adversarial networks: every objective, conditioning scheme and trick.

Methods (registered on import): `gan` (any `model.objective`), `cgan`, `acgan`,
`infogan`, `ssgan`. See docs/gans.md.

  config = jaxgen.get_config("gan", "toy2d:ring8")
  config.model.objective = "wgan_gp"        # its published defaults follow
  result = jaxgen.fit(config)
"""

from jaxgen.families.gan import losses, networks, settings, tricks
from jaxgen.families.gan import method  # registers the methods
from jaxgen.families.gan.method import make
from jaxgen.families.gan.settings import OBJECTIVES, default_config

__all__ = ["OBJECTIVES", "default_config", "losses", "make", "method", "networks",
           "settings", "tricks"]
