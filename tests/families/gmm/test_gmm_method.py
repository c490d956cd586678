"""The `gmm` method through the engine: training, resume, devices, seeds, sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families import gmm

from tests.helpers import assert_trees_close, assert_trees_equal


def _config(steps=5, em="batch", covariance_type="full", **train):
  config = config_lib.get_config("gmm", "toy2d:grid25")
  config_lib.apply_overrides(config, [
      "data.num_examples=400", "data.batch_size=400", "model.num_components=6",
      f"model.em={em}", f"model.covariance_type={covariance_type}",
      "train.progress=False", "train.final_eval=False", "train.log_every=1"])
  if em == "stepwise":
    config.data.batch_size = 40
  config.train.steps = steps
  for key, value in train.items():
    config.train[key] = value
  return config


def test_exact_em_through_fit_raises_the_log_likelihood():
  result = jaxgen.fit(_config(steps=8))
  curve = [r["log_likelihood"] for r in result.history if r["split"] == "train"]
  assert len(curve) == 8
  assert np.all(np.diff(curve) >= -1e-5), curve
  assert curve[-1] > curve[0] + 0.05
  assert result.state.opt_state == {}
  weights = np.asarray(result.state.params["gmm"]["weights"])
  np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)


def test_stepwise_em_trains_on_minibatches():
  config = _config(steps=30, em="stepwise", covariance_type="diag")
  config.model.init = "random"          # a poor start, so that EM has work to do
  config.model.kmeans_iterations = 0
  result = jaxgen.fit(config)
  records = [r for r in result.history if r["split"] == "train"]
  first = np.mean([r["log_likelihood"] for r in records[:3]])
  last = np.mean([r["log_likelihood"] for r in records[-3:]])
  assert last > first + 0.2, (first, last)
  assert 0 < records[-1]["step_size"] < records[0]["step_size"] < 1


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path):
  for em in ("batch", "stepwise"):
    uninterrupted = jaxgen.fit(_config(6, em=em))
    jaxgen.fit(_config(3, em=em, checkpoint_every=3), workdir=tmp_path / em)
    resumed = jaxgen.fit(_config(6, em=em, checkpoint_every=3), workdir=tmp_path / em,
                         resume=True)
    assert_trees_equal(jax.device_get(resumed.state.params),
                       jax.device_get(uninterrupted.state.params))
    assert_trees_equal(jax.device_get(resumed.state.model_state),
                       jax.device_get(uninterrupted.state.model_state))


@pytest.mark.slow
@pytest.mark.parametrize("em", ["batch", "stepwise"])
def test_four_devices_and_pmap_match_one_device(em):
  one = jaxgen.fit(_config(4, em=em, num_devices=1))
  for strategy in ("jit", "pmap"):
    four = jaxgen.fit(_config(4, em=em, num_devices=4, strategy=strategy))
    assert_trees_close(jax.device_get(four.state.params), jax.device_get(one.state.params),
                       rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_multi_seed_matches_single_seed_runs():
  multi = jaxgen.fit(_config(4, seeds=(0, 3)))
  for index, seed in enumerate((0, 3)):
    single = jaxgen.fit(_config(4, seed=seed))
    assert_trees_close(jax.tree.map(lambda v: np.asarray(v)[index],  # noqa: B023
                                    jax.device_get(multi.state.params)),
                       jax.device_get(single.state.params), rtol=1e-4, atol=1e-5)


def _trained(covariance_type="full"):
  config = _config(covariance_type=covariance_type)
  dataset = data_lib.from_config(config.data)
  method = gmm.make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=400, seed=0))
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  for _ in range(5):
    state, _ = step(state, batch)
  return method, state, batch


def test_evaluate_does_not_depend_on_the_batching():
  method, state, batch = _trained()
  x = batch["x"][:12]
  key = jax.random.PRNGKey(7)
  whole = method.evaluate(state, {"x": x}, rng.index_keys(key, jnp.arange(12)))
  parts = [method.evaluate(state, {"x": x[i:i + 4]}, rng.index_keys(key, jnp.arange(i, i + 4)))
           for i in (0, 4, 8)]
  for name, values in whole.items():
    np.testing.assert_allclose(values, np.concatenate([p[name] for p in parts]),
                               rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(whole["nll"], -whole["log_likelihood"])


@pytest.mark.parametrize("covariance_type", gmm.COVARIANCE_TYPES)
def test_samples_follow_the_mixture(covariance_type):
  method, state, _ = _trained(covariance_type)
  params = jax.device_get(state.params["gmm"])
  samples = np.asarray(method.sample(state, jax.random.PRNGKey(1), 20000))
  assert samples.shape == (20000, 2)
  mean = params["weights"] @ params["means"]
  np.testing.assert_allclose(samples.mean(0), mean, atol=0.06)
  # The mixture's covariance: Σ_k w_k (Σ_k + μ_k μ_kᵀ) − μμᵀ.
  c = params["covariances"]
  cov = {"full": lambda: c, "tied": lambda: np.broadcast_to(c, (6, 2, 2)),
         "diag": lambda: np.stack([np.diag(v) for v in c]),
         "spherical": lambda: c[:, None, None] * np.eye(2)}[covariance_type]()
  second = np.einsum("k,kij->ij", params["weights"],
                     cov + np.einsum("ki,kj->kij", params["means"], params["means"]))
  np.testing.assert_allclose(np.cov(samples.T, bias=True), second - np.outer(mean, mean),
                             atol=0.15)


def test_bad_settings_fail_with_one_line():
  config = _config()
  config.model.covariance_type = "banded"
  with pytest.raises(ConfigError, match="covariance_type"):
    jaxgen.fit(config)
  config = _config()
  config.model.step_size_power = 0.4
  with pytest.raises(ConfigError, match="step_size_power"):
    jaxgen.fit(config)
