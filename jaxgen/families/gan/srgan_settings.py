"""srgan's config, settings and networks (see srgan.py).

`resolve` checks a config against the data (square-enough images whose sides
the scale divides; a feature network for the data when the feature loss is
on) and fills the objective's hyperparameters; `Networks` holds the two
networks and the frozen feature network, and applies them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgen.core import collectives, precision
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError, choices
from jaxgen.families.gan import objectives, two_player
from jaxgen.metrics import lenet
from jaxgen.nn import lenet as lenet_nn
from jaxgen.nn import srresnet

Array = jax.Array
Params = dict[str, Any]

FEATURE_LAYERS = ("conv0", "conv1", "features")
SCALES = (2, 3, 4, 8)
# Ledig et al. 2017: Adam, learning rate 1e-4, β1 = 0.9, for both networks.
PAPER_OPTIM = objectives.adam(1e-4, 0.9)


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """srgan's config sections on `data` (CPU-sized; the paper's values beside)."""
  digits = data == "digits"
  model = dict(
      objective="non_saturating",  # the adversarial loss: -log D(G(x_lr)) (paper)
      scale=2 if digits else 4,    # 4x4 -> 8x8 on digits, 7x7 -> 28x28 on MNIST (paper: 4)
      features=32,                 # generator width (paper: 64)
      residual_blocks=4,           # B (paper: 16)
      generator_norm="batch",      # 'batch' (paper) or 'none'
      discriminator_channels=(32, 64) if digits else (32, 64, 128),  # paper: 64..512
      discriminator_hidden=128 if digits else 256,                    # paper: 1024
      discriminator_norm="batch",
      pixel_weight=1.0,            # weight of the pixel MSE (SRResNet-MSE, SRGAN-MSE)
      feature_weight=0.0,          # weight of the LeNet feature MSE (the VGG loss's stand-in)
      feature_layer="conv1",       # 'conv0', 'conv1' (after ReLU) or 'features' (hidden)
      adversarial_weight=1e-3,     # 1e-3 (paper); 0: the SRResNet baseline, D untrained
  )
  return two_player.config_sections(model, data=dict(batch_size=32, scale="symmetric"),
                                    steps=2000)


@dataclasses.dataclass(frozen=True)
class ModelSection:
  """`config.model` of srgan as typed values (objective hyperparameters apart)."""

  objective: str
  scale: int = field(choices=SCALES)
  features: int = field(minimum=1)
  residual_blocks: int = field(minimum=0)
  generator_norm: str = field(choices=srresnet.NORMS)
  discriminator_channels: tuple[int, ...] = field(minimum=1)
  discriminator_hidden: int = field(minimum=1)
  discriminator_norm: str = field(choices=srresnet.NORMS)
  pixel_weight: float = field(minimum=0.0)
  feature_weight: float = field(minimum=0.0)
  feature_layer: str = field(choices=FEATURE_LAYERS)
  adversarial_weight: float = field(minimum=0.0)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Resolved srgan settings."""

  model: ModelSection
  hyperparameters: Mapping[str, Any]
  generator_optim: ml_collections.ConfigDict
  discriminator_optim: ml_collections.ConfigDict
  feature_network: str | None      # 'digits' or 'mnist' when the feature loss is on
  paper: str

  @property
  def adversarial(self) -> bool:
    """Whether D is trained and G sees it (False: the SRResNet baseline)."""
    return self.model.adversarial_weight > 0

  def to_json(self) -> dict[str, Any]:
    return {**dataclasses.asdict(self.model),
            "discriminator_channels": list(self.model.discriminator_channels),
            **self.hyperparameters, "feature_network": self.feature_network,
            "generator_optim": self.generator_optim.to_dict(),
            "discriminator_optim": self.discriminator_optim.to_dict()}


def _check_objective(name: str) -> objectives.Objective:
  entry = objectives.get(name)
  valid = [n for n, o in objectives.OBJECTIVES.items()
           if not o.autoencoder and not o.controller and o.penalty is None
           and "clip" not in o.hyperparameters]
  if name not in valid:
    raise ConfigError(f"srgan's discriminator has one score output and no penalty or "
                      f"weight clipping; model.objective must be {choices(valid)}, "
                      f"got {name!r}")
  return entry


def _feature_network(spec: Any) -> str | None:
  for name, arch in lenet.ARCHITECTURES.items():
    if tuple(spec.shape) == tuple(arch["image_shape"]):
      return name
  return None


