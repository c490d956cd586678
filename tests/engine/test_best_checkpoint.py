"""train.keep_best: the checkpoint with the best evaluation metric, kept in best/."""

import json

import numpy as np
import pytest

import jaxgen
from jaxgen.errors import ConfigError, WorkdirError
from tests.helpers import tiny_vae


def _evals(result, metric):
  return {r["step"]: r[metric] for r in result.history
          if r.get("split") == "test" and metric in r}


def _config(steps=12, **train):
  # A learning rate high enough that the ELBO goes up and down.
  config = tiny_vae(steps=steps, eval_every=3, checkpoint_every=3, final_eval=True,
                    num_samples=0, keep_best="elbo", keep_best_mode="max", **train)
  config.optim.learning_rate = 0.05
  return config


def test_the_best_evaluation_is_kept_and_loads_with_step_best(tmp_path):
  result = jaxgen.fit(_config(), workdir=tmp_path / "run")
  evals = _evals(result, "elbo")
  assert sorted(evals) == [3, 6, 9, 12]
  best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
  assert best["metric"] == "elbo" and best["mode"] == "max"
  assert best["step"] == max(evals, key=evals.get)
  assert best["value"] == pytest.approx(max(evals.values()), rel=1e-6)
  run = jaxgen.load(tmp_path / "run", step="best")
  assert run.step == best["step"]
  again = jaxgen.evaluate(tmp_path / "run", step="best")
  assert again["step"] == best["step"]
  assert again["metrics"]["elbo"] == pytest.approx(best["value"], rel=1e-5)
  # The rotation of the regular checkpoints never touches it.
  assert (tmp_path / "run" / "eval" / "best.json").is_file()


def test_resume_keeps_the_best_of_the_whole_run(tmp_path):
  straight = jaxgen.fit(_config(), workdir=tmp_path / "straight")
  jaxgen.fit(_config(steps=6), workdir=tmp_path / "resumed")
  jaxgen.fit(_config(), workdir=tmp_path / "resumed", resume=True)
  read = lambda name: json.loads((tmp_path / name / "best" / "best.json").read_text())  # noqa: E731
  assert read("resumed") == read("straight")
  del straight


def test_keep_best_errors(tmp_path):
  with pytest.raises(ConfigError, match="train.keep_best='nope' is not a metric.*valid:.*elbo"):
    jaxgen.fit(tiny_vae(steps=3, final_eval=True, keep_best="nope"), workdir=tmp_path / "a")
  with pytest.raises(ConfigError, match="keep_best_mode must be 'min' or 'max'"):
    jaxgen.fit(tiny_vae(steps=3, keep_best="elbo", keep_best_mode="lowest"))
  with pytest.raises(ConfigError, match="keep_best needs evaluations"):
    jaxgen.fit(tiny_vae(steps=3, keep_best="elbo", eval_every=0, final_eval=False))
  jaxgen.fit(tiny_vae(steps=3), workdir=tmp_path / "plain")
  with pytest.raises(WorkdirError, match="has no best checkpoint"):
    jaxgen.load(tmp_path / "plain", step="best")
  assert not (tmp_path / "plain" / "best").exists()
  np.testing.assert_equal(jaxgen.load(tmp_path / "plain").step, 3)
