"""GAN configs: defaults, and resolving a config into typed, frozen settings.

Keys whose default is None mean "the chosen objective's published value": the
optimizers, `model.n_critic`, the objective's hyperparameters (`model.clip`,
`penalty_weight`, EBGAN's `margin` and `pull_away_weight`, BEGAN's γ and λ_k,
f-GAN's `divergence`, `alpha` and `fgan_generator`) and the networks'
normalization. `resolve` fills them from `objectives.OBJECTIVES` when the
method is made, so `--set model.objective=wgan` alone gives RMSProp(5e-5),
clip 0.01 and five critic steps; any key the user sets wins.

Every key has a declared type and range (the `*Section` dataclasses below,
`two_player.OptimSection` and each objective's `Hyperparameter`s), checked with `jaxgen.core.settings`
whether or not its default is None; settings that do not apply to the chosen
objective or conditioning are refused. Each problem is one ConfigError line,
raised in `make`, before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxgen.core import settings as core_settings
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import objectives, two_player
from jaxgen.nn import check_image_shape

KINDS = ("gan", "cgan", "acgan", "infogan", "ssgan")
ARCHITECTURES = ("mlp", "dcgan", "style")
GENERATOR_NORMS = ("none", "batch", "layer")
DISCRIMINATOR_NORMS = ("none", "batch", "layer")
CRITIC_DATA = ("reuse", "split")
SAMPLE_FROM = ("ema", "generator")


def objectives_help() -> str:
  """One line naming every objective (for the registry and errors)."""
  names = [n for n in objectives.OBJECTIVES if n != "fgan"]
  return ", ".join(names) + ", fgan (model.divergence=" + "|".join(
      objectives.OBJECTIVES["fgan"].hyperparameters["divergence"].choices) + ")"


def default_config(kind: str, data: str) -> ml_collections.ConfigDict:
  """The config sections of method `kind` on dataset `data`."""
  vectors = data.startswith("toy2d:")
  small = data == "digits"
  model = dict(
      objective="non_saturating",   # see objectives.OBJECTIVES
      architecture="mlp" if vectors else "dcgan",  # 'mlp', 'dcgan' or 'style'
      latent_dim=8 if vectors else (32 if small else 64),
      generator_hidden=(128, 128),      # mlp widths
      discriminator_hidden=(128, 128),
      generator_channels=(64, 32) if small else (128, 64),     # dcgan/style levels
      discriminator_channels=(32, 64) if small else (64, 128),
      generator_norm=None,       # None: 'batch' for dcgan, 'none' otherwise
      discriminator_norm=None,   # None: 'batch' for dcgan ('layer' with gradient
                                 # penalties, which need per-example outputs), else 'none'
      n_critic=None,             # discriminator updates per generator update
      critic_data="reuse",       # 'reuse' the batch for every critic step, or
                                 # 'split' it into n_critic minibatches
      code_dim=32,               # ebgan/began autoencoder code size
      style_dim=64,              # style: w size
      mapping_layers=3,          # style: mapping network depth
      style_noise=True,          # style: per-layer noise inputs
      ema_decay=0.999,           # EMA of the generator's weights (0: off)
      sample_from="ema",         # 'ema' or 'generator' (the raw weights)
      discriminator_input_noise=0.0,   # Gaussian noise std on D's input (train only)
      discriminator_hidden_noise=0.0,  # on D's hidden layers (mlp)
      discriminator_dropout=0.0,
  )
  # Each objective's hyperparameters (clip, penalty_weight, margin, ...): None
  # means the objective's published value (objectives.py).
  model.update(dict.fromkeys(objectives.hyperparameter_names()))
  if kind in ("acgan",):
    model["class_weight"] = 1.0           # weight of the auxiliary classifier loss
  if kind == "infogan":
    model.update(categorical=10,          # categories of the one categorical code
                 continuous=2,            # continuous codes, U(-1, 1)
                 info_weight=1.0,         # λ for the categorical code (Chen et al. 2016)
                 continuous_weight=0.1,   # λ for the continuous codes
                 q_hidden=128)
  if kind == "ssgan":
    # Salimans et al. 2016's permutation-invariant MNIST model at digits scale:
    # MLPs, batch norm in G, Gaussian noise (std 0.3 on the input, 0.5 on the
    # hidden layers) in D, feature matching for G.
    model.update(labels_per_class=10,     # labelled examples per class
                 unsupervised_weight=1.0,  # 0: a classifier trained on the labels alone
                 architecture="mlp", generator_hidden=(256, 256),
                 discriminator_hidden=(512, 256, 256), generator_norm="batch",
                 discriminator_input_noise=0.3, discriminator_hidden_noise=0.5)
  tricks = dict(
      feature_matching=kind == "ssgan",  # generator matches D's mean features
      minibatch_discrimination=False,
      minibatch_kernels=50,          # B (Salimans et al. 2016)
      minibatch_kernel_dim=5,        # C
      virtual_batch_norm=False,      # in the generator, instead of its norm
      reference_batch_size=64,
      label_smoothing=0.0,           # one-sided: real targets 1 - value (0.1 in the paper)
      historical_averaging=0.0,      # weight of ‖θ - mean of past θ‖²
      consensus=0.0,                 # γ of consensus optimization (10 in the paper)
      r1_gamma=0.0,                  # γ of the R1 penalty (10 in Mescheder et al. 2018)
  )
  config = two_player.config_sections(
      model, extra=dict(tricks=tricks),
      objective_keys=False,   # `model` has them already, before the kind's keys
      data=dict(batch_size=128) if vectors else dict(batch_size=64, scale="symmetric"),
      steps=5000 if vectors else 3000)
  if kind == "infogan":
    # Chen et al. 2016, MNIST: 2e-4 for D, 1e-3 for G.
    config.generator_optim.learning_rate = 1e-3
    config.discriminator_optim.learning_rate = 2e-4
  return config


# ------------------------------------------------------- typed config sections
@dataclasses.dataclass(frozen=True)
class ModelSection:
  """`config.model` as typed values (objective hyperparameters apart)."""

  objective: str
  architecture: str = field(choices=ARCHITECTURES)
  latent_dim: int = field(minimum=1)
  generator_hidden: tuple[int, ...] = field(minimum=1)
  discriminator_hidden: tuple[int, ...] = field(minimum=1)
  generator_channels: tuple[int, ...] = field(minimum=1)
  discriminator_channels: tuple[int, ...] = field(minimum=1)
  generator_norm: str | None = field(choices=GENERATOR_NORMS)
  discriminator_norm: str | None = field(choices=DISCRIMINATOR_NORMS)
  n_critic: int | None = field(minimum=1)
  critic_data: str = field(choices=CRITIC_DATA)
  code_dim: int = field(minimum=1)
  style_dim: int = field(minimum=1)
  mapping_layers: int = field(minimum=1)
  style_noise: bool = field()
  ema_decay: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  sample_from: str = field(choices=SAMPLE_FROM)
  discriminator_input_noise: float = field(minimum=0.0)
  discriminator_hidden_noise: float = field(minimum=0.0)
  discriminator_dropout: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  # Conditioning (only in the configs of the methods that read them).
  class_weight: float = field(minimum=0.0, default=0.0)
  categorical: int = field(minimum=0, default=0)
  continuous: int = field(minimum=0, default=0)
  info_weight: float = field(minimum=0.0, default=0.0)
  continuous_weight: float = field(minimum=0.0, default=0.0)
  q_hidden: int = field(minimum=1, default=128)
  labels_per_class: int = field(minimum=1, default=1)
  unsupervised_weight: float = field(minimum=0.0, default=1.0)


@dataclasses.dataclass(frozen=True)
class TricksSection:
  """`config.tricks` as typed values."""

  feature_matching: bool = field()
  minibatch_discrimination: bool = field()
  minibatch_kernels: int = field(minimum=1)
  minibatch_kernel_dim: int = field(minimum=1)
  virtual_batch_norm: bool = field()
  reference_batch_size: int = field(minimum=1)
  label_smoothing: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  historical_averaging: float = field(minimum=0.0)
  consensus: float = field(minimum=0.0)
  r1_gamma: float = field(minimum=0.0)


# ------------------------------------------------------------- the settings
@dataclasses.dataclass(frozen=True)
class Settings:
  """The resolved, checked settings a GAN method is built from (plain values)."""

  kind: str
  objective: str
  hyperparameters: Mapping[str, Any]   # the objective's, resolved
  architecture: str
  latent_dim: int
  generator_hidden: tuple[int, ...]
  discriminator_hidden: tuple[int, ...]
  generator_channels: tuple[int, ...]
  discriminator_channels: tuple[int, ...]
  generator_norm: str
  discriminator_norm: str
  n_critic: int
  critic_data: str
  code_dim: int
  style_dim: int
  mapping_layers: int
  style_noise: bool
  ema_decay: float
  sample_from: str
  input_noise: float
  hidden_noise: float
  dropout: float
  num_classes: int
  class_weight: float
  categorical: int
  continuous: int
  info_weight: float
  continuous_weight: float
  q_hidden: int
  labels_per_class: int
  unsupervised_weight: float
  feature_matching: bool
  minibatch_kernels: int
  minibatch_kernel_dim: int
  reference_batch: int
  label_smoothing: float
  historical_averaging: float
  consensus: float
  r1_gamma: float
  generator_optim: ml_collections.ConfigDict
  discriminator_optim: ml_collections.ConfigDict
  paper: str

  def to_json(self) -> dict[str, Any]:
    """The resolved values, for eval protocols and logs (hyperparameters inline)."""
    out = {}
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name == "hyperparameters":
        out.update(value)
        continue
      out[f.name] = (value.to_dict() if isinstance(value, ml_collections.ConfigDict)
                     else list(value) if isinstance(value, tuple) else value)
    return out


def _norms(m: ModelSection, t: TricksSection, penalized: bool) -> tuple[str, str]:
  """(generator norm, discriminator norm) with the architecture's defaults."""
  arch = m.architecture
  generator_norm = m.generator_norm or ("batch" if arch == "dcgan" else "none")
  if arch == "style" and generator_norm != "none":
    raise ConfigError("model.generator_norm must be 'none' with the style generator "
                      "(AdaIN normalizes its activations)")
  discriminator_norm = m.discriminator_norm or (
      ("layer" if penalized else "batch") if arch in ("dcgan", "style") else "none")
  if penalized and discriminator_norm == "batch":
    raise ConfigError("gradient penalties need per-example discriminator outputs, which "
                      "batch norm couples; set model.discriminator_norm='layer' or 'none'")
  if penalized and t.minibatch_discrimination:
    raise ConfigError("gradient penalties need per-example discriminator outputs, which "
                      "minibatch discrimination couples; turn one of them off")
  if t.virtual_batch_norm:
    if arch == "style":
      raise ConfigError("tricks.virtual_batch_norm needs a generator with normalization "
                        "layers; the style generator has AdaIN instead")
    generator_norm = "virtual"
  return generator_norm, discriminator_norm


