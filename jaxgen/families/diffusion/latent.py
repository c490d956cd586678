"""Latent diffusion (Rombach et al. 2022): DDPM in a trained autoencoder's code space.

The autoencoder (a jaxgen VAE or autoencoder run with `encode`/`decode`) is
read with `jaxgen.load(model.autoencoder_workdir)` and stays frozen. Codes are
the posterior means (or one posterior draw) times a scale fixed at
initialisation to 1/std of the first batch's codes, as Rombach et al. do, so the
diffusion sees unit-variance data. Samples are decoded back to images.

  ae = jaxgen.train("vae", workdir="runs/vae", overrides={...})
  config = jaxgen.get_config("latent_diffusion")
  config.model.autoencoder_workdir = "runs/vae"
  result = jaxgen.fit(config)
  images = result.method.sample(result.state, key, 16)

`evaluate` reports the variational bound of the *codes* (bits per latent
dimension, in the autoencoder's unscaled code units), not a bound on the
likelihood of the images.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import registry
from jaxgen.core import optim, rng
from jaxgen.core.state import Method
from jaxgen.errors import ConfigError, choices
from jaxgen.families.diffusion import method as diffusion


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """Latent diffusion defaults: the MLP denoiser on vector codes."""
  model = diffusion.model_config(vectors=True)
  model.update(
      autoencoder_workdir="",  # a trained jaxgen VAE/autoencoder run (required)
      latent_sample="mean",    # codes: the encoder's "mean", or one posterior "sample"
  )
  return ml_collections.ConfigDict(dict(
      model=model,
      optim=optim.default_config("adam", 1e-3, grad_clip_norm=1.0),
      train=dict(steps=4000, eval_every=0, sample_every=1000),
  ))


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `latent_diffusion` method; loads the autoencoder named in the config."""
  import jaxgen  # pylint: disable=import-outside-toplevel  (jaxgen imports the families)

  m = config.model
  if not m.autoencoder_workdir:
    raise ConfigError("model.autoencoder_workdir is empty; train a VAE or autoencoder "
                      "first (jaxgen train vae --workdir runs/vae) and name its workdir")
  if m.latent_sample not in diffusion.LATENT_SAMPLES:
    raise ConfigError(f"model.latent_sample={m.latent_sample!r} is not one of "
                      f"{choices(diffusion.LATENT_SAMPLES)}")
  run = jaxgen.load(m.autoencoder_workdir)
  if run.method.encode is None or run.method.decode is None:
    raise ConfigError(f"the run in {m.autoencoder_workdir!r} ({run.config.method}) has "
                      "no encode/decode; use a VAE or autoencoder run")
  if (tuple(run.spec.shape) != tuple(spec.shape)
      or tuple(run.spec.value_range) != tuple(spec.value_range)):
    raise ConfigError(
        f"the autoencoder was trained on {run.spec.name!r} of shape "
        f"{tuple(run.spec.shape)} in {tuple(run.spec.value_range)}, but this run's "
        f"data {spec.name!r} is {tuple(spec.shape)} in {tuple(spec.value_range)}; "
        f"use the autoencoder's data settings")
  # Host copies: the frozen weights enter the compiled programs as constants,
  # which then run on whatever devices the engine shards the batch over.
  ae_method, ae_state = run.method, jax.tree.map(np.asarray, run.replica(0))

  def raw_codes(x, key):
    out = ae_method.encode(ae_state, x, key)
    if isinstance(out, (tuple, list)):  # a VAE: posterior (mean, logvar)
      mean, logvar = out
      if m.latent_sample == "sample":
        return mean + jnp.exp(0.5 * logvar) * rng.normal(key, mean.shape)
      return mean
    return out

  example = jax.ShapeDtypeStruct((1,) + tuple(spec.shape), jnp.float32)
  code = jax.eval_shape(raw_codes, example, jax.ShapeDtypeStruct((2,), jnp.uint32))
  shape = tuple(int(d) for d in code.shape[1:])

  def init_state(x, key):
    # Rombach et al. 2022, appendix: rescale codes by 1/std of the first batch.
    std = jnp.std(jax.lax.stop_gradient(raw_codes(x, key)))
    return {"latent_scale": 1.0 / jnp.maximum(std, 1e-6)}

  def encode(model_state, x, key):
    return jax.lax.stop_gradient(raw_codes(x, key)) * model_state["latent_scale"]

  def decode(model_state, y):
    return ae_method.decode(ae_state, y / model_state["latent_scale"])

  codec = diffusion.Codec(
      shape=shape, encode=encode, decode=decode, init_state=init_state,
      # The bound is reported for the unscaled codes z = y / scale.
      log_det=lambda model_state: jnp.log(model_state["latent_scale"]),
      levels=None,
      units=("bits per latent dimension of the autoencoder's codes (unscaled); "
             "not a bound on the image likelihood"))
  extra = {"autoencoder": {"workdir": str(m.autoencoder_workdir),
                           "method": run.config.method, "step": run.step,
                           "code_shape": list(shape), "codes": m.latent_sample}}
  return diffusion.build(config, codec, spec.num_classes, "latent_diffusion", extra)


registry.register(
    "latent_diffusion", family="diffusion",
    description="diffusion in the code space of a trained jaxgen VAE/autoencoder",
    default_config=default_config, make=make)
