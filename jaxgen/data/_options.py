"""Every data option, its default and its validation, in one place."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxgen.data._pairs import PAIRS
from jaxgen.errors import ConfigError, choices

SCALES = ("auto", "unit", "symmetric", "none")
BINARIZE = ("none", "static", "dynamic", "threshold")
CHANNELS = (0, 1, 3)
COMPANDING = ("none", "mu_law")


@dataclasses.dataclass(frozen=True)
class DataOptions:
  """Data options; `default_config()` and `load_dataset(**options)` both come from these fields."""

  name: str = "digits"  # see list_datasets()
  batch_size: int = 128  # global batch size; read by the engine, not by load_dataset
  data_dir: str = ""  # tfds data dir; '' = tfds's default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  test_fraction: float = 0.2  # test share of the fixed split, for sources without a test split
  generate_seed: int = 0  # fixes generated data (toy2d) and static binarization; not the run seed
  num_examples: int = 50_000  # toy2d train examples (the toy2d test split has 10,000)
  image_size: int = 0  # resize images to (size, size), centre-cropping non-square ones; 0 = keep
  channels: int = 0  # convert images to 1 or 3 channels; 0 = keep
  max_examples: int = 0  # keep the first N examples of each split, for quick runs; 0 = all
  scale: str = "auto"  # 'auto' (images: 'unit', vectors: 'none'), 'unit', 'symmetric' or 'none'
  binarize: str = "none"  # 'none', 'static', 'dynamic' or 'threshold'; needs values in [0, 1]
  dequantize: bool = False  # uniform dequantization (x + u) / levels, for discrete data
  labels: bool = True  # include "label" in batches when the dataset has labels
  flatten: bool = False  # feed images as vectors (D,)
  length: int = 0  # samples per generated seq1d signal; 0 = the source's default (256)
  companding: str = "none"  # signals: 'mu_law' = μ-law companded and quantised to 256 levels
  crop: int = 0  # signals: random windows of `crop` samples (fixed ones in evaluation); 0 = whole
  pair: str = "none"  # images: add batch["source"] derived from x: 'edges' (Sobel) or 'masked'

  def __post_init__(self):
    _check_type("name", self.name, str)
    _check_type("data_dir", self.data_dir, str)
    for key in ("scale", "binarize", "companding", "pair"):
      _check_type(key, getattr(self, key), str)
    for key in ("batch_size", "generate_seed", "num_examples", "image_size",
                "channels", "max_examples", "length", "crop"):
      _check_type(key, getattr(self, key), int)
    for key in ("dequantize", "labels", "flatten"):
      _check_type(key, getattr(self, key), bool)
    _check_type("test_fraction", self.test_fraction, (int, float))

    if self.scale not in SCALES:
      raise ConfigError(
          f"data.scale={self.scale!r} is not valid; choose {choices(SCALES)}")
    if self.binarize not in BINARIZE:
      raise ConfigError(f"data.binarize={self.binarize!r} is not valid; "
                        f"choose {choices(BINARIZE)}")
    if self.companding not in COMPANDING:
      raise ConfigError(f"data.companding={self.companding!r} is not valid; "
                        f"choose {choices(COMPANDING)}")
    if self.pair not in PAIRS:
      raise ConfigError(f"data.pair={self.pair!r} is not valid; choose {choices(PAIRS)}")
    if self.channels not in CHANNELS:
      raise ConfigError(f"data.channels={self.channels} is not valid; "
                        f"choose {choices(CHANNELS)}")
    if not 0.0 < self.test_fraction < 1.0:
      raise ConfigError(
          f"data.test_fraction={self.test_fraction} must be between 0 and 1")
    for key in ("batch_size", "num_examples"):
      if getattr(self, key) < 1:
        raise ConfigError(f"data.{key}={getattr(self, key)} must be at least 1")
    for key in ("image_size", "max_examples", "length", "crop"):
      if getattr(self, key) < 0:
        raise ConfigError(
            f"data.{key}={getattr(self, key)} must be 0 (off) or positive")
    if self.binarize != "none" and self.dequantize:
      raise ConfigError(
          f"data.binarize={self.binarize!r} and data.dequantize=True exclude "
          "each other; choose one")
    if self.companding != "none" and (self.binarize != "none" or self.dequantize):
      raise ConfigError(
          f"data.companding={self.companding!r} quantises signals to levels; it "
          "excludes data.binarize and data.dequantize")
    if self.binarize != "none" and self.scale == "symmetric":
      raise ConfigError(
          f"data.binarize={self.binarize!r} needs values in [0, 1], but "
          "data.scale='symmetric' gives [-1, 1]; use scale 'auto' or 'unit'")


def _check_type(key: str, value: Any, types: type | tuple[type, ...]) -> None:
  """Raises ConfigError unless value has one of types (bools are not ints here)."""
  wanted = types if isinstance(types, tuple) else (types,)
  if isinstance(value, bool) and bool not in wanted:
    ok = False
  else:
    ok = isinstance(value, wanted)
  if not ok:
    words = {str: "a string", int: "an integer", float: "a number", bool: "True or False"}
    raise ConfigError(f"data.{key}={value!r} must be {words[wanted[-1]]}")


OPTION_NAMES = tuple(field.name for field in dataclasses.fields(DataOptions))


def default_config() -> ml_collections.ConfigDict:
  """Every data option with its default, as the `data` part of a run config."""
  return ml_collections.ConfigDict(dataclasses.asdict(DataOptions()))


def make_options(options: Mapping[str, Any]) -> DataOptions:
  """Validated DataOptions from a mapping; unknown keys raise ConfigError."""
  unknown = sorted(set(options) - set(OPTION_NAMES))
  if unknown:
    raise ConfigError(f"unknown data option {unknown[0]!r}; "
                      f"valid options are {choices(OPTION_NAMES)}")
  # ConfigDicts let None through for any key; None means "the default" here.
  given = {key: value for key, value in options.items() if value is not None}
  return DataOptions(**given)