def _check_architecture(m: ModelSection, spec: Any) -> None:
  arch = m.architecture
  if arch in ("dcgan", "style") and len(spec.shape) != 3:
    raise ConfigError(f"model.architecture={arch!r} needs image data [H, W, C]; dataset "
                      f"{spec.name!r} gives examples of shape {tuple(spec.shape)}; use "
                      f"model.architecture='mlp'")
  if arch == "dcgan":
    check_image_shape(spec.shape, len(m.generator_channels))
    check_image_shape(spec.shape, len(m.discriminator_channels))
  if arch == "style":
    if len(m.generator_channels) < 2:
      raise ConfigError(f"model.architecture='style' needs at least two generator "
                        f"levels in model.generator_channels, got {m.generator_channels}")
    check_image_shape(spec.shape, len(m.generator_channels) - 1)
    check_image_shape(spec.shape, len(m.discriminator_channels))
  if m.sample_from == "ema" and m.ema_decay == 0:
    raise ConfigError("model.sample_from='ema' needs model.ema_decay > 0; set "
                      "model.sample_from='generator' or an EMA decay such as 0.999")
  if m.discriminator_hidden_noise > 0 and arch != "mlp":
    raise ConfigError("model.discriminator_hidden_noise applies to the mlp "
                      "discriminator; use discriminator_input_noise or dropout")


