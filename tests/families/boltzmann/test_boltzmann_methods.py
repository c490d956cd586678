"""`rbm`, `dbn` and `dbm` through the engine: training, PCD chains, resume, devices, bounds."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError
from jaxgen.families import boltzmann
from jaxgen.families.boltzmann import dbm, dbn, energies

from tests.helpers import assert_trees_close, assert_trees_equal

TINY_AIS = ["ais.counts=(10, 20, 30)", "ais.runs=16", "ais.progress=False"]


def _config(method="rbm", steps=6, model=(), **train):
  config = config_lib.get_config(method)
  sizes = ["model.hidden=16"] if method == "rbm" else ["model.layers=(16, 8)"]
  config_lib.apply_overrides(config, sizes + TINY_AIS + [
      "data.batch_size=32", "model.sample_steps=5", "model.num_chains=16",
      "train.progress=False", "train.final_eval=False", "train.log_every=1",
      "train.num_samples=0"] + list(model))
  config.train.steps = steps
  for key, value in train.items():
    config.train[key] = value
  return config


def test_rbm_cd1_trains_and_evaluates_with_ais():
  # Weights of std 0.1 (not the guide's 0.01) leave the symmetric start quickly.
  config = _config(steps=60, model=["optim.learning_rate=0.1", "optim.schedule=constant",
                                    "model.init_std=0.1"], final_eval=True)
  result = jaxgen.fit(config)
  recon = [r["reconstruction_error"] for r in result.history if r["split"] == "train"]
  assert np.mean(recon[-5:]) < 0.85 * np.mean(recon[:5]), (recon[:5], recon[-5:])
  evaluation = result.metrics["eval"]
  assert np.isfinite(evaluation["ais_log_z"]) and evaluation["ais_log_z_stderr"] >= 0
  log_p = boltzmann.log_likelihood_of(evaluation)
  assert -64 * np.log(2) < log_p < 0    # better than uniform over 64 binary pixels
  # the evaluation reports it itself (a derived evaluator), with S&M's interval
  assert evaluation["log_likelihood"] == pytest.approx(log_p, abs=1e-9)
  assert (evaluation["log_likelihood_minus_3se"] <= evaluation["log_likelihood"]
          <= evaluation["log_likelihood_plus_3se"])
  assert evaluation["pseudo_log_likelihood"] < 0
  # the running data mean is the mean of the batches seen
  ms = result.state.model_state
  assert float(ms["data_batches"]) == 60
  assert np.all((np.asarray(ms["data_mean"]) >= 0) & (np.asarray(ms["data_mean"]) <= 1))
  samples = jax.jit(lambda s, k: result.method.sample(s, k, 5))(result.state,
                                                                jax.random.PRNGKey(0))
  assert samples.shape == (5, 64) and np.all((samples >= 0) & (samples <= 1))


def test_rbm_evaluation_reports_raise_beside_ais_and_both_match_the_exact_value(tmp_path):
  """ais.reverse=True: eval.json holds AIS's log-likelihood and RAISE's, both near the
  exact test log-likelihood of this 16-hidden-unit RBM (enumerated), RAISE's implied
  log Z near the exact one."""
  config = _config(steps=40, model=["optim.learning_rate=0.1", "optim.schedule=constant",
                                    "model.init_std=0.1", "ais.reverse=True",
                                    "ais.counts=(20, 60, 120)", "ais.runs=32"],
                   final_eval=True)
  result = jaxgen.fit(config, workdir=tmp_path)
  saved = json.loads((tmp_path / "eval.json").read_text())
  values, protocol = saved["metrics"], saved["protocol"]
  assert protocol["raise"]["runs_per_example"] == 1 and "RAISE" in protocol["raise"]["estimator"]
  exact_log_z = float(energies.log_partition_exact(params=result.state.params["rbm"],
                                                   visible="bernoulli"))
  exact = values["neg_free_energy"] - exact_log_z
  assert values["log_likelihood"] == pytest.approx(exact, abs=0.2)
  assert values["raise_log_likelihood"] == pytest.approx(exact, abs=0.2)
  assert values["raise_log_z"] == pytest.approx(exact_log_z, abs=0.2)
  assert values["raise_log_z"] == pytest.approx(
      values["neg_free_energy"] - values["raise_log_likelihood"], abs=1e-9)


def test_raise_is_for_the_rbm_only():
  with pytest.raises(ConfigError, match="ais.reverse .* rbm, not dbm"):
    jaxgen.fit(_config("dbm", model=["ais.reverse=True"]))


def _method_and_batch(config):
  dataset = data_lib.from_config(config.data)
  method = registry.get(config.method).make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=config.data.batch_size, seed=0))
  batch = {k: v for k, v in batch.items() if k == "x"}
  return method, batch


def test_pcd_chains_persist_across_steps():
  """After each step the chains are k sweeps of the previous chains under the old params."""
  method, batch = _method_and_batch(_config(model=["model.persistent=True", "model.cd_steps=2"]))
  step = jax.jit(method.train_step)
  state = method.init(jax.random.PRNGKey(0), batch)
  for _ in range(2):
    new, _ = step(state, batch)
    key = state.keys("negative")["negative"]   # the key of this step
    expected = energies.gibbs_chain(key, state.model_state["chains"], state.params["rbm"],
                                    "bernoulli", 2, energies.chain_noise)
    np.testing.assert_array_equal(new.model_state["chains"], expected)
    assert not np.array_equal(state.model_state["chains"], expected)
    state = new


@pytest.mark.slow
@pytest.mark.parametrize("method,model", [
    ("rbm", ["model.persistent=True"]), ("dbn", []), ("dbm", [])])
def test_resume_mid_stage_is_bit_exact(tmp_path, method, model):
  """Checkpoint at step 5 (mid stage 1 of 3-step stages), resume to 8."""
  # the same learning-rate schedule in both (rbm's decays linearly over decay_steps)
  model = list(model) + (["optim.decay_steps=8"] if method == "rbm"
                         else ["model.stage_steps=3"])
  uninterrupted = jaxgen.fit(_config(method, 8, model))
  jaxgen.fit(_config(method, 5, model, checkpoint_every=5), workdir=tmp_path)
  resumed = jaxgen.fit(_config(method, 8, model, checkpoint_every=5), workdir=tmp_path,
                       resume=True)
  for part in ("params", "opt_state", "model_state"):
    assert_trees_equal(jax.device_get(getattr(resumed.state, part)),
                       jax.device_get(getattr(uninterrupted.state, part)))


@pytest.mark.slow
@pytest.mark.parametrize("persistent", [False, True])
def test_four_devices_and_pmap_match_one_device(persistent):
  """PCD's replicated chains draw the same noise on every device (and CD's per example)."""
  model = [f"model.persistent={persistent}"]
  one = jaxgen.fit(_config(steps=4, model=model, num_devices=1))
  for strategy in ("jit", "pmap") if persistent else ("jit",):
    four = jaxgen.fit(_config(steps=4, model=model, num_devices=4, strategy=strategy))
    assert_trees_close(jax.device_get(four.state.params), jax.device_get(one.state.params),
                       rtol=1e-4, atol=1e-5)
    assert_trees_close(jax.device_get(four.state.model_state),
                       jax.device_get(one.state.model_state), rtol=1e-4, atol=1e-5)


def test_dbn_stage_schedule_trains_one_layer_at_a_time():
  assert [int(dbn.stage_of(t, 3, 2)) for t in range(8)] == [0, 0, 0, 1, 1, 1, 1, 1]
  assert [int(dbn.stage_of(t, 2, 3)) for t in range(7)] == [0, 0, 1, 1, 2, 2, 2]
  method, batch = _method_and_batch(_config("dbn", model=["model.stage_steps=3"]))
  step = jax.jit(method.train_step)
  state = method.init(jax.random.PRNGKey(0), batch)
  params, stages = [state.params], []
  for _ in range(6):
    state, metrics = step(state, batch)
    params.append(state.params)
    stages.append(float(metrics["stage"]))
  p1, p3, p6 = (jax.device_get(params[t]) for t in (1, 3, 6))
  assert_trees_equal(p3["rbm1"], p1["rbm1"])                  # stage 0 leaves RBM 1 alone
  assert not np.array_equal(p3["rbm0"]["weights"], p1["rbm0"]["weights"])
  assert_trees_equal(p6["rbm0"], p3["rbm0"])                  # stage 1 leaves RBM 0 alone
  assert not np.array_equal(p6["rbm1"]["weights"], p3["rbm1"]["weights"])
  assert stages == [0, 0, 0, 1, 1, 1]


def _tiny_dbn_params(seed=0, sizes=(6, 5, 4)):
  r = np.random.default_rng(seed)
  return {f"rbm{l}": {
      "weights": jnp.asarray(0.7 * r.standard_normal((sizes[l], sizes[l + 1])), jnp.float32),
      "visible_bias": jnp.asarray(0.3 * r.standard_normal(sizes[l]), jnp.float32),
      "hidden_bias": jnp.asarray(0.3 * r.standard_normal(sizes[l + 1]), jnp.float32)}
      for l in range(len(sizes) - 1)}


def test_dbn_bound_is_below_the_exact_log_likelihood():
  """E_q[one-sample bound] ≤ log p(v), p(v) = Σ_h1 p(v|h1) p(h1) enumerated; equal when q is exact."""
  params = _tiny_dbn_params()
  v = jnp.asarray(np.random.default_rng(1).integers(0, 2, (4, 6)), jnp.float32)
  h1 = energies.all_binary(5)
  log_z_top = energies.log_partition_exact(params=params["rbm1"], visible="bernoulli")
  log_prior = -energies.free_energy(v=h1, params=params["rbm1"], visible="bernoulli") - log_z_top
  logits = energies.visible_input(h1, params["rbm0"])                  # [32, 6]
  log_lik = jax.vmap(lambda x: dbn.bernoulli_log_prob(jnp.broadcast_to(x, logits.shape),
                                                      logits))(v)     # [4, 32]
  exact = jax.nn.logsumexp(log_lik + log_prior, axis=1)
  keys = jax.random.split(jax.random.PRNGKey(0), 3000)
  draws = jax.jit(jax.vmap(
      lambda k: dbn.lower_bound_plus_log_z(v=v, params=params, num_rbms=2, key=k)))(
      keys) - log_z_top
  mean, stderr = np.asarray(draws.mean(0)), np.asarray(draws.std(0)) / np.sqrt(3000)
  assert np.all(mean <= np.asarray(exact) + 3 * stderr), (mean, exact)
  assert np.all(mean > np.asarray(exact) - 3.0)                      # and not vacuous


def _tiny_dbm_params(seed=0, dim=6, h1=5, h2=4, scale=0.8):
  r = np.random.default_rng(seed)
  return {"w1": jnp.asarray(scale * r.standard_normal((dim, h1)), jnp.float32),
          "w2": jnp.asarray(scale * r.standard_normal((h1, h2)), jnp.float32),
          "b": jnp.asarray(0.3 * r.standard_normal(dim), jnp.float32),
          "c1": jnp.asarray(0.3 * r.standard_normal(h1), jnp.float32),
          "c2": jnp.asarray(0.3 * r.standard_normal(h2), jnp.float32)}


def _dbm_joint(params):
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  dim, h1, h2 = p["w1"].shape[0], p["w1"].shape[1], p["w2"].shape[1]
  s = np.array(list(itertools.product((0.0, 1.0), repeat=dim + h1 + h2)))
  v, a, c = s[:, :dim], s[:, dim:dim + h1], s[:, dim + h1:]
  neg = (v @ p["b"] + a @ p["c1"] + c @ p["c2"] + np.sum((v @ p["w1"]) * a, 1)
         + np.sum((a @ p["w2"]) * c, 1))
  return v, neg


def test_dbm_exact_log_z_and_mean_field_fixed_point_and_bound():
  params = _tiny_dbm_params()
  v_all, neg = _dbm_joint(params)
  log_z = special.logsumexp(neg)
  np.testing.assert_allclose(dbm.log_partition_exact(params), log_z, rtol=1e-6)
  v = jnp.asarray(np.random.default_rng(2).integers(0, 2, (5, 6)), jnp.float32)
  mu1, mu2 = dbm.mean_field(v=v, params=params, steps=200)
  # the fixed point of S&H 2009's equations 9-10
  np.testing.assert_allclose(
      mu1, jax.nn.sigmoid(v @ params["w1"] + mu2 @ params["w2"].T + params["c1"]), atol=1e-5)
  np.testing.assert_allclose(mu2, jax.nn.sigmoid(mu1 @ params["w2"] + params["c2"]), atol=1e-5)
  bound = np.asarray(dbm.mean_field_bound_plus_log_z(v=v, params=params, steps=200)) - log_z
  index = np.array([np.flatnonzero(np.all(v_all == row, 1)) for row in np.asarray(v)])
  exact = np.array([special.logsumexp(neg[i]) for i in index]) - log_z
  assert np.all(bound <= exact + 1e-5) and np.all(bound > exact - 2.0), (bound, exact)


@pytest.mark.slow
def test_dbm_trains_through_its_stages_and_samples():
  config = _config("dbm", 9, ["model.stage_steps=3", "optim.learning_rate=0.05"],
                   final_eval=True)
  result = jaxgen.fit(config)
  stages = [r["stage"] for r in result.history if r["split"] == "train"]
  assert stages == [0] * 3 + [1] * 3 + [2] * 3
  evaluation = result.metrics["eval"]
  assert np.isfinite(boltzmann.log_likelihood_of(evaluation, per_example="bound_plus_log_z"))
  assert evaluation["log_likelihood_bound"] == pytest.approx(
      boltzmann.log_likelihood_of(evaluation, per_example="bound_plus_log_z"), abs=1e-9)
  samples = result.method.sample(result.state, jax.random.PRNGKey(0), 4)
  assert samples.shape == (4, 64) and np.all((samples >= 0) & (samples <= 1))


def test_dbm_stage_learning_rate_scale_scales_only_the_dbm_stage_updates():
  updates = {}
  for scale in (1.0, 0.25):
    config = _config("dbm", 9, ["model.stage_steps=3", f"model.learning_rate_scale_dbm={scale}",
                                "optim.momentum=0.0"])
    method, batch = _method_and_batch(config)
    state = method.init(jax.random.PRNGKey(0), batch)
    step = jax.jit(method.train_step)
    for at in (0, 6):   # a pre-training step (stage 0) and a DBM step (stage 2)
      new, _ = step(state.replace(step=jnp.asarray(at, jnp.int32)), batch)
      updates[scale, at] = jax.tree.map(lambda a, b: a - b, new.params, state.params)
  assert_trees_close(updates[0.25, 0], updates[1.0, 0], rtol=1e-6, atol=1e-9)   # untouched
  assert_trees_close(updates[0.25, 6], jax.tree.map(lambda u: 0.25 * u, updates[1.0, 6]),
                     rtol=1e-5, atol=2e-7)   # float32 rounding of new - old
  assert float(jnp.abs(updates[1.0, 6]["dbm"]["w2"]).max()) > 0


def test_bad_settings_fail_with_one_line():
  with pytest.raises(ConfigError, match="model.layers"):
    jaxgen.fit(_config("dbm", model=["model.layers=(8,)"]))
  with pytest.raises(ConfigError, match="ais.boundaries"):
    jaxgen.fit(_config(model=["ais.boundaries=(0.5, 0.9)", "ais.counts=(1, 2)"]))
  with pytest.raises(ConfigError, match="model.visible"):
    jaxgen.fit(_config(model=["model.visible=poisson"]))


def test_gaussian_rbm_trains_on_real_valued_data():
  config = _config(model=["model.visible=gaussian", "data.binarize=none",
                          "optim.learning_rate=0.01"])
  method, batch = _method_and_batch(config)
  assert not np.all((batch["x"] == 0) | (batch["x"] == 1))      # real-valued pixels
  state = method.init(jax.random.PRNGKey(0), batch)
  np.testing.assert_allclose(state.params["rbm"]["visible_bias"],
                             np.mean(np.asarray(batch["x"]).reshape(32, -1), 0), rtol=1e-5)
  state, metrics = jax.jit(method.train_step)(state, batch)
  assert np.isfinite(float(metrics["loss"]))
  values = method.evaluate(state, batch, jax.random.split(jax.random.PRNGKey(1), 32))
  assert set(values) == {"neg_free_energy", "reconstruction_error"}
  samples = method.sample(state, jax.random.PRNGKey(2), 3)
  assert samples.shape == (3, 64) and np.all(np.isfinite(samples))


def test_dbm_chains_burn_in_once_when_the_dbm_stage_starts():
  config = _config("dbm", 9, ["model.stage_steps=3", "model.chain_burn_in=4",
                              "model.cd_steps=2"])
  method, batch = _method_and_batch(config)
  state = method.init(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  for at, sweeps in ((6, 4), (7, 0)):   # the stage's first step burns in, the next does not
    start = state.replace(step=jnp.asarray(at, jnp.int32))
    new, _ = step(start, batch)
    key = start.keys("up", "negative")["negative"]
    chains = tuple(start.model_state["chains"]["dbm"][k] for k in ("v", "h1", "h2"))
    for t in list(range(2, 2 + sweeps)) + [0, 1]:
      chains = dbm.gibbs_sweep(jax.random.fold_in(key, t), chains, start.params["dbm"])
    assert_trees_equal(dict(zip(("v", "h1", "h2"), chains)),
                       new.model_state["chains"]["dbm"])
