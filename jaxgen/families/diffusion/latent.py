"""Latent diffusion (Rombach et al. 2022): DDPM in a trained autoencoder's code space.

The autoencoder (a jaxgen VAE or autoencoder run with `encode`/`decode`), named
by `model.autoencoder_workdir`, is loaded by the runner (the registry entry's
`requires`) and stays frozen. Its data settings must be this run's: the same
shape and value range, and the same `data.binarize` and `data.dequantize`
transforms (a one-line error otherwise).
Codes are the posterior means (or one posterior draw) times a scale fixed at
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

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import optim, rng
from jaxgen.core import settings as core_settings
from jaxgen.core.state import Method
from jaxgen.errors import ConfigError
from jaxgen.families.diffusion import method as diffusion
from jaxgen.families.diffusion import settings as settings_lib

# Data transforms the autoencoder and the diffusion must share; shape and value
# range (which cover scale, flatten, image size and channels) are compared too.
SHARED_TRANSFORMS = ("binarize", "dequantize")


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """Latent diffusion defaults: the MLP denoiser on vector codes."""
  model = settings_lib.model_config(vectors=True)
  model.update(
      autoencoder_workdir="",  # a trained jaxgen VAE/autoencoder run (required)
      latent_sample="mean",    # codes: the encoder's "mean", or one posterior "sample"
  )
  return ml_collections.ConfigDict(dict(
      model=model,
      optim=optim.default_config("adam", 1e-3, grad_clip_norm=1.0),
      train=dict(steps=4000, eval_every=0, sample_every=1000),
  ))


def check_same_data(run: Any, config: ml_collections.ConfigDict, spec: Any,
                    workdir: str) -> None:
  """One-line error unless the autoencoder was trained on this run's data transforms."""
  defaults = data_lib.default_config()
  ours, theirs = config.get("data", {}), run.config.get("data", {})
  for key in SHARED_TRANSFORMS:
    mine, its = ours.get(key, defaults[key]), theirs.get(key, defaults[key])
    if mine != its:
      raise ConfigError(
          f"the autoencoder in {workdir!r} was trained with data.{key}={its!r}, but this "
          f"run has data.{key}={mine!r}; use the autoencoder's data settings")
  if (tuple(run.spec.shape) != tuple(spec.shape)
      or tuple(run.spec.value_range) != tuple(spec.value_range)):
    raise ConfigError(
        f"the autoencoder was trained on {run.spec.name!r} of shape "
        f"{tuple(run.spec.shape)} in {tuple(run.spec.value_range)}, but this run's "
        f"data {spec.name!r} is {tuple(spec.shape)} in {tuple(spec.value_range)}; "
        f"use the autoencoder's data settings")


def code_space(ae_method: Any, ae_state: Any, latent_sample: str,
               data_shape: tuple[int, ...]) -> diffusion.Space:
  """The autoencoder's codes, scaled to unit variance, as the diffusion's space."""

  def raw_codes(x, key):
    keys = rng.split(key, "encoder", "posterior")
    out = ae_method.encode(ae_state, x, keys["encoder"])
    if isinstance(out, (tuple, list)):  # a VAE: posterior (mean, logvar)
      mean, logvar = out
      if latent_sample == "sample":
        return mean + jnp.exp(0.5 * logvar) * rng.normal(keys["posterior"], mean.shape)
      return mean
    return out

  example = jax.ShapeDtypeStruct((1,) + tuple(data_shape), jnp.float32)
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

  return diffusion.Space(
      shape=shape, encode=encode, decode=decode, init_state=init_state,
      # The bound is reported for the unscaled codes z = y / scale.
      log_jacobian=lambda model_state: jnp.log(model_state["latent_scale"]),
      levels=None,
      units=("bits per latent dimension of the autoencoder's codes (unscaled); "
             "not a bound on the image likelihood"))


def _latent_settings(config: ml_collections.ConfigDict) -> settings_lib.LatentSettings:
  model_keys = [f.name for f in dataclasses.fields(settings_lib.ModelSettings)]
  return core_settings.resolve(settings_lib.LatentSettings, config.model, "model",
                               ignore=model_keys)


def requires(config: ml_collections.ConfigDict) -> dict[str, str]:
  """The trained run `make` builds on: the autoencoder named in the config."""
  latent = _latent_settings(config)
  if not latent.autoencoder_workdir:
    raise ConfigError("model.autoencoder_workdir is empty; train a VAE or autoencoder "
                      "first (jaxgen train vae --workdir runs/vae) and name its workdir")
  return {"autoencoder": latent.autoencoder_workdir}


def make(config: ml_collections.ConfigDict, spec: Any, *, autoencoder: Any) -> Method:
  """The `latent_diffusion` method on a trained autoencoder run (a `jaxgen.LoadedRun`,
  loaded by the runner from `model.autoencoder_workdir`)."""
  latent = _latent_settings(config)
  run = autoencoder
  if run.method.encode is None or run.method.decode is None:
    raise ConfigError(f"the run in {latent.autoencoder_workdir!r} ({run.config.method}) "
                      "has no encode/decode; use a VAE or autoencoder run")
  check_same_data(run, config, spec, latent.autoencoder_workdir)
  # Host copies: the frozen weights enter the compiled programs as constants,
  # which then run on whatever devices the engine shards the batch over.
  ae_state = jax.tree.map(np.asarray, run.replica(0))
  space = code_space(run.method, ae_state, latent.latent_sample, tuple(spec.shape))
  extra = {"autoencoder": {"workdir": latent.autoencoder_workdir,
                           "method": run.config.method, "step": run.step,
                           "code_shape": list(space.shape), "codes": latent.latent_sample}}
  return diffusion.build(config, space, spec.num_classes, "latent_diffusion", extra,
                         ignore=settings_lib.LATENT_KEYS)


registry.register(
    "latent_diffusion", family="diffusion",
    description="diffusion in the code space of a trained jaxgen VAE/autoencoder",
    default_config=default_config, make=make, requires=requires)