def _check_conditioning(kind: str, m: ModelSection, entry: objectives.Objective,
                        spec: Any) -> int:
  """Checks the method's conditioning; returns the number of classes."""
  num_classes = int(spec.num_classes or 0)
  if kind in ("cgan", "acgan", "ssgan") and not num_classes:
    raise ConfigError(f"method {kind!r} needs labelled data; dataset {spec.name!r} has "
                      f"no labels (or data.labels=False)")
  if kind in ("acgan", "infogan", "ssgan") and entry.autoencoder:
    raise ConfigError(f"method {kind!r} puts extra heads on the discriminator; the "
                      f"autoencoder objective {m.objective!r} has none; choose another "
                      f"model.objective")
  if kind == "ssgan":
    # Salimans et al. 2016's unsupervised loss is the cross-entropy, unpenalized.
    valid = [n for n, o in objectives.OBJECTIVES.items()
             if o.output == "logit" and o.penalty is None]
    if m.objective not in valid:
      raise ConfigError(f"ssgan's unsupervised loss is the cross-entropy of Salimans et "
                        f"al. 2016; model.objective must be {choices(valid)}, got "
                        f"{m.objective!r}")
  if kind == "infogan" and (m.categorical + m.continuous == 0 or m.categorical == 1):
    raise ConfigError(f"infogan needs codes: model.categorical (0 or >= 2 categories) "
                      f"and model.continuous (>= 0), not both 0; got {m.categorical} "
                      f"and {m.continuous}")
  return num_classes


