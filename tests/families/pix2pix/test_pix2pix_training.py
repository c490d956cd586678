"""pix2pix through the engine, the Python API and the CLI: one step's updates,
the L1-only ablation, bit-exact resume, 4 devices = 1, sampling from given
sources, evaluation on the test split and one-line errors."""

import json

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen import data as data_lib
from jaxgen import registry
from tests.helpers import (assert_trees_close, assert_trees_equal, config_error, full_state,
                           tiny_config)

TINY = ["model.generator_channels=(8, 8, 8)", "model.discriminator_channels=(8, 8)",
        "data.batch_size=16", "data.max_examples=160", "train.progress=False",
        "train.final_eval=False", "train.num_samples=0", "train.log_every=1",
        "train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0"]


def tiny(steps=4, overrides=(), **train):
  return tiny_config("pix2pix", "digits", TINY, overrides, steps, **train)


def _step_once(overrides):
  config = tiny(overrides=overrides)
  dataset = data_lib.from_config(config.data)
  method = registry.get("pix2pix").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=16, seed=0))
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  new_state, metrics = jax.jit(method.train_step)(state, batch)
  return state, new_state, metrics


@pytest.mark.slow
def test_one_step_updates_both_players_and_the_l1_only_ablation_leaves_d_alone():
  state, new_state, metrics = _step_once([])
  assert {"loss", "discriminator_loss", "l1", "generator_adversarial"} <= set(metrics)
  assert float(metrics["loss"]) == pytest.approx(
      float(metrics["generator_adversarial"]) + 100 * float(metrics["l1"]), rel=1e-5)
  for player in ("generator", "discriminator"):
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.params[player],
                           new_state.params[player])
    assert all(jax.tree.leaves(changed)), player
  state, new_state, metrics = _step_once(["model.adversarial_weight=0"])
  assert "discriminator_loss" not in metrics
  assert float(metrics["loss"]) == pytest.approx(100 * float(metrics["l1"]), rel=1e-6)
  assert_trees_equal(jax.device_get(new_state.params["discriminator"]),
                     jax.device_get(state.params["discriminator"]))
  assert_trees_equal(jax.device_get(new_state.opt_state["discriminator"]),
                     jax.device_get(state.opt_state["discriminator"]))


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path):
  uninterrupted = jaxgen.fit(tiny(4))
  for steps in (2, 4):
    resumed = jaxgen.fit(tiny(steps), workdir=tmp_path / "run", resume=steps > 2)
  assert_trees_equal(full_state(resumed), full_state(uninterrupted))


