"""Autoencoder configs: the defaults, and the frozen settings `make` resolves them into.

`resolve(config, spec, variant)` reads the ConfigDict once, checks every value
(type, range, choice, fit to the data) and returns a frozen `Settings`; the
method's traced functions read only that. Bad values are one-line ConfigErrors.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen import nn as jnn
from jaxgen.core import optim
from jaxgen.core.settings import field, resolve as resolve_section
from jaxgen.errors import ConfigError
from jaxgen.families.autoencoder.losses import CORRUPTIONS, LOSSES
from jaxgen.families.autoencoder.networks import ACTIVATIONS, CODE_ACTIVATIONS

VARIANTS = ("ae", "dae", "sae")
ARCHITECTURES = ("mlp", "conv")
PENALTIES = ("kl", "l1")
# `sample`: decode codes from the training codes' moments, or run the dae's
# Markov chain (Bengio et al. 2013).
SAMPLERS = ("code_moments", "chain")
CHAIN_STARTS = ("noise", "code_moments")
CHAIN_OUTPUTS = ("sample", "mean")


def default_config(data: str, method: str) -> ml_collections.ConfigDict:
  """The defaults of autoencoder `method` ('ae', 'dae' or 'sae') on dataset `data`."""
  vectors = data.startswith("toy2d:")
  return ml_collections.ConfigDict(dict(
      model=dict(
          architecture="mlp",     # "mlp" or "conv"
          code_dim=2 if vectors else 32,
          hidden=(256, 128),      # mlp widths; the decoder mirrors them
          channels=(32, 64),      # conv widths, one stride-2 level each
          activation="relu",
          # The code's nonlinearity; the KL sparsity penalty needs "sigmoid".
          code_activation="sigmoid" if method == "sae" else "linear",
          # "bernoulli" (cross-entropy; data in [0, 1]) or "mse" (squared error)
          loss="mse" if vectors else "bernoulli",
          # dae (Vincent et al. 2010): "gaussian", "masking" or "salt_pepper"
          corruption="masking",
          corruption_rate=0.25,   # masking / salt_pepper: share of inputs corrupted
          noise_std=0.5,          # gaussian: standard deviation of the added noise
          # sae: "kl" (Ng 2011: ρ = 0.05, β = 3) or "l1" (weight λ)
          sparsity_penalty="kl",
          sparsity_target=0.05,   # ρ
          kl_weight=3.0,          # β
          # λ: no canonical value; 0.1 keeps ~6 of 32 relu units busy on
          # digits with the cross-entropy loss (mean activation ~0.2).
          l1_weight=0.1,
          # Sampling (sample-time settings; `jaxgen sample --set model.sampler=chain`).
          # "code_moments": decode codes from N(mean, cov) of training codes;
          # "chain" (dae): the Markov chain x -> corrupt -> draw from the
          # reconstruction distribution P(X | x~) -> ... (Bengio et al. 2013).
          sampler="code_moments",
          chain_start="noise",    # uniform over the data's range, or "code_moments" samples
          chain_burn_in=100,      # transitions before the first kept sample (>= 1)
          chain_thinning=10,      # transitions between kept samples of one chain
          chain_count=0,          # parallel chains; 0: one chain per sample
          chain_output="sample",  # the draw x_t, or "mean": E[X | x~_t] of its transition
          # mse: the std of the Gaussian P(X | x~) = N(r(x~), std^2 I); 0: its ML
          # estimate, the running root mean squared denoising error of training
          reconstruction_std=0.0,
          # Walk-back training (Bengio et al. 2013, sec. 3.3): up to this many
          # extra pairs (x~*, x) per example from a walk x -> x~ -> x* ~ P(X | x~)
          # -> x~* ..., continued with probability walkback_probability per step.
          walkback_steps=0,
          walkback_probability=0.5,
      ),
      optim=optim.default_config("adam", 1e-3),
      data=dict(binarize="none"),
      train=dict(steps=3000, eval_every=500, sample_every=1000),
  ))


def default_config_ae(data: str = "digits") -> ml_collections.ConfigDict:
  """The plain autoencoder's defaults."""
  return default_config(data, "ae")


def default_config_dae(data: str = "digits") -> ml_collections.ConfigDict:
  """The denoising autoencoder's defaults: masking noise, ν = 0.25 (Vincent et al. 2010)."""
  return default_config(data, "dae")


