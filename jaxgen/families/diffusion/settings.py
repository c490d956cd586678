"""Diffusion configs: the `model` section's defaults, and its frozen, checked settings.

`make` resolves `config.model` once into `ModelSettings` (typed and
range-checked by `jaxgen.core.settings`) and checks the combinations that do
not fit the data; the losses, steps and samplers read only these settings,
never the ConfigDict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError, choices
from jaxgen.families.diffusion import samplers, schedules
from jaxgen.nn.unet import check_unet_shape

ARCHITECTURES = ("unet", "mlp")
LOSSES = ("simple", "vlb", "hybrid")
GUIDANCE = ("none", "classifier_free", "classifier")
LATENT_SAMPLES = ("mean", "sample")
LATENT_KEYS = ("autoencoder_workdir", "latent_sample")


def model_config(vectors: bool) -> dict[str, Any]:
  """The `model` section shared by `ddpm` and `latent_diffusion`."""
  return dict(
      timesteps=1000,          # T (Ho et al. 2020)
      schedule="linear",       # "linear" β 1e-4..0.02 (Ho et al.), "cosine" (Nichol & Dhariwal)
      prediction="epsilon",    # "epsilon" (Ho et al.), "x0" or "v" (Salimans & Ho 2022)
      loss="simple",           # "simple" (Ho et al. eq. 14), "vlb" or "hybrid" (Nichol & Dhariwal)
      hybrid_weight=0.001,     # λ of L_simple + λ L_vlb (Nichol & Dhariwal 2021)
      variance="fixed_small",  # σ²_t: "fixed_small" β̃_t, "fixed_large" β_t or "learned"
      architecture="mlp" if vectors else "unet",
      channels=32,             # U-Net base width (Ho et al.: 128 on CIFAR-10)
      channel_mults=(1, 2),    # one resolution per entry, halving each time
      num_res_blocks=2,        # per resolution (Ho et al.: 2)
      attention_resolutions=(4,),  # feature-map sizes with self-attention (Ho et al.: 16 at 32x32)
      heads=1,
      norm_groups=8,           # GroupNorm groups (Ho et al.: 32 at width 128)
      hidden=256,              # MLP denoiser width
      depth=3,                 # MLP denoiser residual blocks
      ema_decay=0.999,         # Ho et al.: 0.9999 over 800k steps; shorter runs need less
      conditional=False,       # condition on data labels (class embedding)
      label_dropout=0.1,       # p_uncond: labels replaced by "no label" (Ho & Salimans 2022)
      guidance="none",         # "classifier_free" (Ho & Salimans), "classifier" (Dhariwal & Nichol)
      guidance_scale=2.0,      # default w (classifier-free) or s (classifier) when sampling
      sampler="ddim",          # default sampler for sample(): "ddim" or "ddpm" (ancestral)
      sample_steps=50,         # default sampling steps; 0 = all T
      eta=0.0,                 # DDIM η: 0 deterministic, 1 = ancestral-like (Song et al. 2021)
      clip_denoised=not vectors,  # clip x̂_0 to the data range while sampling and evaluating
      progress_chunk=50,       # sample(progress=True): steps per compiled chunk of the loop
  )


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """DDPM defaults: a small U-Net on images, the MLP denoiser on 2-D toy data.

  On 8x8 digits the default (4,000 steps) trains in about ten minutes on two
  CPU cores; images are scaled to [-1, 1] as in Ho et al.
  """
  vectors = data.startswith("toy2d:")
  sections = dict(
      model=model_config(vectors),
      # Ho et al. used 2e-4 with batch 128 on CIFAR-10 and clipped gradients
      # at norm 1; these small models train faster at 1e-3.
      optim=optim.default_config("adam", 1e-3, grad_clip_norm=1.0),
      train=dict(steps=4000, eval_every=0, sample_every=1000),
  )
  if not vectors:
    sections["data"] = dict(scale="symmetric")
  return ml_collections.ConfigDict(sections)


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `model_config` for meanings)."""

  timesteps: int = field(minimum=1)
  schedule: str = field(choices=schedules.SCHEDULES)
  prediction: str = field(choices=schedules.PREDICTIONS)
  loss: str = field(choices=LOSSES)
  hybrid_weight: float = field(minimum=0.0)
  variance: str = field(choices=schedules.VARIANCES)
  architecture: str = field(choices=ARCHITECTURES)
  channels: int = field(minimum=1)
  channel_mults: tuple[int, ...] = field(minimum=1)
  num_res_blocks: int = field(minimum=1)
  attention_resolutions: tuple[int, ...] = field(minimum=1)
  heads: int = field(minimum=1)
  norm_groups: int = field(minimum=1)
  hidden: int = field(minimum=1)
  depth: int = field(minimum=0)
  ema_decay: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  conditional: bool = field()
  label_dropout: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  guidance: str = field(choices=GUIDANCE)
  guidance_scale: float = field()
  sampler: str = field(choices=samplers.SAMPLERS)
  sample_steps: int = field(minimum=0)
  eta: float = field(minimum=0.0)
  clip_denoised: bool = field()
  progress_chunk: int = field(minimum=1)

  @property
  def label_conditioned(self) -> bool:
    """Whether the denoiser takes labels (conditional, or classifier-free guidance)."""
    return self.conditional or self.guidance == "classifier_free"

  @property
  def uses_bound(self) -> bool:
    """Whether training evaluates the bound's term L_{t−1} (vlb or hybrid)."""
    return self.loss in ("vlb", "hybrid")


@dataclasses.dataclass(frozen=True)
class LatentSettings:
  """The `latent_diffusion` keys of the `model` section."""

  autoencoder_workdir: str = field()
  latent_sample: str = field(choices=LATENT_SAMPLES)


def resolve(section: ml_collections.ConfigDict, shape: tuple[int, ...],
            num_classes: int | None, ignore: tuple[str, ...] = ()) -> ModelSettings:
  """The frozen settings of a `model` section, checked against the data."""
  s = settings_lib.resolve(ModelSettings, section, "model", ignore=ignore)
  check(s, shape, num_classes)
  return s


def check(s: ModelSettings, shape: tuple[int, ...], num_classes: int | None) -> None:
  """One-line errors for combinations that do not exist or do not fit the data."""
  if s.sample_steps > s.timesteps:
    raise ConfigError(f"model.sample_steps must be 0 (all) to model.timesteps="
                      f"{s.timesteps}, got {s.sample_steps}")
  if s.variance == "learned" and s.loss == "simple":
    raise ConfigError("model.variance='learned' is only trained by the bound; use "
                      "model.loss='hybrid' or 'vlb'")
  if (s.conditional or s.guidance != "none") and not num_classes:
    what = "model.conditional=True" if s.conditional else f"model.guidance={s.guidance!r}"
    raise ConfigError(f"{what} needs labelled data; this dataset has no labels "
                      f"(or data.labels=False)")
  if s.guidance == "classifier_free" and s.label_dropout <= 0:
    raise ConfigError("model.guidance='classifier_free' needs model.label_dropout > 0 "
                      "to train the unconditional model")
  if s.architecture == "unet":
    if not s.channel_mults:
      raise ConfigError("model.channel_mults needs at least one entry")
    check_unet_shape(shape, len(s.channel_mults))
    if (s.channels * min(s.channel_mults)) % s.heads:
      raise ConfigError(f"model.heads={s.heads} must divide every U-Net width")


def check_sampler(sampler: str) -> None:
  """A one-line error for a sampler name given to `sample`."""
  if sampler not in samplers.SAMPLERS:
    raise ConfigError(f"sampler {sampler!r} is not one of {choices(samplers.SAMPLERS)}")
