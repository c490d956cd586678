"""VAE configs: the defaults, and the frozen settings `make` resolves them into.

`resolve(config, spec, variant)` reads the ConfigDict once, checks every value
(type, range, choice, fit to the data) and returns a frozen `Settings`; the
method's traced functions read only that. Bad values are one-line ConfigErrors.

The likelihood defaults to 'auto': chosen from the value type the data
declare (`DataSpec`), not from the dataset's name — Bernoulli for binary data,
the discretized logistic for data on a grid of levels, a Gaussian for
continuous data. A Bernoulli likelihood on continuous data is used only when
asked for explicitly (`model.likelihood=bernoulli`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen import nn as jnn
from jaxgen.core import optim
from jaxgen.core.settings import field, resolve as resolve_section
from jaxgen.errors import ConfigError
from jaxgen.families.vae.losses import LIKELIHOODS
from jaxgen.families.vae.networks import ACTIVATIONS

VARIANTS = ("vae", "cvae", "iwae")
ARCHITECTURES = ("mlp", "conv")
VARIANCES = ("fixed", "learned")
SAMPLE_MODES = ("mean", "sample")
AUTO = "auto"
# Sources whose values are image intensity levels by construction (uint8
# files, the 17-level digits): the VAE binarises them afresh each time an
# image is drawn (Burda et al. 2016). Other sources (toy2d, npz) keep their
# values, and the likelihood follows the type the loaded data declare.
LEVEL_SOURCES = ("idx:", "images:", "tfds:")


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """Defaults for a small VAE: on image levels a Bernoulli decoder over
  dynamically binarised pixels (as in Burda et al. 2016); on other data the
  likelihood its value type calls for (toy2d: Gaussian).

  On 8x8 digits the default trains in well under a minute on two CPU cores.
  """
  vectors = data.startswith("toy2d:")
  image_levels = data == "digits" or data.startswith(LEVEL_SOURCES)
  return ml_collections.ConfigDict(dict(
      model=dict(
          architecture="mlp",     # "mlp" or "conv"
          latent_dim=8,
          hidden=(256, 128),      # mlp widths; the decoder mirrors them
          channels=(32, 64),      # conv widths, one stride-2 level each
          activation="relu",      # relu, tanh (Burda et al. 2016), softplus, elu, gelu
          # "auto" (from the data's value type: binary -> bernoulli, levels ->
          # discretized_logistic, continuous -> gaussian), "bernoulli",
          # "gaussian" or "discretized_logistic" (data with levels)
          likelihood=AUTO,
          variance="fixed",       # gaussian / logistic: "fixed" (scale below) or "learned"
          scale=0.05 if vectors else 0.1,  # fixed standard deviation (logistic: scale)
          min_scale=0.01,         # learned: lower bound on the scale
          beta=1.0,               # KL weight (Higgins et al. 2017); 1 = ELBO
          kl_warmup_steps=0,      # >0: β ramps linearly from 0 over these steps
          importance_samples=5,   # iwae: k in the training bound (Burda et al.: 5, 50)
          eval_importance_samples=0,  # >0: evaluate log p(x) with this many samples
          eval_chunk_size=100,    # importance samples per chunk in evaluation
          sample_mode="mean",     # sample(): decoder mean or a likelihood draw
      ),
      optim=optim.default_config("adam", 1e-3),
      # A proper likelihood for the Bernoulli decoder: binary data, a fresh
      # binarisation each time an image is drawn.
      data=dict(binarize="dynamic" if image_levels else "none"),
      train=dict(steps=3000, eval_every=500, sample_every=1000),
  ))


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `default_config`)."""

  architecture: str = field(choices=ARCHITECTURES)
  latent_dim: int = field(minimum=1)
  hidden: tuple[int, ...] = field(minimum=1)
  channels: tuple[int, ...] = field(minimum=1)
  activation: str = field(choices=tuple(ACTIVATIONS))
  likelihood: str = field(choices=(AUTO,) + LIKELIHOODS)
  variance: str = field(choices=VARIANCES)
  scale: float = field(minimum=0.0, exclusive_minimum=True)
  min_scale: float = field(minimum=0.0)
  beta: float = field(minimum=0.0)
  kl_warmup_steps: int = field(minimum=0)
  importance_samples: int = field(minimum=1)
  eval_importance_samples: int = field(minimum=0)
  eval_chunk_size: int = field(minimum=1)
  sample_mode: str = field(choices=SAMPLE_MODES)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything a VAE method is built from: the model settings (likelihood
  resolved, never 'auto') and what it needs to know about the data."""

  variant: str
  model: ModelSettings
  likelihood_source: str  # "config" or the data's value type it was chosen from
  shape: tuple[int, ...]
  num_classes: int        # cvae: classes of the one-hot labels; 0 otherwise
  low: float              # the data's value range
  high: float
  levels: int | None

  @property
  def conditional(self) -> bool:
    return self.variant == "cvae"

  @property
  def learned_scale(self) -> bool:
    return self.model.likelihood != "bernoulli" and self.model.variance == "learned"


def value_type(spec: Any, dequantized: bool) -> str:
  """What the data declare their values to be: 'binary', 'levels' or 'continuous'."""
  if spec.binary:
    return "binary"
  if spec.levels is not None and not dequantized:
    return "levels"
  return "continuous"


DEFAULT_LIKELIHOOD = {"binary": "bernoulli", "levels": "discretized_logistic",
                      "continuous": "gaussian"}


def resolve(config: ml_collections.ConfigDict, spec: Any, variant: str) -> Settings:
  """Checks `config` against the data once and freezes it into `Settings`."""
  if variant not in VARIANTS:
    raise ConfigError(f"unknown VAE variant {variant!r}")
  model = resolve_section(ModelSettings, config.model, "model")
  dequantized = bool(config.data.get("dequantize", False))
  kind = value_type(spec, dequantized)
  source = "config"
  if model.likelihood == AUTO:
    model = dataclasses.replace(model, likelihood=DEFAULT_LIKELIHOOD[kind])
    source = kind
  _check_model(model, variant)
  _check_data(model, spec, variant, kind)
  lo, hi = (float(v) for v in spec.value_range)
  return Settings(variant=variant, model=model, likelihood_source=source,
                  shape=tuple(spec.shape),
                  num_classes=int(spec.num_classes or 0) if variant == "cvae" else 0,
                  low=lo, high=hi, levels=spec.levels)


def _check_model(m: ModelSettings, variant: str) -> None:
  if not m.hidden:
    raise ConfigError("model.hidden needs at least one width, e.g. (256, 128)")
  if variant == "iwae" and (m.beta != 1.0 or m.kl_warmup_steps):
    raise ConfigError("method 'iwae' trains the importance-weighted bound, which "
                      "has no KL weight; set model.beta=1.0 and "
                      "model.kl_warmup_steps=0, or use method 'vae'")


def _check_data(m: ModelSettings, spec: Any, variant: str, kind: str) -> None:
  """The settings against the data: labels, image shape, value range and type."""
  if variant == "cvae" and not spec.num_classes:
    raise ConfigError(f"method 'cvae' needs labelled data; dataset {spec.name!r} "
                      f"has no labels (data.labels=True and a labelled dataset)")
  if m.architecture == "conv":
    if len(spec.shape) != 3:
      raise ConfigError(
          f"model.architecture='conv' needs image data [H, W, C]; dataset "
          f"{spec.name!r} gives examples of shape {tuple(spec.shape)}; use "
          f"model.architecture='mlp'")
    jnn.check_image_shape(spec.shape, len(m.channels))
  lo, hi = spec.value_range
  if m.likelihood == "bernoulli" and (lo < 0 or hi > 1):
    raise ConfigError(
        f"model.likelihood='bernoulli' needs data in [0, 1]; dataset {spec.name!r} "
        f"is in [{lo:g}, {hi:g}]; use model.likelihood='gaussian' or data.scale='unit'")
  if m.likelihood == "discretized_logistic" and kind != "levels":
    described = {"binary": "binarized", "continuous": "continuous"}[kind]
    if kind == "continuous" and spec.levels is not None:
      described = "dequantized"
    raise ConfigError(
        f"model.likelihood='discretized_logistic' needs data on a grid of levels; "
        f"dataset {spec.name!r} is {described}; use data.binarize='none', "
        f"data.dequantize=False, or another likelihood")
