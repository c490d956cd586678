"""`gaussian_nb` and `logistic_regression` through the engine."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.core import rng
from jaxgen.errors import ConfigError

from tests.helpers import assert_trees_close


def _config(method, data="digits", steps=None, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, ["train.progress=False", "train.num_samples=0",
                                      *overrides])
  if steps is not None:
    config.train.steps = steps
  return config


def _npz(tmp_path, n_train=120, n_test=60):
  r = np.random.default_rng(0)
  centres = r.normal(size=(3, 5)) * 2
  y_train, y_test = r.integers(0, 3, n_train), r.integers(0, 3, n_test)
  path = tmp_path / "blobs.npz"
  np.savez(path, x_train=(centres[y_train] + r.normal(size=(n_train, 5))).astype(np.float32),
           y_train=y_train, x_test=(centres[y_test] + r.normal(size=(n_test, 5))).astype(
               np.float32), y_test=y_test)
  return path


def test_gaussian_nb_on_digits_matches_sklearn_through_fit():
  config = _config("gaussian_nb", overrides=["train.num_devices=1"])
  result = jaxgen.fit(config)
  dataset = data_lib.from_config(config.data)
  x, y = data_lib.eval_arrays(dataset, "train")
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  reference = GaussianNB().fit(x.reshape(len(x), -1), y)
  params = jax.device_get(result.state.params["nb"])
  np.testing.assert_allclose(params["theta"], reference.theta_, rtol=1e-5, atol=1e-6)
  accuracy = reference.score(x_test.reshape(len(x_test), -1), y_test)
  assert abs(result.metrics["eval"]["accuracy"] - accuracy) < 0.01
  assert result.metrics["eval"]["accuracy"] > 0.75


def test_both_classifiers_train_on_npz_with_labels(tmp_path):
  path = _npz(tmp_path)
  for method, steps in (("gaussian_nb", 1), ("logistic_regression", 200)):
    result = jaxgen.fit(_config(method, f"npz:{path}", steps, [
        "data.batch_size=120", "train.eval_every=0"]))
    assert result.metrics["eval"]["accuracy"] > 0.8, (method, result.metrics)
    assert result.metrics["eval"]["error"] == pytest.approx(
        1 - result.metrics["eval"]["accuracy"])


def test_first_batch_mode_gives_each_seed_its_own_subset_shared_by_both(tmp_path):
  path = _npz(tmp_path)
  common = ["data.batch_size=20", "model.train_on=first_batch", "train.eval_every=0",
            "train.num_devices=1"]
  nb = jaxgen.fit(_config("gaussian_nb", f"npz:{path}", 3, common + ["train.seeds=(0, 1)"]))
  lr = jaxgen.fit(_config("logistic_regression", f"npz:{path}", 30,
                          common + ["train.seeds=(0, 1)"]))
  kept_nb = np.asarray(nb.state.model_state["train_data"]["x"])
  kept_lr = np.asarray(lr.state.model_state["train_data"]["x"])
  assert kept_nb.shape == (2, 20, 5)
  np.testing.assert_array_equal(kept_nb, kept_lr)   # paired: the same m examples
  assert not np.array_equal(kept_nb[0], kept_nb[1])  # seeds: different subsets
  # Every step refits the kept subset: the fit equals sklearn's on it.
  labels = np.asarray(nb.state.model_state["train_data"]["label"])
  for seed in range(2):
    reference = GaussianNB().fit(kept_nb[seed], labels[seed])
    present = np.unique(labels[seed])
    np.testing.assert_allclose(np.asarray(nb.state.params["nb"]["theta"])[seed][present],
                               reference.theta_, rtol=1e-5, atol=1e-6)
  # Multi-seed equals the single-seed run of each seed.
  single = jaxgen.fit(_config("logistic_regression", f"npz:{path}", 30,
                              common + ["train.seed=1"]))
  assert_trees_close(jax.tree.map(lambda v: np.asarray(v)[1], jax.device_get(lr.state.params)),
                     jax.device_get(single.state.params), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_four_devices_match_one(tmp_path):
  path = _npz(tmp_path)
  for method, steps in (("gaussian_nb", 2), ("logistic_regression", 20)):
    runs = [jaxgen.fit(_config(method, f"npz:{path}", steps, [
        "data.batch_size=40", f"train.num_devices={n}", f"train.strategy={strategy}",
        "train.final_eval=False"])) for n, strategy in ((1, "jit"), (4, "jit"), (4, "pmap"))]
    for run in runs[1:]:
      assert_trees_close(jax.device_get(run.state.params),
                         jax.device_get(runs[0].state.params), rtol=1e-5, atol=1e-6)


def test_evaluate_is_per_example_and_independent_of_the_batching():
  for method_name in ("gaussian_nb", "logistic_regression"):
    config = _config(method_name)
    dataset = data_lib.from_config(config.data)
    method = jaxgen.registry.get(method_name).make(config, dataset.spec)
    x, y = data_lib.eval_arrays(dataset, "train")
    state = method.init(jax.random.PRNGKey(0), {"x": jnp.asarray(x), "label": jnp.asarray(y)})
    if method_name == "logistic_regression":   # away from the all-zero weights
      state = state.replace(params=jax.tree.map(
          lambda p: jax.random.normal(jax.random.PRNGKey(1), p.shape), state.params))
    x, y = data_lib.eval_arrays(dataset, "test")
    x, y = jnp.asarray(x[:12]), jnp.asarray(y[:12])
    key = jax.random.PRNGKey(0)
    whole = method.evaluate(state, {"x": x, "label": y}, rng.index_keys(key, jnp.arange(12)))
    parts = [method.evaluate(state, {"x": x[i:i + 6], "label": y[i:i + 6]},
                             rng.index_keys(key, jnp.arange(i, i + 6)))
             for i in (0, 6)]
    for name, values in whole.items():
      assert values.shape == (12,)
      # float32 matmuls round differently with the batch size: 1e-5 relative.
      np.testing.assert_allclose(values, np.concatenate([p[name] for p in parts]),
                                 rtol=1e-5, atol=1e-6)
    # Padding rows (mask 0) give 0 in naive Bayes (whose nll may be inf), real
    # rows their values.
    masked = method.evaluate(state, {"x": x, "label": y,
                                     "mask": jnp.arange(12) < 9}, key)
    for name, values in masked.items():
      np.testing.assert_allclose(values[:9], whole[name][:9], rtol=1e-5, atol=1e-6)
      if method_name == "gaussian_nb":
        np.testing.assert_array_equal(values[9:], 0.0)


def test_nb_samples_follow_the_class_conditionals_and_lr_has_none():
  result = jaxgen.fit(_config("gaussian_nb", overrides=["train.num_devices=1",
                                                        "train.final_eval=False"]))
  params = jax.device_get(result.state.params["nb"])
  labels = jnp.full((4000,), 7)
  samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(0), 4000,
                                            labels=labels))
  assert samples.shape == (4000, 8, 8, 1)
  flat = samples.reshape(4000, -1)
  np.testing.assert_allclose(flat.mean(0), params["theta"][7], atol=0.03)
  np.testing.assert_allclose(flat.var(0), params["var"][7], rtol=0.1, atol=1e-4)
  lr = jaxgen.fit(_config("logistic_regression", steps=1, overrides=[
      "train.num_devices=1", "train.final_eval=False"]))
  assert lr.method.sample is None          # p(y|x) only: nothing to sample
  with pytest.raises(ConfigError, match="models p\\(y\\|x\\) only: it has no samples"):
    jaxgen.sample(jaxgen.api.LoadedRun(method=lr.method, state=lr.state, config=lr.config,
                                       spec=lr.spec, workdir=None, step=1, seeds=[0]),
                  num=2)


def test_unlabelled_data_and_bad_settings_fail_with_one_line():
  with pytest.raises(ConfigError, match="needs labelled data"):
    jaxgen.fit(_config("gaussian_nb", overrides=["data.labels=False", "train.num_devices=1"]))
  with pytest.raises(ConfigError, match="model.var_smoothing"):
    jaxgen.fit(_config("gaussian_nb", overrides=["model.var_smoothing=-1.0",
                                                   "train.num_devices=1"]))
  with pytest.raises(ConfigError, match="model.train_on"):
    jaxgen.fit(_config("logistic_regression", overrides=["model.train_on=all"]))