def _check_tricks(t: TricksSection, entry: objectives.Objective, objective: str,
                  n_critic: int) -> None:
  if t.label_smoothing and entry.output != "logit":
    valid = [n for n, o in objectives.OBJECTIVES.items() if o.output == "logit"]
    raise ConfigError(f"tricks.label_smoothing applies to the cross-entropy objectives "
                      f"{choices(valid)}, not {objective!r}")
  if t.minibatch_discrimination and entry.autoencoder:
    raise ConfigError(f"tricks.minibatch_discrimination adds features before the "
                      f"discriminator's output layer; the autoencoder objective "
                      f"{objective!r} has none")
  if t.consensus and n_critic != 1:
    raise ConfigError(f"tricks.consensus updates both players simultaneously; set "
                      f"model.n_critic=1 (got {n_critic})")
  if t.r1_gamma and entry.autoencoder:
    raise ConfigError("tricks.r1_gamma penalises a scalar discriminator output; the "
                      f"autoencoder objective {objective!r} has energies")


def resolve(config: ml_collections.ConfigDict, spec: Any, kind: str) -> Settings:
  """Checks `config` against the data and fills the objective's defaults."""
  objective = config.model.objective
  entry = objectives.get(objective)
  hyper, m = two_player.resolve_model(ModelSection, config)
  t = core_settings.resolve(TricksSection, config.tricks, "tricks")
  _check_architecture(m, spec)
  penalized = entry.penalty is not None or t.r1_gamma > 0
  generator_norm, discriminator_norm = _norms(m, t, penalized)
  n_critic = m.n_critic or entry.n_critic
  if m.critic_data == "split" and config.data.batch_size % n_critic:
    raise ConfigError(f"model.critic_data='split' needs data.batch_size "
                      f"({config.data.batch_size}) divisible by model.n_critic ({n_critic})")
  num_classes = _check_conditioning(kind, m, entry, spec)
  _check_tricks(t, entry, objective, n_critic)
  generator_optim, discriminator_optim = two_player.resolve_optimizers(config, entry.optim)
  return Settings(
      kind=kind, objective=objective, hyperparameters=hyper,
      architecture=m.architecture, latent_dim=m.latent_dim,
      generator_hidden=m.generator_hidden, discriminator_hidden=m.discriminator_hidden,
      generator_channels=m.generator_channels,
      discriminator_channels=m.discriminator_channels,
      generator_norm=generator_norm, discriminator_norm=discriminator_norm,
      n_critic=n_critic, critic_data=m.critic_data, code_dim=m.code_dim,
      style_dim=m.style_dim, mapping_layers=m.mapping_layers, style_noise=m.style_noise,
      ema_decay=m.ema_decay, sample_from=m.sample_from,
      input_noise=m.discriminator_input_noise, hidden_noise=m.discriminator_hidden_noise,
      dropout=m.discriminator_dropout, num_classes=num_classes,
      class_weight=m.class_weight, categorical=m.categorical, continuous=m.continuous,
      info_weight=m.info_weight, continuous_weight=m.continuous_weight,
      q_hidden=m.q_hidden, labels_per_class=m.labels_per_class,
      unsupervised_weight=m.unsupervised_weight, feature_matching=t.feature_matching,
      minibatch_kernels=t.minibatch_kernels if t.minibatch_discrimination else 0,
      minibatch_kernel_dim=t.minibatch_kernel_dim,
      reference_batch=t.reference_batch_size if t.virtual_batch_norm else 0,
      label_smoothing=t.label_smoothing, historical_averaging=t.historical_averaging,
      consensus=t.consensus, r1_gamma=t.r1_gamma,
      generator_optim=generator_optim, discriminator_optim=discriminator_optim,
      paper=entry.paper)
