"""pix2pix: paired image-to-image translation (Isola et al. 2017). See docs/gan_uses.md.

  config = jaxgen.get_config("pix2pix", "digits")     # edges -> digit on 8x8 digits
  config.data.pair = "masked"                         # or: complete the bottom half
  config.model.adversarial_weight = 0.0               # the L1-only ablation
  result = jaxgen.fit(config)

Modules: `settings` (config and frozen settings), `losses` (per-example
objectives), `networks` (U-Net generator, PatchGAN), `method` (make, init,
train_step, sample, evaluate).
"""

from jaxgen.families.pix2pix import losses, networks, settings
from jaxgen.families.pix2pix import method  # registers pix2pix
from jaxgen.families.pix2pix.method import make
from jaxgen.families.pix2pix.settings import default_config

__all__ = ["default_config", "losses", "make", "method", "networks", "settings"]