def resolve(config: ml_collections.ConfigDict, spec: Any) -> Settings:
  """Checks `config` against the data; fills the objective's published values."""
  entry = _check_objective(config.model.objective)
  hyper, m = two_player.resolve_model(ModelSection, config)
  shape = tuple(spec.shape)
  if len(shape) != 3 or shape[0] % m.scale or shape[1] % m.scale:
    raise ConfigError(f"srgan needs images [H, W, C] whose sides model.scale={m.scale} "
                      f"divides; dataset {spec.name!r} gives examples of shape {shape}")
  if m.pixel_weight == 0 and m.feature_weight == 0:
    raise ConfigError("srgan needs a content loss: model.pixel_weight or "
                      "model.feature_weight must be positive")
  network = _feature_network(spec)
  if m.feature_weight > 0 and network is None:
    raise ConfigError(f"the feature loss uses the digit LeNet, which takes "
                      f"{choices(sorted(str(a['image_shape']) for a in lenet.ARCHITECTURES.values()))}"
                      f" images; dataset {spec.name!r} gives {shape}: set "
                      "model.feature_weight=0")
  generator_optim, discriminator_optim = two_player.resolve_optimizers(config, PAPER_OPTIM)
  return Settings(
      model=m, hyperparameters=hyper,
      generator_optim=generator_optim, discriminator_optim=discriminator_optim,
      feature_network=network if m.feature_weight > 0 else None,
      paper=f"Ledig et al. 2017 (content + 1e-3 adversarial, Adam 1e-4, β1 0.9); "
            f"adversarial loss: {entry.paper}")


@dataclasses.dataclass(frozen=True)
class Networks:
  """The two networks, the frozen feature network and the data's geometry."""

  s: Settings
  objective: objectives.Objective
  shape: tuple[int, ...]                    # the data's [H, W, C]
  value_range: tuple[float, float]
  feature_params: lenet.LeNetParams | None = None
  compute_dtype: str = "float32"

  @property
  def low_shape(self) -> tuple[int, int, int]:
    h, w, c = self.shape
    return (h // self.s.model.scale, w // self.s.model.scale, c)

  def generator(self) -> srresnet.SRResNet:
    m = self.s.model
    return precision.wrap(srresnet.SRResNet(
        scale=m.scale, out_channels=self.shape[-1], value_range=self.value_range,
        features=m.features, blocks=m.residual_blocks, norm=m.generator_norm,
        axis_name=collectives.current_pmap_axis()), self.compute_dtype)

  def discriminator(self) -> srresnet.SRDiscriminator:
    m = self.s.model
    return precision.wrap(srresnet.SRDiscriminator(
        value_range=self.value_range, channels=m.discriminator_channels,
        hidden=m.discriminator_hidden, norm=m.discriminator_norm,
        axis_name=collectives.current_pmap_axis()), self.compute_dtype)

  def _apply(self, module, variables: Params, x: Array, train: bool
             ) -> tuple[Array, Params]:
    """module(x); (output, new batch statistics) — the old ones outside training."""
    params, stats = variables["params"], variables.get("batch_stats")
    full = {"params": params} if stats is None else {"params": params, "batch_stats": stats}
    if train and stats is not None:
      out, new = module.apply(full, x, train=True, mutable=["batch_stats"])
      return out, {"params": params, "batch_stats": new["batch_stats"]}
    return module.apply(full, x, train=train), variables

  def generate(self, variables: Params, low: Array, *, train: bool) -> tuple[Array, Params]:
    """G(low): [N, H, W, C] in the data range; (images, G's variables updated)."""
    return self._apply(self.generator(), variables, low, train)

  def discriminate(self, variables: Params, x: Array, *, train: bool
                   ) -> tuple[Array, Params]:
    return self._apply(self.discriminator(), variables, x, train)

  def features(self, x: Array) -> Array:
    """The frozen LeNet's activations at `model.feature_layer` for images x."""
    p = self.feature_params
    images = lenet_nn.prepare(x, self.value_range)
    layer = self.s.model.feature_layer
    if layer == "features":
      return p.module.apply(p.variables, images)["features"]
    _, inter = p.module.apply(p.variables, images, capture_intermediates=True,
                              mutable=["intermediates"])
    return jax.nn.relu(inter["intermediates"][layer]["__call__"][0])

  def loss_values(self) -> dict[str, Any]:
    return {**self.s.hyperparameters, "real_target": 1.0, "k": jnp.zeros(())}


def build_networks(config: ml_collections.ConfigDict, spec: Any) -> Networks:
  """Settings, objective and (when the feature loss is on) the loaded LeNet."""
  s = resolve(config, spec)
  return Networks(
      s=s, objective=objectives.get(s.model.objective), shape=tuple(spec.shape),
      value_range=tuple(float(v) for v in spec.value_range),
      feature_params=lenet.load(s.feature_network) if s.feature_network else None,
      compute_dtype=precision.compute_dtype(config))
