"""GAN configs: each objective's published defaults, and checking a config.

Keys whose default is None mean "the chosen objective's published value": the
optimizers, `model.n_critic`, `model.clip`, `model.penalty_weight`, EBGAN's
margin and pull-away weight, BEGAN's γ and λ_k, the discriminator's
normalization. `resolve` fills them from `OBJECTIVES` when the method is made,
so `--set model.objective=wgan` alone gives RMSProp(5e-5), clip 0.01 and five
critic steps; any key the user sets wins. Settings that do not apply to the
chosen objective or conditioning are refused with a one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import losses
from jaxgen.nn import check_image_shape

KINDS = ("gan", "cgan", "acgan", "infogan", "ssgan")
ARCHITECTURES = ("mlp", "dcgan", "style")
GENERATOR_NORMS = ("none", "batch", "layer")
DISCRIMINATOR_NORMS = ("none", "batch", "layer")
CRITIC_DATA = ("reuse", "split")
SAMPLE_FROM = ("ema", "generator")
FGAN_GENERATOR = ("saddle", "alternative")

# Objectives whose discriminator loss is a binary cross-entropy (label
# smoothing applies), with a gradient penalty, or with an autoencoder critic.
CROSS_ENTROPY = ("non_saturating", "minimax", "dragan")
PENALIZED = ("wgan_gp", "dragan")
AUTOENCODER = ("ebgan", "began")


def _adam(learning_rate: float, b1: float, b2: float = 0.999) -> dict[str, Any]:
  return dict(name="adam", learning_rate=learning_rate, b1=b1, b2=b2)


# name -> (paper, optimizer for both players, n_critic, other model defaults).
OBJECTIVES: dict[str, dict[str, Any]] = {
    "non_saturating": dict(
        paper="Goodfellow et al. 2014 (-log D(G(z))); Adam of Radford et al. 2016",
        optim=_adam(2e-4, 0.5), n_critic=1),
    "minimax": dict(
        paper="Goodfellow et al. 2014 (saturating log(1 - D(G(z)))); Adam of "
              "Radford et al. 2016",
        optim=_adam(2e-4, 0.5), n_critic=1),
    "lsgan": dict(paper="Mao et al. 2017 (a, b, c = 0, 1, 1)",
                  optim=_adam(2e-4, 0.5), n_critic=1),
    "wgan": dict(paper="Arjovsky et al. 2017 (RMSProp, decay 0.99 as in Torch)",
                 optim=dict(name="rmsprop", learning_rate=5e-5, decay=0.99),
                 n_critic=5, clip=0.01),
    "wgan_gp": dict(paper="Gulrajani et al. 2017 (algorithm 1)",
                    optim=_adam(1e-4, 0.0, 0.9), n_critic=5, penalty_weight=10.0),
    "dragan": dict(paper="Kodali et al. 2017 (reference code)",
                   optim=_adam(1e-4, 0.5, 0.9), n_critic=1, penalty_weight=10.0),
    "hinge": dict(paper="Lim & Ye 2017; Miyato et al. 2018 (n_dis = 5, β = (0, 0.9))",
                  optim=_adam(2e-4, 0.0, 0.9), n_critic=5),
    "ebgan": dict(paper="Zhao et al. 2017 (margin on per-value MSE energies, "
                        "pull-away weight 0.1)",
                  optim=_adam(1e-3, 0.5), n_critic=1, margin=1.0, pull_away_weight=0.1),
    "began": dict(paper="Berthelot et al. 2017 (γ = 0.5, λ_k = 0.001, k_0 = 0)",
                  optim=_adam(1e-4, 0.5), n_critic=1, began_gamma=0.5,
                  began_lambda_k=0.001),
    "fgan": dict(paper="Nowozin et al. 2016", optim=_adam(2e-4, 0.5), n_critic=1),
}
OBJECTIVE_NAMES = tuple(OBJECTIVES)
# Model keys that only some objectives read: key -> objectives that read it.
OBJECTIVE_KEYS = {
    "clip": ("wgan",),
    "penalty_weight": PENALIZED,
    "margin": ("ebgan",),
    "pull_away_weight": ("ebgan",),
    "began_gamma": ("began",),
    "began_lambda_k": ("began",),
    "divergence": ("fgan",),
    "alpha": ("fgan",),
}


def objectives_help() -> str:
  """One line naming every objective (for the registry and errors)."""
  return (", ".join(OBJECTIVE_NAMES[:-1]) + ", fgan (model.divergence="
          + "|".join(losses.DIVERGENCES) + ")")


def _optim_section() -> ml_collections.ConfigDict:
  """An optimizer section whose every key defaults to the objective's value."""
  return ml_collections.ConfigDict({k: None for k in optim.default_config()})


