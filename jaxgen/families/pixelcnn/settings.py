"""PixelCNN configs: the `model` section's defaults, and its frozen, checked settings.

`make` resolves `config.model` once into `ModelSettings` (typed and
range-checked by `jaxgen.core.settings`) and checks it against the data; the
losses, steps and samplers read only these settings, never the ConfigDict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import optim
from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError

ARCHITECTURES = ("pixelcnn", "gated")


def model_config() -> dict[str, Any]:
  """The `model` section: van den Oord et al.'s choices, narrowed for small images."""
  return dict(
      architecture="pixelcnn",  # "pixelcnn" (2016a) or "gated" (2016b: no blind spot)
      features=32,              # 2h feature maps (2016a: 2h = 256 on CIFAR-10)
      layers=5,                 # residual blocks / gated layers after the first (2016a: 15)
      first_kernel=7,           # the first (mask A) layer's kernel (2016a: 7x7)
      kernel=3,                 # later layers' kernel (2016a: 3x3 mask B)
      output_features=64,       # the 1x1 output layer's width (2016a: 1024 on CIFAR-10)
      conditional=False,        # gated only: condition every layer on `labels` (2016b, eq. 4)
  )


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """PixelCNN defaults: binarized images, as the VAE sees them (a Bernoulli softmax).

  On 8x8 binarized digits the default (3,000 steps) reached a test NLL of
  22.65 nats (plain, 8 minutes) and 22.10 nats (gated, 26 minutes) on two
  shared CPU cores (docs/pixelcnn.md). With data.binarize='none' the softmax
  runs over the data's levels (17 for digits, 256 for 8-bit images).
  """
  del data
  return ml_collections.ConfigDict(dict(
      model=model_config(),
      optim=optim.default_config("adam", 1e-3),
      # A fresh binarization each time an image is drawn (as the VAE); fixed
      # draws for evaluation.
      data=dict(binarize="dynamic"),
      train=dict(steps=3000, eval_every=1000, sample_every=1000),
  ))


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `model_config` for meanings)."""

  architecture: str = field(choices=ARCHITECTURES)
  features: int = field(minimum=1)
  layers: int = field(minimum=0)
  first_kernel: int = field(minimum=1)
  kernel: int = field(minimum=1)
  output_features: int = field(minimum=1)
  conditional: bool = field()


def resolve(section: ml_collections.ConfigDict, spec: Any, *,
            dequantized: bool = False) -> tuple[ModelSettings, codec_lib.Codec]:
  """The frozen settings and the data's codec, checked against the data."""
  s = settings_lib.resolve(ModelSettings, section, "model")
  if not spec.is_image or len(spec.shape) != 3:
    raise ConfigError(f"pixelcnn needs image data [H, W, C]; dataset {spec.name!r} gives "
                      f"examples of shape {tuple(spec.shape)} (data.flatten=False)")
  codec = codec_lib.from_spec(spec, dequantized=dequantized)
  if not codec.discrete:
    raise ConfigError(f"pixelcnn needs discrete data (binarized or on a grid of levels); "
                      f"dataset {spec.name!r} is "
                      + ("dequantized (use data.dequantize=False)" if dequantized
                         else "continuous"))
  colors = spec.shape[-1]
  for key in ("first_kernel", "kernel"):
    if getattr(s, key) % 2 == 0:
      raise ConfigError(f"model.{key} must be odd (a centred mask), got {getattr(s, key)}")
  for key in ("features", "output_features"):
    if getattr(s, key) < colors:
      raise ConfigError(f"model.{key} must be at least the {colors} colour channels, "
                        f"got {getattr(s, key)}")
  if s.conditional and s.architecture != "gated":
    raise ConfigError("model.conditional=True needs model.architecture='gated' "
                      "(the class-conditional model of van den Oord et al. 2016b)")
  if s.conditional and not spec.num_classes:
    raise ConfigError(f"model.conditional=True needs labelled data; dataset {spec.name!r} "
                      "has no labels (or data.labels=False)")
  return s, codec
