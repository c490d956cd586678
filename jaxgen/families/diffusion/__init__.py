"""Diffusion models: DDPM/DDIM, guidance, latent diffusion, the likelihood bound.

Modules: `settings` (the `model` section's defaults and its frozen, checked
settings), `schedules` (β schedules and the forward process in closed form),
`losses` (L_simple, the terms of the variational bound and the training
objectives as pure functions), `samplers` (ancestral DDPM and DDIM as one
compiled loop), `method` (the `ddpm` method and the shared builder) and
`latent` (the `latent_diffusion` method). Data scaling and bits/dim come from
the shared `jaxgen.data.codec`. See docs/diffusion.md.
"""

from jaxgen.families.diffusion import latent, losses, method, samplers, schedules, settings

__all__ = ["latent", "losses", "method", "samplers", "schedules", "settings"]
