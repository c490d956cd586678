"""RealNVP: exact log-likelihood by affine coupling flows (Dinh et al. 2017).

Layout: `settings` (defaults, frozen settings), `losses` (the logit
pre-processing and the change-of-variables likelihood as pure functions),
`method` (make, sample with temperature, interpolation, exact densities) and
`plots` (the 2-D density figure). The invertible layers are in
`jaxgen.nn.flows`; scaling, dequantization and bits/dim in `jaxgen.data.codec`.
See docs/realnvp.md.

  config = jaxgen.get_config("realnvp")        # digits: multi-scale flow, batch norm
  result = jaxgen.fit(config)
  images = result.method.sample(result.state, jax.random.PRNGKey(0), 16, temperature=0.7)
"""

from jaxgen import registry
from jaxgen.families.realnvp import losses, method, plots, settings
from jaxgen.families.realnvp.method import (
    Model,
    decode,
    encode,
    interpolate,
    log_density,
    make,
    model_of,
    sample,
)
from jaxgen.families.realnvp.settings import ModelSettings, Settings, default_config

registry.register(
    "realnvp", family="flow",
    description="RealNVP normalizing flow: exact likelihood in bits/dim; multi-scale "
                "couplings on images, MLP couplings on 2-D data",
    default_config=default_config, make=make)

__all__ = ["Model", "ModelSettings", "Settings", "decode", "default_config", "encode",
           "interpolate", "log_density", "losses", "make", "method", "model_of", "plots",
           "sample", "settings"]
