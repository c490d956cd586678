"""pix2pix's config sections and the frozen settings `make` resolves them into.

Defaults follow Isola et al. 2017 (section 3.3, appendix 6.1) where the scale of
this machine allows, with the paper's value beside each narrowed one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxgen.core import settings as settings_lib
from jaxgen.core.settings import field
from jaxgen.errors import ConfigError
from jaxgen.families.gan import two_player

NORMS = ("instance", "batch", "none")
# Isola et al. 2017, section 3.3: Adam, learning rate 2e-4, β1 = 0.5, for both players.
PAPER_OPTIM = {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}
FILE_PAIRS = ("npz:", "pairs:")


def model_config(data: str) -> dict[str, Any]:
  """The `model` section on dataset `data` (8x8 digits get a smaller network)."""
  small = data == "digits"
  return dict(
      # U-Net encoder widths, one stride-2 4x4 convolution each (paper: 64, 128,
      # 256, 512 x5 for 256x256); the decoder mirrors them with skip connections.
      generator_channels=(32, 64, 128) if small else (64, 128, 256),
      # PatchGAN: stride-2 convolutions of these widths, the last one stride 1,
      # then a 1-channel stride-1 output (paper 70x70: 64, 128, 256, 512; kernel 4).
      discriminator_channels=(32, 64) if small else (64, 128),
      discriminator_kernel=3 if small else 4,
      norm="instance",          # 'instance', 'batch' (running averages) or 'none'
      dropout=0.5,              # rate in the first `dropout_layers` decoder layers
      dropout_layers=3,         # paper: the 3 innermost decoder layers
      sample_dropout=True,      # dropout stays on when sampling/evaluating (paper)
      l1_weight=100.0,          # λ of L_L1 (paper: 100), on data in [-1, 1]
      adversarial_weight=1.0,   # 0: the L1-only generator (the paper's ablation)
      default_sources=16,       # training sources kept for `sample` without source=
  )


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """pix2pix's config sections: Adam(2e-4, β1 = 0.5) for both players, data in [-1, 1]."""
  paired_file = data.startswith(FILE_PAIRS)
  return two_player.config_sections(
      model_config(data), optimizer=PAPER_OPTIM, objective_keys=False,
      data=dict(scale="symmetric", pair="none" if paired_file else "edges",
                batch_size=32),
      steps=2000)


@dataclasses.dataclass(frozen=True)
class Settings:
  """`config.model` of pix2pix, typed and range-checked."""

  generator_channels: tuple[int, ...] = field(minimum=1)
  discriminator_channels: tuple[int, ...] = field(minimum=1)
  discriminator_kernel: int = field(minimum=1)
  norm: str = field(choices=NORMS)
  dropout: float = field(minimum=0.0, maximum=1.0, exclusive_maximum=True)
  dropout_layers: int = field(minimum=0)
  sample_dropout: bool = field()
  l1_weight: float = field(minimum=0.0)
  adversarial_weight: float = field(minimum=0.0)
  default_sources: int = field(minimum=1)

  def to_json(self) -> dict[str, Any]:
    """The settings as JSON-ready values (for eval protocols)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()}


def resolve(config: ml_collections.ConfigDict, spec: Any) -> Settings:
  """The settings of `config.model`, checked against the data; one-line errors."""
  s = settings_lib.resolve(Settings, config.model, "model")
  if spec.source_shape is None:
    raise ConfigError(
        f"pix2pix needs paired data; {spec.name} has no source images: set "
        "data.pair='edges' or 'masked', or use npz:<file> with a 'source' array or "
        "pairs:<source_dir>,<target_dir>")
  if len(spec.shape) != 3 or len(spec.source_shape) != 3:
    raise ConfigError(f"pix2pix translates images [H, W, C]; got x {tuple(spec.shape)} "
                      f"and source {tuple(spec.source_shape)}")
  if tuple(spec.shape[:2]) != tuple(spec.source_shape[:2]):
    raise ConfigError(f"pix2pix needs source and target of one size; got source "
                      f"{tuple(spec.source_shape)} and x {tuple(spec.shape)}")
  if len(s.generator_channels) < 2:
    raise ConfigError("model.generator_channels needs at least 2 levels, got "
                      f"{s.generator_channels}")
  if not s.l1_weight and not s.adversarial_weight:
    raise ConfigError("model.l1_weight and model.adversarial_weight are both 0: the "
                      "generator would have no loss")
  return s
