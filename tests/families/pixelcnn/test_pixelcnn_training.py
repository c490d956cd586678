"""The `pixelcnn` method through `jaxgen.fit` and the CLI: learning, resume, devices, seeds, errors."""

import json

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError
from tests.helpers import assert_trees_close, assert_trees_equal, params_of

TINY = ["model.features=8", "model.layers=1", "model.output_features=8",
        "model.first_kernel=3", "data.batch_size=32", "train.progress=False",
        "train.num_samples=0"]


def tiny(steps=4, overrides=(), **train):
  config = config_lib.get_config("pixelcnn")
  config_lib.apply_overrides(config, TINY + [f"train.steps={steps}", *overrides])
  for key, value in train.items():
    config.train[key] = value
  return config


@pytest.fixture(scope="module")
def run():
  """Gated PixelCNN on binarized digits: 60 steps, evaluated on the test split."""
  return jaxgen.fit(tiny(60, ["model.architecture=gated", "optim.learning_rate=0.01",
                              "train.log_every=10", "train.eval_every=0"]))


def test_training_lowers_the_exact_nll(run):
  train = [r for r in run.history if r["split"] == "train"]
  assert train[-1]["loss"] < train[0]["loss"] - 5, [r["loss"] for r in train]
  evaluation = run.metrics["eval"]
  # An upper bound: 64 fair coins (1 bit/dim); a trained model does better.
  assert 0 < evaluation["nll_bits_per_dim"] < 1.0
  assert evaluation["nll_nats"] == pytest.approx(
      evaluation["nll_bits_per_dim"] * 64 * np.log(2), rel=1e-5)
  protocol = [r for r in run.history if r["split"] == "test"][-1]["protocol"]
  assert protocol["num_examples"] == run.spec.num_test
  assert protocol["distribution"] == "softmax over 2 levels per value"
  samples = jax.jit(lambda s, k: run.method.sample(s, k, 3))(run.state, jax.random.PRNGKey(0))
  assert samples.shape == (3, 8, 8, 1) and set(np.unique(samples)) <= {0.0, 1.0}


def test_grey_levels_use_a_softmax_over_the_data_levels():
  config = tiny(1, ["data.binarize=none"])
  spec = data_lib.from_config(config.data).spec
  method = registry.get("pixelcnn").make(config, spec)
  assert method.eval_protocol["distribution"] == "softmax over 17 levels per value"
  batch = next(data_lib.train_iterator(data_lib.from_config(config.data), batch_size=8,
                                       seed=0))
  state = method.init(jax.random.PRNGKey(0), batch)
  values = method.evaluate(state, batch, jax.random.PRNGKey(0))
  # Untrained: close to uniform over 17 levels, log2(17) bits per value.
  assert np.mean(values["nll_bits_per_dim"]) == pytest.approx(np.log2(17), rel=0.2)


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path):
  uninterrupted = jaxgen.fit(tiny(6, final_eval=False))
  jaxgen.fit(tiny(4, checkpoint_every=4, final_eval=False), workdir=tmp_path / "run")
  resumed = jaxgen.fit(tiny(6, checkpoint_every=4, final_eval=False),
                       workdir=tmp_path / "run", resume=True)
  assert_trees_equal(params_of(resumed), params_of(uninterrupted))
  assert_trees_equal(jax.device_get(resumed.state.opt_state),
                     jax.device_get(uninterrupted.state.opt_state))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["jit", "pmap"])
def test_four_devices_give_the_one_device_parameters(strategy):
  overrides = ["model.architecture=gated"]
  one = jaxgen.fit(tiny(3, overrides, num_devices=1, final_eval=False))
  four = jaxgen.fit(tiny(3, overrides, num_devices=4, strategy=strategy, final_eval=False))
  assert_trees_close(params_of(one), params_of(four))
  assert one.metrics["train"]["loss"] == pytest.approx(four.metrics["train"]["loss"], rel=1e-5)


@pytest.mark.slow
def test_multi_seed_replicas_match_single_seed_runs():
  together = jaxgen.fit(tiny(3, seeds=(0, 1), final_eval=False))
  assert together.state.step.shape == (2,)
  for i, seed in enumerate((0, 1)):
    alone = jaxgen.fit(tiny(3, seed=seed, final_eval=False))
    assert_trees_close(params_of(together, i), params_of(alone))


@pytest.mark.slow
def test_cli_trains_samples_and_evaluates(tmp_path, capsys):
  workdir = tmp_path / "run"
  sets = [arg for item in TINY + ["train.checkpoint_every=4", "train.num_samples=4",
                                  "train.eval_every=0"] for arg in ("--set", item)]
  assert cli.main(["train", "pixelcnn", "--steps", "4", "--workdir", str(workdir), *sets]) == 0
  assert (workdir / "samples.png").exists() and (workdir / "eval.json").exists()
  capsys.readouterr()
  assert cli.main(["eval", "--workdir", str(workdir)]) == 0
  out = capsys.readouterr().out
  values = json.loads(out[:out.rindex("}") + 1])
  saved = json.loads((workdir / "eval.json").read_text())
  assert values["nll_nats"] == pytest.approx(saved["metrics"]["nll_nats"], rel=1e-5)
  # Completion from a saved run: jaxgen.sample passes observed= and mask= on.
  images = np.random.default_rng(0).integers(0, 2, (4, 8, 8, 1)).astype(np.float32)
  top = np.broadcast_to(np.arange(8)[None, :, None] < 4, (4, 8, 8))
  completed = jaxgen.sample(workdir, num=4, observed=images, mask=top)
  np.testing.assert_array_equal(completed[:, :4], images[:, :4])


@pytest.mark.parametrize("data,overrides,fragment", [
    ("toy2d:ring8", ["data.binarize=none"], "pixelcnn needs image data"),
    (None, ["data.binarize=none", "data.dequantize=True"], "needs discrete data"),
    (None, ["model.kernel=4"], "model.kernel must be odd"),
    (None, ["model.architecture=lstm"], "unknown model.architecture 'lstm'; valid:"),
    (None, ["model.conditional=True"], "needs model.architecture='gated'"),
    (None, ["model.conditional=True", "model.architecture=gated", "data.labels=False"],
     "needs labelled data"),
    (None, ["model.layers=-1"], "model.layers must be >= 0"),
])
def test_settings_that_do_not_fit_are_one_line_errors(data, overrides, fragment):
  config = config_lib.get_config("pixelcnn", data)
  config_lib.apply_overrides(config, overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get("pixelcnn").make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_completion_arguments_are_checked():
  config = tiny(1)
  spec = data_lib.from_config(config.data).spec
  method = registry.get("pixelcnn").make(config, spec)
  key = jax.random.PRNGKey(0)
  with pytest.raises(ConfigError, match="needs both observed"):
    method.sample(None, key, 2, observed=np.zeros((2, 8, 8, 1)))
  with pytest.raises(ConfigError, match="must have shape"):
    method.sample(None, key, 2, observed=np.zeros((2, 4, 4, 1)), mask=np.ones((2, 4, 4)))
  with pytest.raises(ConfigError, match="not class-conditional"):
    method.sample(None, key, 2, labels=np.zeros(2, int))
