"""RealNVP configs: the `model` section's defaults, and its frozen, checked settings.

`resolve(config, spec)` reads the ConfigDict once, checks every value (type,
range, choice, fit to the data) and returns a frozen `Settings`; the method's
traced functions read only that.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.core.settings import field, resolve as resolve_section
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError
from jaxgen.nn import flows

AUTO = "auto"
ARCHITECTURES = (AUTO, "multiscale", "mlp")
PREPROCESSING = (AUTO, "logit", "none")
NORMALIZATIONS = flows.NORMALIZATIONS


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """Defaults for a small RealNVP: the multi-scale flow on images, MLP couplings on vectors.

  Dinh et al. 2017 used 8 residual blocks of 64 feature maps on CIFAR-10
  (4 blocks of 32 maps on the larger image sets), batch size 64, Adam with
  its default rates and an L2 penalty of 5e-5; the widths here are smaller so
  that 8x8 digits train on two CPU cores in minutes.
  """
  vectors = data.startswith("toy2d:")
  return ml_collections.ConfigDict(dict(
      model=dict(
          architecture=AUTO,      # "auto": multiscale for images [H, W, C], mlp for vectors
          num_scales=2,           # multiscale: scales; each but the last halves H and W
          features=32,            # multiscale: ResNet width (paper: 64 on CIFAR-10)
          blocks=2,               # multiscale: residual blocks per coupling (paper: 8)
          couplings=8,            # mlp: coupling layers, masks alternating
          hidden=(256, 256),      # mlp: coupling network widths
          normalization="batch",  # "batch" (Dinh et al.), "actnorm" (Kingma & Dhariwal) or "none"
          batch_norm_momentum=0.9,  # running averages: m·old + (1 − m)·batch
          batch_norm_epsilon=1e-5,
          preprocessing=AUTO,     # "auto": logit for bounded data (images), none otherwise
          alpha=0.05,             # logit(α + (1 − 2α)·u), Dinh et al. §4.1
          l2_weight=5e-5,         # L2 penalty on the weights (Dinh et al. §4.1)
          temperature=1.0,        # default sampling temperature: z ~ N(0, T² I)
      ),
      optim=optim.default_config("adam", 1e-3),
      data=dict(batch_size=64 if not vectors else 256),
      train=dict(steps=3000, eval_every=1000, sample_every=1000),
  ))


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `default_config`)."""

  architecture: str = field(choices=ARCHITECTURES)
  num_scales: int = field(minimum=1)
  features: int = field(minimum=1)
  blocks: int = field(minimum=0)
  couplings: int = field(minimum=1)
  hidden: tuple[int, ...] = field(minimum=1)
  normalization: str = field(choices=NORMALIZATIONS)
  batch_norm_momentum: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  batch_norm_epsilon: float = field(minimum=0.0, exclusive_minimum=True)
  preprocessing: str = field(choices=PREPROCESSING)
  alpha: float = field(minimum=0.0, maximum=0.5, exclusive_maximum=True)
  l2_weight: float = field(minimum=0.0)
  temperature: float = field(minimum=0.0)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything a RealNVP method is built from ('auto' resolved)."""

  model: ModelSettings
  shape: tuple[int, ...]
  codec: codec_lib.Codec
  dequantize: bool        # dequantize discrete data on the device (the codec's)

  @property
  def architecture(self) -> str:
    return self.model.architecture

  @property
  def logit(self) -> bool:
    return self.model.preprocessing == "logit"


def resolve(config: ml_collections.ConfigDict, spec: Any) -> Settings:
  """Checks `config` against the data once and freezes it into `Settings`."""
  m = resolve_section(ModelSettings, config.model, "model")
  shape = tuple(int(d) for d in spec.shape)
  architecture = m.architecture
  if architecture == AUTO:
    architecture = "multiscale" if len(shape) == 3 else "mlp"
  if architecture == "multiscale" and len(shape) != 3:
    raise ConfigError(f"model.architecture='multiscale' needs image data [H, W, C]; "
                      f"dataset {spec.name!r} gives {shape}; use model.architecture='mlp'")
  if architecture == "mlp" and len(shape) != 1:
    raise ConfigError(f"model.architecture='mlp' needs vector data [D]; dataset "
                      f"{spec.name!r} gives {shape}; use data.flatten=True")
  if architecture == "mlp" and shape[0] < 2:
    raise ConfigError(f"a coupling flow needs at least 2 dimensions; dataset "
                      f"{spec.name!r} has {shape[0]}")
  if architecture == "mlp" and not m.hidden:
    raise ConfigError("model.hidden needs at least one width, e.g. (256, 256)")
  if architecture == "multiscale":
    flows.multiscale_plan(shape, m.num_scales)  # raises when the shape does not fit
  dequantized = bool(config.data.get("dequantize", False))
  codec = codec_lib.from_spec(spec, dequantized=dequantized)
  preprocessing = m.preprocessing
  bounded = codec.bounded or codec.levels is not None
  if preprocessing == AUTO:
    preprocessing = "logit" if bounded else "none"
  if preprocessing == "logit" and not bounded:
    raise ConfigError(f"model.preprocessing='logit' needs bounded data (images or "
                      f"discrete values); dataset {spec.name!r} is continuous and "
                      f"unbounded; use model.preprocessing='none'")
  m = dataclasses.replace(m, architecture=architecture, preprocessing=preprocessing)
  return Settings(model=m, shape=shape, codec=codec, dequantize=codec.discrete)