def default_config(kind: str, data: str) -> ml_collections.ConfigDict:
  """The config sections of method `kind` on dataset `data`."""
  vectors = data.startswith("toy2d:")
  small = data == "digits"
  model = dict(
      objective="non_saturating",   # see OBJECTIVES; fgan takes model.divergence
      divergence=None,              # fgan: one of losses.DIVERGENCES (default 'gan')
      alpha=None,                   # fgan divergence='alpha': α ∉ {0, 1} (default 0.5)
      fgan_generator="alternative",  # 'saddle' (-f*(g(V))) or 'alternative' (-g(V))
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
      clip=None,                 # wgan: weight clipping bound
      penalty_weight=None,       # wgan_gp, dragan: λ
      margin=None,               # ebgan
      pull_away_weight=None,     # ebgan: λ_PT
      began_gamma=None,          # began: diversity ratio γ
      began_lambda_k=None,       # began: k_t learning rate
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
  sections = dict(
      model=model, tricks=tricks,
      generator_optim=_optim_section(), discriminator_optim=_optim_section(),
      data=dict(batch_size=128) if vectors else dict(batch_size=64, scale="symmetric"),
      train=dict(steps=5000 if vectors else 3000, eval_every=1000, sample_every=1000,
                 checkpoint_every=1000),
  )
  if kind == "infogan":
    # Chen et al. 2016, MNIST: 2e-4 for D, 1e-3 for G.
    sections["generator_optim"].learning_rate = 1e-3
    sections["discriminator_optim"].learning_rate = 2e-4
  return ml_collections.ConfigDict(sections)


@dataclasses.dataclass(frozen=True)
class Settings:
  """The resolved, checked settings a GAN method is built from (plain values)."""

  kind: str
  objective: str
  divergence: str | None
  alpha: float | None
  fgan_generator: str
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
  clip: float | None
  penalty_weight: float
  margin: float | None
  pull_away_weight: float
  began_gamma: float | None
  began_lambda_k: float | None
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
    """The resolved values, for eval protocols and logs."""
    out = {}
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      out[field.name] = (value.to_dict() if isinstance(value, ml_collections.ConfigDict)
                         else list(value) if isinstance(value, tuple) else value)
    return out


def _resolved_optim(section: ml_collections.ConfigDict, defaults: dict[str, Any],
                    name: str) -> ml_collections.ConfigDict:
  cfg = optim.default_config()
  for key, value in defaults.items():
    cfg[key] = value
  for key, value in section.items():
    if key not in cfg:
      raise ConfigError(f"unknown config key {name}.{key!r}; valid: "
                        f"{choices(sorted(cfg.keys()))}")
    if value is not None:
      cfg[key] = value
  if cfg.name not in optim.OPTIMIZERS:
    raise ConfigError(f"{name}.name={cfg.name!r} is not one of {choices(optim.OPTIMIZERS)}")
  return cfg


def resolve(config: ml_collections.ConfigDict, spec: Any, kind: str) -> Settings:
  """Checks `config` against the data and fills the objective's defaults."""
  m, t = config.model, config.tricks
  objective = m.objective
  if objective not in OBJECTIVES:
    raise ConfigError(f"model.objective={objective!r} is not one of "
                      f"{choices(OBJECTIVE_NAMES)}")
  table = OBJECTIVES[objective]
  for key, readers in OBJECTIVE_KEYS.items():
    if m.get(key) is not None and objective not in readers:
      raise ConfigError(f"model.{key} applies to objective {choices(readers)}, not "
                        f"{objective!r}; remove it or change model.objective")

  def pick(key: str, fallback: Any = None) -> Any:
    value = m.get(key)
    return table.get(key, fallback) if value is None else value

  for key, valid in (("architecture", ARCHITECTURES), ("critic_data", CRITIC_DATA),
                     ("sample_from", SAMPLE_FROM), ("fgan_generator", FGAN_GENERATOR)):
    if m[key] not in valid:
      raise ConfigError(f"model.{key}={m[key]!r} is not one of {choices(valid)}")
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
                        f"levels in model.generator_channels, got {tuple(m.generator_channels)}")
    check_image_shape(spec.shape, len(m.generator_channels) - 1)
    check_image_shape(spec.shape, len(m.discriminator_channels))
  if m.latent_dim < 1:
    raise ConfigError(f"model.latent_dim must be at least 1, got {m.latent_dim}")

  generator_norm = m.generator_norm or ("batch" if arch == "dcgan" else "none")
  if generator_norm not in GENERATOR_NORMS:
    raise ConfigError(f"model.generator_norm={generator_norm!r} is not one of "
                      f"{choices(GENERATOR_NORMS)} (virtual batch norm is "
                      f"tricks.virtual_batch_norm)")
  if arch == "style" and generator_norm != "none":
    raise ConfigError("model.generator_norm must be 'none' with the style generator "
                      "(AdaIN normalizes its activations)")
  needs_per_example = objective in PENALIZED or t.r1_gamma > 0
  discriminator_norm = m.discriminator_norm or (
      ("layer" if needs_per_example else "batch") if arch in ("dcgan", "style") else "none")
  if discriminator_norm not in DISCRIMINATOR_NORMS:
    raise ConfigError(f"model.discriminator_norm={discriminator_norm!r} is not one of "
                      f"{choices(DISCRIMINATOR_NORMS)}")
  if needs_per_example and discriminator_norm == "batch":
    raise ConfigError("gradient penalties need per-example discriminator outputs, which "
                      "batch norm couples; set model.discriminator_norm='layer' or 'none'")
  if needs_per_example and t.minibatch_discrimination:
    raise ConfigError("gradient penalties need per-example discriminator outputs, which "
                      "minibatch discrimination couples; turn one of them off")

  n_critic = pick("n_critic")
  if not isinstance(n_critic, int) or n_critic < 1:
    raise ConfigError(f"model.n_critic must be a positive integer, got {n_critic!r}")
  if m.critic_data == "split" and config.data.batch_size % n_critic:
    raise ConfigError(f"model.critic_data='split' needs data.batch_size "
                      f"({config.data.batch_size}) divisible by model.n_critic ({n_critic})")
  clip = pick("clip")
  if clip is not None and clip <= 0:
    raise ConfigError(f"model.clip must be positive, got {clip}")
  penalty_weight = float(pick("penalty_weight", 0.0))
  if penalty_weight < 0:
    raise ConfigError(f"model.penalty_weight must be non-negative, got {penalty_weight}")
  divergence = alpha = None
  if objective == "fgan":
    divergence = m.divergence or "gan"
    alpha = float(m.alpha) if m.alpha is not None else 0.5
    if m.alpha is not None and divergence != "alpha":
      raise ConfigError(f"model.alpha applies to model.divergence='alpha', not "
                        f"{divergence!r}")
    losses.divergence(divergence, alpha)  # raises on bad names and α
  if objective == "began":
    if not 0 < pick("began_gamma") <= 1:
      raise ConfigError(f"model.began_gamma must be in (0, 1], got {pick('began_gamma')}")

  if not 0 <= m.ema_decay < 1:
    raise ConfigError(f"model.ema_decay must be in [0, 1), got {m.ema_decay}")
  if m.sample_from == "ema" and m.ema_decay == 0:
    raise ConfigError("model.sample_from='ema' needs model.ema_decay > 0; set "
                      "model.sample_from='generator' or an EMA decay such as 0.999")
  for key in ("discriminator_input_noise", "discriminator_hidden_noise"):
    if m[key] < 0:
      raise ConfigError(f"model.{key} must be non-negative, got {m[key]}")
  if not 0 <= m.discriminator_dropout < 1:
    raise ConfigError(f"model.discriminator_dropout must be in [0, 1), got "
                      f"{m.discriminator_dropout}")
  if m.discriminator_hidden_noise > 0 and arch != "mlp":
    raise ConfigError("model.discriminator_hidden_noise applies to the mlp "
                      "discriminator; use discriminator_input_noise or dropout")

  # Conditioning.
  num_classes = int(spec.num_classes or 0)
  if kind in ("cgan", "acgan", "ssgan") and not num_classes:
    raise ConfigError(f"method {kind!r} needs labelled data; dataset {spec.name!r} has "
                      f"no labels (or data.labels=False)")
  if kind in ("acgan", "infogan", "ssgan") and objective in AUTOENCODER:
    raise ConfigError(f"method {kind!r} puts extra heads on the discriminator; the "
                      f"autoencoder objective {objective!r} has none; choose another "
                      f"model.objective")
  if kind == "ssgan" and objective not in ("non_saturating", "minimax"):
    raise ConfigError(f"ssgan's unsupervised loss is the cross-entropy of Salimans et "
                      f"al. 2016; model.objective must be 'non_saturating' or "
                      f"'minimax', got {objective!r}")
  categorical = int(m.get("categorical", 0))
  continuous = int(m.get("continuous", 0))
  if kind == "infogan" and (categorical < 0 or continuous < 0
                            or categorical + continuous == 0 or categorical == 1):
    raise ConfigError(f"infogan needs codes: model.categorical (0 or >= 2 categories) "
                      f"and model.continuous (>= 0), not both 0; got {categorical} "
                      f"and {continuous}")
  labels_per_class = int(m.get("labels_per_class", 0))
  if kind == "ssgan" and labels_per_class < 1:
    raise ConfigError(f"model.labels_per_class must be at least 1, got {labels_per_class}")

  # Tricks.
  if t.label_smoothing and objective not in CROSS_ENTROPY:
    raise ConfigError(f"tricks.label_smoothing applies to the cross-entropy objectives "
                      f"{choices(CROSS_ENTROPY)}, not {objective!r}")
  if not 0 <= t.label_smoothing < 1:
    raise ConfigError(f"tricks.label_smoothing must be in [0, 1), got {t.label_smoothing}")
  if t.minibatch_discrimination and objective in AUTOENCODER:
    raise ConfigError(f"tricks.minibatch_discrimination adds features before the "
                      f"discriminator's output layer; the autoencoder objective "
                      f"{objective!r} has none")
  if t.minibatch_discrimination and (t.minibatch_kernels < 1 or t.minibatch_kernel_dim < 1):
    raise ConfigError("tricks.minibatch_kernels and tricks.minibatch_kernel_dim must be "
                      "at least 1")
  if t.virtual_batch_norm:
    if arch == "style":
      raise ConfigError("tricks.virtual_batch_norm needs a generator with normalization "
                        "layers; the style generator has AdaIN instead")
    if t.reference_batch_size < 1:
      raise ConfigError(f"tricks.reference_batch_size must be at least 1, got "
                        f"{t.reference_batch_size}")
    generator_norm = "virtual"
  for key in ("historical_averaging", "consensus", "r1_gamma"):
    if t[key] < 0:
      raise ConfigError(f"tricks.{key} must be non-negative, got {t[key]}")
  if t.consensus and n_critic != 1:
    raise ConfigError(f"tricks.consensus updates both players simultaneously; set "
                      f"model.n_critic=1 (got {n_critic})")
  if t.r1_gamma and objective in AUTOENCODER:
    raise ConfigError("tricks.r1_gamma penalises a scalar discriminator output; the "
                      f"autoencoder objective {objective!r} has energies")

  defaults = table["optim"]
  return Settings(
      kind=kind, objective=objective, divergence=divergence, alpha=alpha,
      fgan_generator=m.fgan_generator, architecture=arch, latent_dim=int(m.latent_dim),
      generator_hidden=tuple(m.generator_hidden),
      discriminator_hidden=tuple(m.discriminator_hidden),
      generator_channels=tuple(m.generator_channels),
      discriminator_channels=tuple(m.discriminator_channels),
      generator_norm=generator_norm, discriminator_norm=discriminator_norm,
      n_critic=n_critic, critic_data=m.critic_data, clip=clip,
      penalty_weight=penalty_weight, margin=pick("margin"),
      pull_away_weight=float(pick("pull_away_weight", 0.0)),
      began_gamma=pick("began_gamma"), began_lambda_k=pick("began_lambda_k"),
      code_dim=int(m.code_dim), style_dim=int(m.style_dim),
      mapping_layers=int(m.mapping_layers), style_noise=bool(m.style_noise),
      ema_decay=float(m.ema_decay), sample_from=m.sample_from,
      input_noise=float(m.discriminator_input_noise),
      hidden_noise=float(m.discriminator_hidden_noise),
      dropout=float(m.discriminator_dropout), num_classes=num_classes,
      class_weight=float(m.get("class_weight", 0.0)), categorical=categorical,
      continuous=continuous, info_weight=float(m.get("info_weight", 0.0)),
      continuous_weight=float(m.get("continuous_weight", 0.0)),
      q_hidden=int(m.get("q_hidden", 0)), labels_per_class=labels_per_class,
      unsupervised_weight=float(m.get("unsupervised_weight", 1.0)),
      feature_matching=bool(t.feature_matching),
      minibatch_kernels=int(t.minibatch_kernels) if t.minibatch_discrimination else 0,
      minibatch_kernel_dim=int(t.minibatch_kernel_dim),
      reference_batch=int(t.reference_batch_size) if t.virtual_batch_norm else 0,
      label_smoothing=float(t.label_smoothing),
      historical_averaging=float(t.historical_averaging), consensus=float(t.consensus),
      r1_gamma=float(t.r1_gamma),
      generator_optim=_resolved_optim(config.generator_optim, defaults, "generator_optim"),
      discriminator_optim=_resolved_optim(config.discriminator_optim, defaults,
                                          "discriminator_optim"),
      paper=table["paper"])