def default_config_sae(data: str = "digits") -> ml_collections.ConfigDict:
  """The sparse autoencoder's defaults: sigmoid code, KL penalty ρ = 0.05, β = 3."""
  return default_config(data, "sae")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `default_config`)."""

  architecture: str = field(choices=ARCHITECTURES)
  code_dim: int = field(minimum=1)
  hidden: tuple[int, ...] = field(minimum=1)
  channels: tuple[int, ...] = field(minimum=1)
  activation: str = field(choices=tuple(ACTIVATIONS))
  code_activation: str = field(choices=tuple(CODE_ACTIVATIONS))
  loss: str = field(choices=LOSSES)
  corruption: str = field(choices=CORRUPTIONS)
  corruption_rate: float = field(minimum=0.0, maximum=1.0)
  noise_std: float = field(minimum=0.0)
  sparsity_penalty: str = field(choices=PENALTIES)
  sparsity_target: float = field(minimum=0.0, maximum=1.0)
  kl_weight: float = field(minimum=0.0)
  l1_weight: float = field(minimum=0.0)
  # Defaults: configs saved before these keys existed still load.
  sampler: str = field(default="code_moments", choices=SAMPLERS)
  chain_start: str = field(default="noise", choices=CHAIN_STARTS)
  chain_burn_in: int = field(default=100, minimum=1)
  chain_thinning: int = field(default=10, minimum=1)
  chain_count: int = field(default=0, minimum=0)
  chain_output: str = field(default="sample", choices=CHAIN_OUTPUTS)
  reconstruction_std: float = field(default=0.0, minimum=0.0)
  walkback_steps: int = field(default=0, minimum=0)
  walkback_probability: float = field(default=0.5, minimum=0.0, maximum=1.0)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything an autoencoder method is built from."""

  variant: str
  model: ModelSettings
  shape: tuple[int, ...]
  low: float   # the data's value range
  high: float


def resolve(config: ml_collections.ConfigDict, spec: Any, variant: str) -> Settings:
  """Checks `config` against the data once and freezes it into `Settings`."""
  if variant not in VARIANTS:
    raise ConfigError(f"unknown autoencoder variant {variant!r}")
  m = resolve_section(ModelSettings, config.model, "model")
  if not m.hidden:
    raise ConfigError("model.hidden needs at least one width, e.g. (256, 128)")
  if variant == "dae":
    if m.corruption == "gaussian" and m.noise_std <= 0:
      raise ConfigError(f"model.noise_std must be positive, got {m.noise_std}")
    if m.corruption != "gaussian" and not 0.0 < m.corruption_rate < 1.0:
      raise ConfigError(f"model.corruption_rate must lie in (0, 1), got "
                        f"{m.corruption_rate}")
  if variant != "dae" and (m.sampler == "chain" or m.walkback_steps):
    raise ConfigError(
        f"model.sampler='chain' and model.walkback_steps need a corruption: they are "
        f"for the denoising autoencoder (method dae), not {variant}")
  if variant == "sae" and m.sparsity_penalty == "kl":
    if m.code_activation != "sigmoid":
      raise ConfigError(
          f"model.sparsity_penalty='kl' treats code units as firing rates in "
          f"(0, 1); set model.code_activation='sigmoid' (got "
          f"{m.code_activation!r}) or use model.sparsity_penalty='l1'")
    if not 0.0 < m.sparsity_target < 1.0:
      raise ConfigError(f"model.sparsity_target must lie in (0, 1), got "
                        f"{m.sparsity_target}")
  if m.architecture == "conv":
    if len(spec.shape) != 3:
      raise ConfigError(
          f"model.architecture='conv' needs image data [H, W, C]; dataset "
          f"{spec.name!r} gives examples of shape {tuple(spec.shape)}; use "
          f"model.architecture='mlp'")
    jnn.check_image_shape(spec.shape, len(m.channels))
  lo, hi = (float(v) for v in spec.value_range)
  if m.loss == "bernoulli" and (lo < 0 or hi > 1):
    raise ConfigError(
        f"model.loss='bernoulli' needs data in [0, 1]; dataset {spec.name!r} is in "
        f"[{lo:g}, {hi:g}]; use model.loss='mse' or data.scale='unit'")
  return Settings(variant=variant, model=m, shape=tuple(spec.shape), low=lo, high=hi)
