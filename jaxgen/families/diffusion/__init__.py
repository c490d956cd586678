"""Diffusion models: DDPM/DDIM, guidance, latent diffusion, the likelihood bound.

Modules: `schedules` (β schedules and the forward process in closed form),
`losses` (L_simple and the terms of the variational bound), `samplers`
(ancestral DDPM and DDIM as one compiled loop), `method` (the `ddpm` method)
and `latent` (the `latent_diffusion` method). See docs/diffusion.md.
"""

from jaxgen.families.diffusion import latent, losses, method, samplers, schedules

__all__ = ["latent", "losses", "method", "samplers", "schedules"]
