"""The `wavenet` method through `jaxgen.fit`, the API and the CLI: learning, resume,
devices, seeds, samples as plots and .wav files, errors."""

import json
import wave

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

TINY = ["model.residual_channels=8", "model.dilation_channels=8", "model.skip_channels=8",
        "model.output_channels=16", "model.depth=2", "model.stacks=1",
        "data.length=32", "data.num_examples=64", "data.max_examples=64",
        "data.batch_size=8", "train.progress=False", "train.num_samples=0"]


def tiny(steps=4, overrides=(), data="seq1d:sines", **train):
  config = config_lib.get_config("wavenet", data)
  config_lib.apply_overrides(config, TINY + [f"train.steps={steps}", *overrides])
  for key, value in train.items():
    config.train[key] = value
  return config


@pytest.fixture(scope="module")
def run():
  """A class-conditional WaveNet on the labelled mixture: 60 steps (less than an epoch of
  the 256 training signals), evaluated on 256 test signals."""
  return jaxgen.fit(tiny(60, ["model.conditional=True", "optim.learning_rate=0.01",
                              "data.num_examples=256", "data.max_examples=256",
                              "train.log_every=10", "train.eval_every=0"],
                         data="seq1d:mixture"))


def histogram_bits(run):
  """Test cross-entropy of the training levels' histogram: the best memoryless model."""
  dataset = data_lib.from_config(run.config.data)
  train, test = (np.rint((data_lib.eval_arrays(dataset, split)[0] + 1) * 127.5).astype(int)
                 for split in ("train", "test"))
  counts = np.bincount(train.reshape(-1), minlength=256) + 1.0
  return -np.mean(np.log2(counts[test.reshape(-1)] / counts.sum()))


def test_training_lowers_the_exact_nll(run):
  train = [r for r in run.history if r["split"] == "train"]
  assert train[-1]["loss"] < train[0]["loss"] - 8, [r["loss"] for r in train]
  evaluation = run.metrics["eval"]
  # Uniform over 256 levels is 8 bits per sample; the histogram of the levels
  # about 7.5 here. After 60 steps the model beats both on unseen signals.
  assert 0 < evaluation["nll_bits_per_sample"] < min(7.5, histogram_bits(run))
  assert evaluation["nll_nats"] == pytest.approx(
      evaluation["nll_bits_per_sample"] * 32 * np.log(2), rel=1e-5)
  protocol = [r for r in run.history if r["split"] == "test"][-1]["protocol"]
  assert protocol["num_examples"] == 256 and protocol["receptive_field"] == 9
  assert protocol["distribution"] == "softmax over 256 levels per sample"
  samples = jax.jit(lambda s, k: run.method.sample(s, k, 3, labels=[0, 1, 2]))(
      run.state, jax.random.PRNGKey(0))
  assert samples.shape == (3, 32, 1) and np.abs(samples).max() <= 1.0


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
  overrides = ["model.conditional=True"]
  one = jaxgen.fit(tiny(3, overrides, data="seq1d:mixture", num_devices=1, final_eval=False))
  four = jaxgen.fit(tiny(3, overrides, data="seq1d:mixture", num_devices=4,
                         strategy=strategy, final_eval=False))
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
def test_cli_trains_samples_wavs_and_evaluates(tmp_path, capsys):
  workdir = tmp_path / "run"
  sets = [arg for item in TINY + ["train.checkpoint_every=4", "train.num_samples=4",
                                  "train.eval_every=0"] for arg in ("--set", item)]
  assert cli.main(["train", "wavenet", "--data", "seq1d:am", "--steps", "4",
                   "--workdir", str(workdir), *sets]) == 0
  assert (workdir / "samples.png").exists() and (workdir / "eval.json").exists()
  capsys.readouterr()
  assert cli.main(["eval", "--workdir", str(workdir)]) == 0
  out = capsys.readouterr().out
  values = json.loads(out[:out.rindex("}") + 1])
  saved = json.loads((workdir / "eval.json").read_text())
  assert values["nll_bits_per_sample"] == pytest.approx(
      saved["metrics"]["nll_bits_per_sample"], rel=1e-5)
  out_png = tmp_path / "s.png"
  assert cli.main(["sample", "--workdir", str(workdir), "--num", "2", "--length", "50",
                   "--out", str(out_png), "--set", "model.generation=naive"]) == 0
  wavs = sorted((tmp_path / "s_wav").glob("*.wav"))
  assert out_png.exists() and [w.name for w in wavs] == ["sample_000.wav", "sample_001.wav"]
  with wave.open(str(wavs[0])) as audio:
    assert (audio.getframerate(), audio.getnchannels(), audio.getnframes()) == (8000, 1, 50)
  # The Python API draws the same signals, cached or naive.
  cached = jaxgen.sample(workdir, num=2, length=50)
  naive = jaxgen.sample(workdir, num=2, length=50, overrides=["model.generation=naive"])
  np.testing.assert_array_equal(cached, naive)
  pcm = np.frombuffer(wave.open(str(wavs[1])).readframes(50), "<i2") / 32767
  np.testing.assert_allclose(pcm, data_lib.codec.mu_law_expand(naive[1, :, 0]), atol=1e-4)


@pytest.mark.parametrize("data,overrides,fragment", [
    ("digits", [], "wavenet needs signals [T, C]"),
    ("seq1d:sines", ["data.companding=none"], "use data.companding='mu_law'"),
    ("seq1d:sines", ["model.conditional=True"], "needs labelled data"),
    ("seq1d:sines", ["model.kernel=1"], "model.kernel must be >= 2"),
    ("seq1d:sines", ["model.generation=fast"], "unknown model.generation 'fast'; valid:"),
])
def test_settings_that_do_not_fit_are_one_line_errors(data, overrides, fragment):
  config = config_lib.get_config("wavenet", data)
  config_lib.apply_overrides(config, [*overrides, "data.num_examples=8"])
  if data == "digits":
    config.data.companding = "none"
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get("wavenet").make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_sampling_arguments_are_checked():
  config = tiny(1)
  method = registry.get("wavenet").make(config, data_lib.from_config(config.data).spec)
  key = jax.random.PRNGKey(0)
  with pytest.raises(ConfigError, match="not class-conditional"):
    method.sample(None, key, 2, labels=np.zeros(2, int))
  with pytest.raises(ConfigError, match="length must be at least 1"):
    method.sample(None, key, 2, length=0)
