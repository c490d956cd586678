"""Wrong results the loop must never produce (issue #11): each a regression test."""

import json

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import registry
from jaxgen.engine.checkpoint import Checkpointer
from jaxgen.errors import ConfigError, NonFiniteError, WorkdirError

from tests.engine import fragile_config as fragile
from tests.helpers import assert_trees_equal, params_of, tiny_vae


@pytest.fixture
def fragile_method():
  """Parameters turn NaN *in* the update of step `model.nan_at`, while every
  metric (computed before the update) stays finite; `evaluate` returns NaN
  when `model.nan_eval` (tests/engine/fragile_config.py)."""
  fragile.register()
  yield
  registry.unregister("fragile")


def fragile_config(**train):
  config = jaxgen.get_config("fragile")
  config.data.batch_size = 8
  config.train.update(dict(progress=False, coverage_samples=0, steps=10,
                           checkpoint_every=1, keep_checkpoints=1, log_every=1,
                           num_samples=0), **train)
  return config


def _all_finite(workdir):
  checkpointer = Checkpointer(workdir / "checkpoints")
  steps = checkpointer.all_steps()
  checkpointer.close()
  for step in steps:
    state = jaxgen.load(workdir, step=step).state
    leaves = jax.tree.leaves((state.params, state.opt_state, state.model_state))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves
               if np.issubdtype(np.asarray(x).dtype, np.inexact)), step
  return steps


def test_a_non_finite_state_is_never_saved_nor_rotates_a_good_one_out(
    tmp_path, fragile_method):
  with pytest.raises(NonFiniteError) as info:
    jaxgen.fit(fragile_config(), workdir=tmp_path)
  message = str(info.value)
  assert "non-finite parameters or optimizer state after step 5" in message
  assert "last good checkpoint is step 4" in message
  assert _all_finite(tmp_path) == [4]
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert records[-1]["event"] == "nonfinite" and records[-1]["step"] == 5


def test_an_exploding_learning_rate_leaves_only_finite_checkpoints(tmp_path):
  config = tiny_vae(steps=5, checkpoint_every=1)
  config.optim.learning_rate = 1e39
  with pytest.raises(NonFiniteError, match="after step 1.*no checkpoint was saved"):
    jaxgen.fit(config, workdir=tmp_path)
  _all_finite(tmp_path)


def test_a_diverged_replica_is_logged_and_the_others_saved(tmp_path, fragile_method):
  config = fragile_config(seeds=(0, 1), on_nonfinite="continue", steps=6)
  result = jaxgen.fit(config, workdir=tmp_path)
  events = [r for r in result.history if r.get("event") == "nonfinite"]
  assert {(r["seed"], r["step"]) for r in events} == {(0, 5), (1, 5)}
  assert result.status == "completed"


def test_eval_json_never_holds_bare_nan(tmp_path, fragile_method):
  config = fragile_config(steps=2, checkpoint_every=0)
  config.model.nan_eval = True
  result = jaxgen.fit(config, workdir=tmp_path)
  assert np.isnan(result.metrics["eval"]["value"])
  text = (tmp_path / "eval.json").read_text()
  assert "NaN" not in text
  assert json.loads(text)["metrics"]["value"] is None


def test_resume_keeps_the_schedule_of_the_saved_config(tmp_path):
  """--steps extends a run; the decay length resolved at its start stays."""

  def cosine(steps, **optim):
    config = tiny_vae(steps=steps)
    config.optim.schedule = "cosine"
    config.optim.update(optim)
    return config

  jaxgen.fit(cosine(20), workdir=tmp_path / "run")
  resumed = jaxgen.fit(cosine(40), workdir=tmp_path / "run", resume=True)
  explicit = cosine(40, decay_steps=20)
  explicit.train.schedule_steps = 20
  straight = jaxgen.fit(explicit, workdir=tmp_path / "straight")
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["optim"]["decay_steps"] == 20
  assert saved == json.loads((tmp_path / "straight" / "config.json").read_text())
  assert_trees_equal(params_of(straight), params_of(resumed))
  with pytest.raises(WorkdirError, match="optim.decay_steps is 20 there, 60 here"):
    jaxgen.fit(cosine(60, decay_steps=60), workdir=tmp_path / "run", resume=True)


def test_resume_keeps_the_gan_schedules_horizon(tmp_path):
  """The GAN's schedules span train.schedule_steps (× n_critic for D), fixed at the start."""

  def gan(steps, schedule_steps=0):
    config = jaxgen.get_config("gan", "toy2d:ring8")
    config.model.generator_hidden = (16,)
    config.model.discriminator_hidden = (16,)
    config.generator_optim.schedule = "cosine"
    config.discriminator_optim.schedule = "cosine"
    config.data.batch_size = 16
    config.train.update(steps=steps, schedule_steps=schedule_steps, progress=False,
                        num_samples=0, final_eval=False, eval_every=0, num_devices=1)
    return config

  jaxgen.fit(gan(6), workdir=tmp_path / "run")
  resumed = jaxgen.fit(gan(12), workdir=tmp_path / "run", resume=True)
  straight = jaxgen.fit(gan(12, schedule_steps=6), workdir=tmp_path / "straight")
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["train"]["schedule_steps"] == 6
  assert_trees_equal(params_of(straight), params_of(resumed))
  longer = jaxgen.fit(gan(12), workdir=tmp_path / "longer")   # a 12-step schedule
  assert not np.allclose(jax.tree.leaves(params_of(longer))[0],
                         jax.tree.leaves(params_of(resumed))[0])


def test_changing_the_seed_strategy_on_resume_is_a_config_change(tmp_path):
  jaxgen.fit(tiny_vae(steps=2, seeds=(0, 1)), workdir=tmp_path)
  with pytest.raises(WorkdirError, match="train.seed_strategy is 'vmap' there, 'loop' here"):
    jaxgen.fit(tiny_vae(steps=4, seeds=(0, 1), seed_strategy="loop"), workdir=tmp_path,
               resume=True)


def test_an_eval_batch_size_that_does_not_split_is_refused_before_writing(tmp_path):
  with pytest.raises(ConfigError, match="train.eval_batch_size=30 does not split over 4"):
    jaxgen.fit(tiny_vae(eval_batch_size=30), workdir=tmp_path / "run")
  assert not (tmp_path / "run").exists()
