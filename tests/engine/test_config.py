"""Config: defaults, --set overrides with type checks, seeds, resume diffs."""

import pytest

from jaxgen import config as config_lib
from jaxgen.errors import ConfigError


def test_get_config_merges_family_sections():
  config = config_lib.get_config("vae")
  assert config.method == "vae"
  assert config.data.name == "digits"
  assert config.data.binarize == "dynamic"  # the VAE's own data default
  assert "latent_dim" in config.model and "learning_rate" in config.optim
  assert config_lib.get_config("vae", data="toy2d:ring8").data.name == "toy2d:ring8"


@pytest.mark.parametrize("text,expected", [
    ("4", 4), ("0.5", 0.5), ("True", True), ("false", False), ("(1, 2)", (1, 2)),
    ("mlp", "mlp"), ("None", None)])
def test_parse_value(text, expected):
  assert config_lib.parse_value(text) == expected


def test_overrides_convert_and_check_types():
  config = config_lib.get_config("vae")
  config_lib.apply_overrides(config, [
      "model.latent_dim=4", "optim.learning_rate=1", "model.hidden=(32,)",
      "model.architecture=conv", "train.progress=false", "data.name=toy2d:ring8"])
  assert config.model.latent_dim == 4
  assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
  assert config.model.hidden == (32,)
  assert config.model.architecture == "conv"
  assert config.train.progress is False
  assert config.data.name == "toy2d:ring8"


@pytest.mark.parametrize("item,fragment", [
    ("model.latent_dimm=3", "did you mean 'latent_dim'"),
    ("modle.latent_dim=3", "has no section 'modle'"),
    ("model.latent_dim=abc", "takes an integer, got abc"),
    ("model.latent_dim=2.5", "takes an integer"),
    ("train.progress=3", "takes True or False"),
    ("model=3", "is a section"),
    ("model.hidden=(1.5,)", "a sequence of int"),
    ("latent_dim", "expects key=value"),
])
def test_bad_overrides_name_the_problem(item, fragment):
  config = config_lib.get_config("vae")
  with pytest.raises(ConfigError) as info:
    config_lib.apply_overrides(config, [item])
  message = str(info.value)
  assert fragment in message
  assert "\n" not in message


def test_dict_round_trip_and_differences():
  config = config_lib.get_config("vae")
  saved = config_lib.to_dict(config)
  rebuilt = config_lib.from_dict(saved)
  assert config_lib.to_dict(rebuilt) == saved
  assert rebuilt.model.hidden == tuple(config.model.hidden)
  changed = config_lib.to_dict(config)
  changed["model"]["latent_dim"] = 99
  changed["train"]["steps"] = 5  # resumable: not a difference
  diffs = config_lib.differences(saved, changed)
  assert diffs == [f"model.latent_dim is {config.model.latent_dim!r} there, 99 here"]


def test_seed_ranges():
  assert config_lib.parse_seed_range("0-3") == (0, 1, 2, 3)
  assert config_lib.parse_seed_range("1,3,5") == (1, 3, 5)
  assert config_lib.parse_seed_range("2") == (2,)
  assert config_lib.parse_seed_range("0-1,7") == (0, 1, 7)
  for bad in ("a", "3-1", "1-"):
    with pytest.raises(ConfigError, match="--seeds expects"):
      config_lib.parse_seed_range(bad)
  config = config_lib.get_config("vae")
  assert config_lib.seeds_of(config) == [0]
  config.train.seeds = (3, 3)
  with pytest.raises(ConfigError, match="distinct"):
    config_lib.seeds_of(config)


def test_config_file(tmp_path):
  path = tmp_path / "my_config.py"
  path.write_text(
      "import jaxgen\n"
      "def get_config():\n"
      "  config = jaxgen.get_config('vae')\n"
      "  config.model.latent_dim = 3\n"
      "  return config\n")
  assert config_lib.load_config_file(path).model.latent_dim == 3
  with pytest.raises(ConfigError, match="does not exist"):
    config_lib.load_config_file(tmp_path / "missing.py")
  (tmp_path / "empty.py").write_text("x = 1\n")
  with pytest.raises(ConfigError, match="defines no get_config"):
    config_lib.load_config_file(tmp_path / "empty.py")


def test_configs_are_locked_so_a_typo_is_an_unknown_key(tmp_path, capsys):
  config = config_lib.get_config("vae")
  with pytest.raises(AttributeError, match="cannot be added"):
    config.model.latnt_dim = 3
  config.model.latent_dim = 3  # existing keys still change
  path = tmp_path / "typo.py"
  path.write_text(
      "import jaxgen\n"
      "def get_config():\n"
      "  config = jaxgen.get_config('vae')\n"
      "  config.model.latnt_dim = 3\n"
      "  return config\n")
  with pytest.raises(ConfigError) as info:
    config_lib.load_config_file(path)
  message = str(info.value)
  assert "unknown config key 'latnt_dim'" in message and "line 4" in message
  assert "did you mean 'latent_dim'" in message and "\n" not in message
  from jaxgen import cli  # pylint: disable=import-outside-toplevel
  assert cli.main(["train", "vae", "--config", str(path)]) == 2
  err = capsys.readouterr().err
  assert "unknown config key 'latnt_dim'" in err and len(err.strip().splitlines()) == 1


def test_a_config_file_built_by_hand_is_checked_against_the_defaults(tmp_path):
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  path = tmp_path / "by_hand.py"
  path.write_text(
      "import ml_collections\n"
      "import jaxgen\n"
      "def get_config():\n"
      "  config = ml_collections.ConfigDict(jaxgen.get_config('vae').to_dict())\n"
      "  config.model.latnt_dim = 3\n"
      "  return config\n")
  with pytest.raises(ConfigError, match=r"unknown config key 'model.latnt_dim' in "
                     r"config file .*did you mean 'latent_dim'"):
    api.build_config("vae", config=str(path))
  good = tmp_path / "good.py"
  good.write_text(path.read_text().replace("latnt_dim", "latent_dim"))
  config = api.build_config("vae", config=str(good), overrides=["train.steps=7"])
  assert config.model.latent_dim == 3 and config.train.steps == 7
  with pytest.raises(AttributeError):
    config.model.extra = 1  # locked


def test_derived_values_are_resolved_once_and_kept_on_resume():
  config = config_lib.get_config("vae")
  config.optim.schedule = "cosine"
  config.train.steps = 200
  assert config_lib.resolve_derived(config) == ["train.schedule_steps", "optim.decay_steps"]
  assert config.optim.decay_steps == 200 and config.train.schedule_steps == 200
  resumed = config_lib.get_config("vae")
  resumed.optim.schedule = "cosine"
  resumed.train.steps = 400
  config_lib.resolve_derived(resumed, saved=config_lib.to_dict(config))
  assert resumed.optim.decay_steps == 200  # the run's own value, not --steps
  assert resumed.train.schedule_steps == 200
  explicit = config_lib.get_config("vae")
  explicit.optim.schedule = "cosine"
  explicit.optim.decay_steps = 50
  assert config_lib.resolve_derived(explicit) == ["train.schedule_steps"]
  assert explicit.optim.decay_steps == 50
  constant = config_lib.get_config("vae")
  assert config_lib.resolve_derived(constant) == ["train.schedule_steps"]
  assert constant.optim.decay_steps == 0
