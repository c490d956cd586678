"""WaveNet configs: the `model` section's defaults, and its frozen, checked settings.

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

GENERATION = ("cached", "naive")


def model_config() -> dict[str, Any]:
  """The `model` section: van den Oord et al. 2016's design, narrowed for short signals."""
  return dict(
      residual_channels=32,   # the residual stream (the paper's audio models: 256-512)
      dilation_channels=32,   # width of the gated unit (tanh and sigmoid halves)
      skip_channels=64,       # the summed skip connections
      output_channels=64,     # the hidden 1x1 output layer
      kernel=2,               # the dilated convolutions' kernel (paper: 2)
      depth=6,                # dilations 1, 2, ..., 2^depth per stack (paper: 2^9)
      stacks=2,               # how often the dilation pattern repeats (paper: 3-5)
      conditional=False,      # global conditioning on the label (eq. 3; labelled data)
      # Sampling: "cached" (Fast WaveNet: a queue per layer, O(layers) per
      # sample) or "naive" (the stack on the whole receptive field per sample);
      # the same samples either way. A sampling-time setting.
      generation="cached",
  )


def default_config(data: str = "seq1d:sines") -> ml_collections.ConfigDict:
  """WaveNet defaults: μ-law companded signals, 256 levels (receptive field 256 samples).

  `jaxgen train wavenet --data seq1d:sines` trains on 2,000 signals of 256
  samples; see docs/wavenet.md for the numbers a run reaches.
  """
  del data
  return ml_collections.ConfigDict(dict(
      model=model_config(),
      optim=optim.default_config("adam", 1e-3),
      data=dict(companding="mu_law", num_examples=2000, batch_size=16),
      train=dict(steps=2000, eval_every=1000, sample_every=1000, num_samples=16),
  ))


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """The `model` section, typed and range-checked (see `model_config` for meanings)."""

  residual_channels: int = field(minimum=1)
  dilation_channels: int = field(minimum=1)
  skip_channels: int = field(minimum=1)
  output_channels: int = field(minimum=1)
  kernel: int = field(minimum=2)
  depth: int = field(minimum=0)
  stacks: int = field(minimum=1)
  conditional: bool = field()
  generation: str = field(choices=GENERATION)


def resolve(section: ml_collections.ConfigDict, spec: Any
            ) -> tuple[ModelSettings, codec_lib.Codec]:
  """The frozen settings and the data's codec, checked against the data."""
  s = settings_lib.resolve(ModelSettings, section, "model")
  if not spec.is_sequence or len(spec.shape) != 2:
    raise ConfigError(f"wavenet needs signals [T, C]; dataset {spec.name!r} gives "
                      f"examples of shape {tuple(spec.shape)} (use seq1d:*, or an npz "
                      "file with a sample_rate)")
  codec = codec_lib.from_spec(spec)
  if not codec.discrete:
    raise ConfigError(f"wavenet needs signals quantised to levels; dataset {spec.name!r} "
                      "is continuous (use data.companding='mu_law')")
  if s.conditional and not spec.num_classes:
    raise ConfigError(f"model.conditional=True needs labelled data; dataset {spec.name!r} "
                      "has no labels (or data.labels=False)")
  return s, codec
