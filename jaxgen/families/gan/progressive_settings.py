"""pggan's config, settings, stage schedule and networks (see progressive.py).

`resolve` checks a config against the data and fills the objective's
published values; `Schedule` maps a step to its stage and α (pure functions
of the step); `Networks` holds the two networks, the data's geometry (padding
to a power of two, the real images as D sees them at each stage) and the
layers each stage uses.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgen.core import precision
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import objectives, two_player
from jaxgen.nn import progressive as nets_lib

Array = jax.Array
Params = dict[str, Any]

SAMPLE_FROM = ("ema", "generator")


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """pggan's config sections on dataset `data` (CPU-sized; the paper's values beside)."""
  digits = data == "digits"
  model = dict(
      objective="wgan_gp_drift",   # any non-autoencoder objective without DRAGAN's penalty
      latent_dim=32 if digits else 64,                      # paper: 512
      # One width per resolution 4, 8, ..., the data's (padded) size; G and D alike.
      channels=(64, 32) if digits else (64, 64, 32, 16),    # paper: min(8192/2^k, 512)
      fade_images=32_000,          # images over which α rises 0 -> 1 (paper: 800k)
      stable_images=32_000,        # images of each stage after its fade (paper: 800k)
      equalized_lr=True,           # weights N(0, 1), scaled by √(2/fan_in) at run time
      pixel_norm=True,             # pixelwise feature normalisation in G (and on z)
      minibatch_group=4,           # minibatch stddev group size in D; 0: off
      n_critic=None,               # None: the objective's (1 for wgan_gp_drift)
      ema_decay=0.999,             # EMA of G's weights (paper: 0.999)
      sample_from="ema",           # 'ema' or 'generator'
  )
  return two_player.config_sections(model, data=dict(batch_size=64, scale="symmetric"),
                                    steps=3000)


# ------------------------------------------------------------------ settings
@dataclasses.dataclass(frozen=True)
class ModelSection:
  """`config.model` of pggan as typed values (objective hyperparameters apart)."""

  objective: str
  latent_dim: int = field(minimum=1)
  channels: tuple[int, ...] = field(minimum=1)
  fade_images: int = field(minimum=0)
  stable_images: int = field(minimum=1)
  equalized_lr: bool = field()
  pixel_norm: bool = field()
  minibatch_group: int = field(minimum=0)
  n_critic: int | None = field(minimum=1)
  ema_decay: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  sample_from: str = field(choices=SAMPLE_FROM)


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Stages and α as pure functions of the step (steps taken before it).

  Stage 0 lasts `stable_steps`; stage s >= 1 fades in over `fade_steps`, then
  stabilises for `stable_steps`; the last stage runs to the end. In the k-th
  step of a fade (k = 1, 2, ...) α = min(1, k / fade_steps).
  """

  num_stages: int
  fade_steps: int
  stable_steps: int

  @property
  def starts(self) -> tuple[int, ...]:
    """The first step of every stage."""
    return tuple(0 if s == 0 else self.stable_steps + (s - 1) * (
        self.fade_steps + self.stable_steps) for s in range(self.num_stages))

  def stage(self, step: int) -> int:
    """The stage of step `step` (a Python int; see `stage_array`)."""
    return bisect.bisect_right(self.starts, max(int(step), 0)) - 1

  def stage_array(self, step: Array) -> Array:
    """The stage of a traced step (int32 scalar)."""
    starts = jnp.asarray(self.starts[1:], jnp.int32)
    return jnp.sum(jnp.asarray(step, jnp.int32) >= starts).astype(jnp.int32)

  def alpha(self, step: Array | int, stage: int) -> Array:
    """α of step `step` within `stage` (static): float32, 1 outside fades."""
    if stage == 0 or self.fade_steps == 0:
      return jnp.ones((), jnp.float32)
    k = jnp.asarray(step, jnp.int32) - self.starts[stage] + 1
    return jnp.clip(k.astype(jnp.float32) / self.fade_steps, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Resolved pggan settings: model keys, the objective's values, derived sizes."""

  model: ModelSection
  hyperparameters: Mapping[str, Any]
  n_critic: int
  generator_optim: ml_collections.ConfigDict
  discriminator_optim: ml_collections.ConfigDict
  resolution: int                 # the data's size padded to a power of two
  schedule: Schedule
  paper: str

  def to_json(self) -> dict[str, Any]:
    return {**dataclasses.asdict(self.model), "channels": list(self.model.channels),
            **self.hyperparameters, "n_critic": self.n_critic,
            "resolution": self.resolution, "stage_starts": list(self.schedule.starts),
            "fade_steps": self.schedule.fade_steps,
            "stable_steps": self.schedule.stable_steps,
            "generator_optim": self.generator_optim.to_dict(),
            "discriminator_optim": self.discriminator_optim.to_dict()}


def _check_objective(name: str, entry: objectives.Objective) -> None:
  valid = [n for n, o in objectives.OBJECTIVES.items()
           if not o.autoencoder and not o.controller and o.penalty in (None, "interpolates")]
  if name not in valid:
    raise ConfigError(f"pggan's discriminator has one score output and takes only the "
                      f"interpolates' gradient penalty; model.objective must be "
                      f"{choices(valid)}, got {name!r}")


def _resolution(spec: Any, channels: tuple[int, ...]) -> int:
  shape = tuple(spec.shape)
  if len(shape) != 3 or shape[0] != shape[1] or shape[0] < 2:
    raise ConfigError(f"pggan needs square images [H, H, C]; dataset {spec.name!r} gives "
                      f"examples of shape {shape}")
  resolution = max(4, 2 ** math.ceil(math.log2(shape[0])))
  sizes = [4 * 2**s for s in range(int(math.log2(resolution)) - 1)]
  if len(channels) != len(sizes):
    raise ConfigError(f"model.channels needs one width per resolution {sizes} (data "
                      f"{shape[0]}x{shape[1]} padded to {resolution}); got {channels}")
  return resolution


def resolve(config: ml_collections.ConfigDict, spec: Any) -> Settings:
  """Checks `config` against the data; fills the objective's published values."""
  entry = objectives.get(config.model.objective)
  _check_objective(config.model.objective, entry)
  hyper, m = two_player.resolve_model(ModelSection, config)
  resolution = _resolution(spec, m.channels)
  batch = int(config.data.batch_size)
  eval_batch = int(config.train.get("eval_batch_size", 0) or batch)
  group = m.minibatch_group
  for name, size in (("data.batch_size", batch), ("train.eval_batch_size", eval_batch)):
    if group and size >= group and size % group:
      raise ConfigError(f"{name}={size} does not split into minibatch-stddev groups of "
                        f"model.minibatch_group={group}; use a multiple of {group}")
  if m.sample_from == "ema" and m.ema_decay == 0:
    raise ConfigError("model.sample_from='ema' needs model.ema_decay > 0; set "
                      "model.sample_from='generator' or an EMA decay such as 0.999")
  schedule = Schedule(num_stages=len(m.channels),
                      fade_steps=-(-m.fade_images // batch),
                      stable_steps=-(-m.stable_images // batch))
  generator_optim, discriminator_optim = two_player.resolve_optimizers(config, entry.optim)
  return Settings(
      model=m, hyperparameters=hyper, n_critic=m.n_critic or entry.n_critic,
      generator_optim=generator_optim, discriminator_optim=discriminator_optim,
      resolution=resolution, schedule=schedule, paper=entry.paper)


# ------------------------------------------------------------------ networks
@dataclasses.dataclass(frozen=True)
class Networks:
  """The two networks, the data's geometry and which layers each stage uses."""

  s: Settings
  objective: objectives.Objective
  shape: tuple[int, ...]                    # the data's [H, W, C]
  value_range: tuple[float, float]
  generator_layers: tuple[tuple[str, ...], ...] = ()     # per stage
  discriminator_layers: tuple[tuple[str, ...], ...] = ()
  compute_dtype: str = "float32"                          # train.compute_dtype

  @property
  def generator(self) -> nets_lib.ProgressiveGenerator:
    m = self.s.model
    return precision.wrap(nets_lib.ProgressiveGenerator(
        channels=m.channels, out_channels=self.shape[-1], pixel_norm=m.pixel_norm,
        equalized=m.equalized_lr), self.compute_dtype)

  @property
  def discriminator(self) -> nets_lib.ProgressiveDiscriminator:
    m = self.s.model
    return precision.wrap(nets_lib.ProgressiveDiscriminator(
        channels=m.channels, minibatch_group=m.minibatch_group,
        equalized=m.equalized_lr), self.compute_dtype)

  @property
  def num_stages(self) -> int:
    return self.s.schedule.num_stages

  def size(self, stage: int) -> int:
    return 4 * 2**stage

  def generate(self, params: Params, z: Array, stage: int, alpha: Array) -> Array:
    """G at `stage` (params: at least its layers): [N, 4·2^stage, ., C]."""
    used = {k: params[k] for k in self.generator_layers[stage]}
    return self.generator.apply({"params": used}, z, stage=stage, alpha=alpha)

  def discriminate(self, params: Params, x: Array, stage: int, alpha: Array) -> Array:
    used = {k: params[k] for k in self.discriminator_layers[stage]}
    return self.discriminator.apply({"params": used}, x, stage=stage, alpha=alpha)

  def pad(self, x: Array) -> Array:
    """Data [N, H, W, C] -> [N, R, R, C], padded with the range's low value."""
    extra = self.s.resolution - self.shape[0]
    if not extra:
      return x
    before, after = extra // 2, extra - extra // 2
    return jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)),
                   constant_values=self.value_range[0])

  def reals(self, x: Array, stage: int, alpha: Array) -> Array:
    """Real data as D sees it at `stage`: downsampled, blended during a fade."""
    x = self.pad(x)
    for _ in range(self.num_stages - 1 - stage):
      x = nets_lib.downsample(x)
    if stage > 0:
      x = nets_lib.fade(nets_lib.upsample(nets_lib.downsample(x)), x, alpha)
    return x

  def to_data(self, x: Array, stage: int) -> Array:
    """G's output at `stage` -> data space: upsampled, cropped, clipped to the range."""
    for _ in range(self.num_stages - 1 - stage):
      x = nets_lib.upsample(x)
    top = (self.s.resolution - self.shape[0]) // 2
    x = x[:, top:top + self.shape[0], top:top + self.shape[1]]
    return jnp.clip(x, *self.value_range)

  def loss_values(self) -> dict[str, Any]:
    return {**self.s.hyperparameters, "real_target": 1.0, "k": jnp.zeros(())}


def _layers(module, stage: int, example: Array) -> tuple[str, ...]:
  shapes = jax.eval_shape(lambda k: module.init(k, example, stage=stage, alpha=1.0),
                          jax.random.PRNGKey(0))
  return tuple(shapes["params"])


def build_networks(config: ml_collections.ConfigDict, spec: Any) -> Networks:
  """Settings, objective and per-stage layer names for `config` on `spec`."""
  s = resolve(config, spec)
  nets = Networks(s=s, objective=objectives.get(s.model.objective),
                  shape=tuple(spec.shape),
                  value_range=tuple(float(v) for v in spec.value_range),
                  compute_dtype=precision.compute_dtype(config))
  z = jnp.zeros((2, s.model.latent_dim))
  channels = spec.shape[-1]
  return dataclasses.replace(
      nets,
      generator_layers=tuple(_layers(nets.generator, st, z) for st in range(nets.num_stages)),
      discriminator_layers=tuple(
          _layers(nets.discriminator, st, jnp.zeros((2, nets.size(st), nets.size(st),
                                                     channels)))
          for st in range(nets.num_stages)))
