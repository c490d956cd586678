"""The two-player config sections (jaxgen/families/gan/two_player.py) that gan,
srgan, pggan and pix2pix share: every default config, and the settings they
resolve to, equal the ones from before the sections were shared.

`two_player_configs.json` was written by `snapshot()` run on commit b7de3fa
(before the refactor): the configs' JSON in key order (the saved config.json
is that dict) and the resolved settings on digits, for defaults and for
configs with user values.
"""

import json
import pathlib

import numpy as np
import pytest

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.errors import ConfigError

GOLDEN = pathlib.Path(__file__).with_name("two_player_configs.json")

# (method, dataset, overrides): configs compared as they are.
CONFIGS = [(m, d, ()) for m in ("srgan", "pggan") for d in ("digits", "mnist")] + [
    ("pix2pix", "digits", ()), ("pix2pix", "mnist", ()), ("pix2pix", "npz:pairs.npz", ()),
] + [(k, d, ()) for k in ("gan", "cgan", "acgan", "infogan", "ssgan")
     for d in ("digits", "toy2d:ring8")]
# (method, overrides): also resolved on digits.
RESOLVED = [
    ("srgan", ()), ("srgan", ("model.objective=lsgan",
                              "generator_optim.learning_rate=0.003")),
    ("pggan", ()), ("pggan", ("model.objective=wgan_gp", "discriminator_optim.b1=0.5",
                              "model.penalty_weight=5.0")),
    ("pix2pix", ()), ("pix2pix", ("generator_optim.learning_rate=0.001",)),
    ("gan", ()), ("gan", ("model.objective=wgan", "generator_optim.name=adam")),
    ("infogan", ()),
]


def _resolved(method: str, config) -> dict:
  """The settings `make` resolves `config` into, as JSON values."""
  # pylint: disable=import-outside-toplevel
  from jaxgen.families.gan import progressive_settings, settings, srgan_settings
  from jaxgen.families.pix2pix import settings as pix2pix_settings
  spec = data_lib.from_config(config.data).spec
  if method == "srgan":
    return srgan_settings.resolve(config, spec).to_json()
  if method == "pggan":
    return progressive_settings.resolve(config, spec).to_json()
  if method == "pix2pix":
    return pix2pix_settings.resolve(config, spec).to_json()
  return settings.resolve(config, spec, method).to_json()


def snapshot() -> dict:
  """{case: JSON text} of every config in CONFIGS and every resolved one in RESOLVED."""
  out = {}
  for method, data, overrides in CONFIGS:
    config = config_lib.get_config(method, data)
    out[f"config {method} {data}"] = json.dumps(config.to_dict())
  for method, overrides in RESOLVED:
    config = config_lib.get_config(method, "digits")
    config_lib.apply_overrides(config, list(overrides))
    name = f"resolved {method} {' '.join(overrides)}".strip()
    out[name] = json.dumps(_resolved(method, config))
  return out


def test_configs_and_settings_are_the_ones_from_before_the_sections_were_shared():
  golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
  now = snapshot()
  assert sorted(now) == sorted(golden)
  for case, text in now.items():
    assert text == golden[case], case     # values, types and key order


def test_pix2pix_optimizers_resolve_to_its_config_and_are_checked():
  # pylint: disable=import-outside-toplevel
  from jaxgen.families.gan import two_player
  from jaxgen.families.pix2pix import make
  config = config_lib.get_config("pix2pix", "digits")
  config_lib.apply_overrides(config, ["discriminator_optim.b2=0.99"])
  generator, discriminator = two_player.resolve_optimizers(config, {"name": "sgd"})
  assert generator.to_dict() == config.generator_optim.to_dict()   # every key set
  assert discriminator.to_dict() == config.discriminator_optim.to_dict()
  assert (generator.learning_rate, generator.b1, discriminator.b2) == (2e-4, 0.5, 0.99)
  config.generator_optim.learning_rate = -1.0
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError, match="generator_optim.learning_rate") as error:
    make(config, spec)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("method", ["srgan", "pggan"])
def test_empty_optimizer_sections_take_the_published_values(method):
  # pylint: disable=import-outside-toplevel
  from jaxgen.families.gan import objectives, progressive_settings, srgan_settings
  from jaxgen.families.gan import two_player
  config = config_lib.get_config(method, "digits")
  assert set(config.generator_optim.to_dict().values()) == {None}
  config.discriminator_optim.learning_rate = 0.01
  published = {"name": "rmsprop", "learning_rate": 5e-5}
  generator, discriminator = two_player.resolve_optimizers(config, published)
  assert (generator.name, generator.learning_rate) == ("rmsprop", 5e-5)
  assert (discriminator.name, discriminator.learning_rate) == ("rmsprop", 0.01)
  assert generator.b2 == 0.999 and np.isclose(generator.eps, 1e-8)   # core.optim's
  module = srgan_settings if method == "srgan" else progressive_settings
  hyper, model = two_player.resolve_model(module.ModelSection, config)
  assert hyper == {name: h.default for name, h
                   in objectives.get(config.model.objective).hyperparameters.items()}
  assert model == module.resolve(config, data_lib.from_config(config.data).spec).model
