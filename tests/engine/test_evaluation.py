"""One evaluation path: per-example keys, the three evaluator kinds, eval.json."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import jaxgen
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import evaluators, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.engine import evaluation, parallel

from tests.helpers import tiny_vae


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
  """A briefly trained VAE whose posterior is still wide: evaluation noise matters."""
  workdir = tmp_path_factory.mktemp("eval") / "run"
  jaxgen.fit(tiny_vae(steps=4, final_eval=False), workdir=workdir)
  return jaxgen.load(workdir)


def _evaluate(run, strategy, batch_size, seeds=None, multi=False, state=None):
  runner = evaluation.Evaluation(
      run.method, run.spec, evaluation.evaluators_for(run.method, run.spec, 0),
      strategy=strategy, seeds=seeds or run.seeds, multi=multi, batch_size=batch_size)
  dataset = data_lib.from_config(run.config.data)
  means, protocol = runner.run(run.state if state is None else state, dataset,
                               run.step, config_dict={})
  return means, protocol


def test_eval_numbers_do_not_depend_on_batch_size_or_device_count(vae_run):
  """The VAE draws posterior noise in evaluate: with one key per batch (the old
  engine) example i of every batch got the same noise, so the ELBO moved with
  the batch size. Per-example keys from global indices make it an invariant."""
  reference, protocol = _evaluate(vae_run, parallel.Strategy("jit", 1), 32)
  assert protocol["num_examples"] == 359
  for name, batch_size in [("jit", 128), ("jit", 4), ("pmap", 32)]:
    for devices in (1, 4):
      means, _ = _evaluate(vae_run, parallel.Strategy(name, devices), batch_size)
      for key, value in reference.items():
        assert means[key] == pytest.approx(value, rel=1e-6, abs=1e-6), (
            name, batch_size, devices, key)


def test_multi_seed_evaluation_is_per_replica_single_seed_evaluation(vae_run):
  state = jax.tree.map(lambda x: np.stack([x, x]), vae_run.state)
  both, _ = _evaluate(vae_run, parallel.Strategy("jit", 4, seed_axis=True), 64,
                      seeds=[0, 1], multi=True, state=state)
  alone, _ = _evaluate(vae_run, parallel.Strategy("jit", 1), 32, seeds=[1])
  for key, value in alone.items():
    assert both[key][1] == pytest.approx(value, rel=1e-6)
  # Replica 0 uses seed 0's keys: other noise, another estimate.
  assert both["elbo"][0] != pytest.approx(both["elbo"][1], rel=1e-9)


def test_fit_eval_batch_size_does_not_change_the_final_evaluation():
  small = jaxgen.fit(tiny_vae(steps=3, final_eval=True, eval_batch_size=32))
  large = jaxgen.fit(tiny_vae(steps=3, final_eval=True, eval_batch_size=128))
  for key, value in small.metrics["eval"].items():
    assert large.metrics["eval"][key] == pytest.approx(value, rel=1e-6), key


def test_per_example_keys_are_fold_in_of_the_global_index(vae_run):
  def probe(state, batch, keys):
    del state
    return {"first_word": keys[:, 0].astype(jnp.float32) * batch["mask"]}

  runner = evaluation.Evaluation(
      vae_run.method, vae_run.spec, [evaluators.PerExample("probe", probe)],
      strategy=parallel.Strategy("jit", 1), seeds=[0], multi=False, batch_size=128)
  dataset = data_lib.from_config(vae_run.config.data)
  means, protocol = runner.run(vae_run.state, dataset, 0, config_dict={})
  base = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0),
                                               evaluation.EVAL_SALT),
                            evaluation._salt("probe"))  # pylint: disable=protected-access
  expected = np.asarray(rng.index_keys(base, jnp.arange(359)))[:, 0]
  assert means["first_word"] == pytest.approx(float(np.mean(
      expected.astype(np.float32).astype(np.float64))), rel=1e-6)
  assert "index of the example" in protocol["probe"]["eval_key"]


# ------------------------------------------------- the three evaluator kinds
@pytest.fixture
def method_with_evaluators():
  """A tiny method with one evaluator of each kind, beside its `evaluate`."""

  def default_config(data):
    del data
    return ml_collections.ConfigDict({"model": {"scale": 1.0}})

  def make(config, spec):
    del spec, config
    tx = optax.sgd(0.1)

    def init(key, batch):
      del batch
      params = {"mean": jax.random.normal(key, (2,))}
      return TrainState.create(key=key, params=params, opt_state={"mean": tx.init(params)})

    def train_step(state, batch):
      loss = jnp.mean(jnp.sum((batch["x"] - state.params["mean"]) ** 2, -1))
      return state.replace(step=state.step + 1), {"loss": loss}

    def sample(state, key, num):
      return state.params["mean"] + 0.1 * jax.random.normal(key, (num, 2))

    def evaluate(state, batch, keys):
      noise = rng.normal(keys, (batch["x"].shape[0], 2))
      return {"sq_error": jnp.sum((batch["x"] - state.params["mean"] + 0 * noise) ** 2, -1)}

    def count(chunks):
      sizes = [len(c) for c in chunks]
      return {"chunks": float(len(sizes)), "drawn": float(sum(sizes))}

    extra = (
        evaluators.SampleBased("counter", count, num_samples=25, chunk_size=10,
                               protocol={"what": "counts samples"}),
        evaluators.ModelLevel("norm", lambda s, k: {
            "mean_norm": jnp.linalg.norm(s.params["mean"]),
            "key_word": jax.random.uniform(k)}, protocol={"what": "norm"}),
        evaluators.Derived("combined", lambda v: {
            "error_minus_norm": v["sq_error"] - v["mean_norm"]},
            needs=("sq_error", "mean_norm"), protocol={"what": "a difference"}),
    )
    return Method("with_evaluators", init, train_step, sample, evaluate=evaluate,
                  eval_protocol={"estimator": "squared error"}, evaluators=extra)

  registry.register("with_evaluators", family="test", description="test only",
                    default_config=default_config, make=make,
                    default_data="toy2d:ring8")
  yield
  registry.unregister("with_evaluators")


def _config(**train):
  config = jaxgen.get_config("with_evaluators")
  config.data.batch_size = 8
  config.train.update(dict(progress=False, steps=2, coverage_samples=30,
                           num_samples=0), **train)
  return config


def test_fit_and_evaluate_run_every_kind_and_save_their_protocols(
    tmp_path, method_with_evaluators):
  result = jaxgen.fit(_config(), workdir=tmp_path)
  values = result.metrics["eval"]
  assert values["chunks"] == 3 and values["drawn"] == 25
  assert {"sq_error", "mean_norm", "key_word", "modes_covered",
          "high_quality_share"} <= set(values)
  saved = json.loads((tmp_path / "eval.json").read_text())
  protocol = saved["protocol"]
  assert protocol["estimator"] == "squared error"
  assert protocol["counter"]["what"] == "counts samples"
  assert protocol["counter"]["samples"] == 25 and protocol["counter"]["chunk_size"] == 10
  assert protocol["norm"]["what"] == "norm"
  # The derived number is computed from the others' final values, per seed.
  assert values["error_minus_norm"] == pytest.approx(values["sq_error"] - values["mean_norm"])
  assert protocol["combined"] == {"what": "a difference"}
  assert protocol["mode_coverage"]["samples"] == 30
  assert set(protocol["mode_coverage"]) >= {"samples", "modes", "high_quality",
                                            "covered", "sample_key"}
  # jaxgen.evaluate runs the same path: the same numbers.
  again = jaxgen.evaluate(tmp_path, save=False)
  for key, value in values.items():
    assert again["metrics"][key] == pytest.approx(value, rel=1e-6), key
  seeded = jaxgen.evaluate(tmp_path, seed=3, save=False)["metrics"]
  assert seeded["key_word"] != values["key_word"]
  assert seeded["mean_norm"] == pytest.approx(values["mean_norm"])


def test_multi_seed_evaluators_match_single_seed_runs(method_with_evaluators):
  together = jaxgen.fit(_config(seeds=(0, 1))).metrics["eval"]
  alone = jaxgen.fit(_config(seed=1)).metrics["eval"]
  for key, value in alone.items():
    assert together[key][1] == pytest.approx(value, rel=1e-5), key


def test_eval_json_holds_null_for_nan(tmp_path):
  path = tmp_path / "eval.json"
  evaluation.write_eval_file(path, 3, [0], {"elbo": float("nan"),
                                            "kl": [1.0, float("inf")]}, {"n": 1})
  text = path.read_text()
  assert "NaN" not in text and "Infinity" not in text
  saved = json.loads(text)
  assert saved["metrics"] == {"elbo": None, "kl": [1.0, None]}



def test_padding_rows_never_reach_the_mean_even_when_not_finite(vae_run):
  """A method may return inf or NaN for a padding row (it is not an example);
  the mean over the split must be that of the real rows alone (359 test rows,
  batches of 32: the last batch has 9 padding rows)."""

  def evaluate(state, batch, keys):
    del state, keys
    real = batch["mask"] > 0
    return {"one": jnp.where(real, 1.0, jnp.inf), "two": jnp.where(real, 2.0, jnp.nan)}

  method = vae_run.method._replace(evaluate=evaluate, evaluators=())
  runner = evaluation.Evaluation(
      method, vae_run.spec, evaluation.evaluators_for(method, vae_run.spec, 0),
      strategy=parallel.Strategy("jit", 1), seeds=vae_run.seeds, multi=False,
      batch_size=32)
  means, protocol = runner.run(vae_run.state, data_lib.from_config(vae_run.config.data),
                               vae_run.step, config_dict={})
  assert protocol["num_examples"] == 359
  assert means["one"] == 1.0 and means["two"] == 2.0


def test_a_derived_evaluator_whose_inputs_no_evaluator_returned_is_an_error(vae_run):
  method = vae_run.method._replace(evaluators=(evaluators.Derived(
      "typo", lambda v: {"x": v["elbo_typo"]}, needs=("elbo_typo",)),))
  runner = evaluation.Evaluation(
      method, vae_run.spec, evaluation.evaluators_for(method, vae_run.spec, 0),
      strategy=parallel.Strategy("jit", 1), seeds=vae_run.seeds, multi=False,
      batch_size=32, num_examples=8)
  with pytest.raises(ValueError, match="'typo' needs \\['elbo_typo'\\]"):
    runner.run(vae_run.state, data_lib.from_config(vae_run.config.data), vae_run.step,
               config_dict={})