@pytest.mark.slow
def test_four_devices_and_pmap_give_the_one_device_run():
  # Batch norm: its statistics are the global batch's on every strategy.
  overrides = ["model.norm=batch"]
  one = jaxgen.fit(tiny(3, overrides, num_devices=1))
  for strategy in ("jit", "pmap"):
    four = jaxgen.fit(tiny(3, overrides, num_devices=4, strategy=strategy))
    assert_trees_close(jax.device_get(four.state.params), jax.device_get(one.state.params),
                       rtol=2e-4, atol=2e-5)
    assert_trees_close(jax.device_get(four.state.model_state),
                       jax.device_get(one.state.model_state), rtol=2e-4, atol=2e-5)
    assert four.metrics["train"]["loss"] == pytest.approx(one.metrics["train"]["loss"],
                                                          rel=1e-3, abs=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny edges -> digit run trained through the CLI, with its final evaluation."""
  workdir = tmp_path_factory.mktemp("pix2pix") / "run"
  sets = [arg for item in TINY if not item.startswith("train.final_eval")
          for arg in ("--set", item)]
  code = cli.main(["train", "pix2pix", "--data", "digits", "--workdir", str(workdir),
                   "--steps", "3", *sets])
  assert code == 0
  return workdir


@pytest.mark.slow
def test_cli_train_eval_and_sample_from_given_sources(trained, tmp_path, capsys):
  record = json.loads((trained / "eval.json").read_text())
  values = record.get("metrics", record)
  assert 0.0 < values["l1"] < 2.0 and 0.0 <= values["classifier_accuracy"] <= 1.0
  assert "LeNet-digits" in json.dumps(record)
  dataset = data_lib.load_dataset("digits", pair="edges", scale="symmetric")
  test = next(iter(data_lib.eval_batches(dataset, "test", batch_size=5)))
  np.savez(tmp_path / "in.npz", source=test["source"])
  out = tmp_path / "out.npz"
  capsys.readouterr()
  assert cli.main(["sample", "--workdir", str(trained), "--source", str(tmp_path / "in.npz"),
                   "--out", str(out)]) == 0
  samples = np.load(out)["samples"]
  assert samples.shape == (5, 8, 8, 1) and np.all(np.abs(samples) <= 1.0)
  # The same call through the API; dropout is the noise: another seed, other outputs.
  run = jaxgen.load(trained)
  np.testing.assert_allclose(jaxgen.sample(run, num=5, source=test["source"]), samples,
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(jaxgen.sample(run, num=5, seed=1, source=test["source"]), samples)
  # Without sources: the training sources kept at init, cycling.
  assert jaxgen.sample(run, num=20).shape == (20, 8, 8, 1)
  code = cli.main(["sample", "--workdir", str(trained), "--source",
                   str(tmp_path / "in.npz"), "--num", "3", "--out", str(out)])
  assert code == 0 and np.load(out)["samples"].shape == (3, 8, 8, 1)
  np.savez(tmp_path / "wrong.npz", source=np.zeros((2, 4, 4, 1), np.float32))
  capsys.readouterr()
  for path, fragment in [(tmp_path / "wrong.npz", "source= must hold 2 images of shape"),
                         (tmp_path / "none.npz", "source file")]:
    code = cli.main(["sample", "--workdir", str(trained), "--source", str(path),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_eval_on_each_split_of_a_paired_file_is_the_l1_of_its_translations(tmp_path):
  """`jaxgen.evaluate` on the train and test splits of an npz file with sources:
  with dropout off at test time, l1 is mean |G(source_i) - x_i| over the split's
  examples (the sources read by `data.eval_split`), the last batch padded."""
  rng = np.random.default_rng(0)
  arrays = {f"{key}_{split}": rng.integers(0, 256, (count, 8, 8, 1)).astype(np.uint8)
            for split, count in (("train", 24), ("test", 11)) for key in ("x", "source")}
  np.savez(tmp_path / "pairs.npz", **arrays)
  config = tiny_config("pix2pix", f"npz:{tmp_path / 'pairs.npz'}", TINY,
                       ["model.sample_dropout=False", "data.max_examples=0",
                        "data.batch_size=8", "train.eval_batch_size=4"], steps=1)
  workdir = tmp_path / "run"
  jaxgen.fit(config, workdir=workdir)
  run = jaxgen.load(workdir)
  for split, count in (("train", 24), ("test", 11)):
    whole = data_lib.eval_split(data_lib.from_config(run.config.data), split)
    assert whole["source"].shape == (count, 8, 8, 1) and "label" not in whole
    np.testing.assert_allclose(whole["source"],
                               arrays[f"source_{split}"].astype(np.float64) / 127.5 - 1,
                               atol=1e-6)
    translated = jaxgen.sample(run, num=count, source=whole["source"])
    expected = np.mean(np.abs(translated - whole["x"]))
    result = jaxgen.evaluate(run, split=split, save=False, progress=False)
    assert result["protocol"]["split"] == split
    assert result["metrics"]["l1"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("overrides,fragment", [
    (["data.pair=none"], "pix2pix needs paired data"),
    (["model.norm=group"], "model.norm"),
    (["model.l1_weight=0", "model.adversarial_weight=0"], "no loss"),
    (["model.generator_channels=(8,)"], "at least 2 levels"),
])
def test_bad_settings_are_one_line_errors(overrides, fragment):
  assert fragment in config_error(tiny(overrides=overrides))
