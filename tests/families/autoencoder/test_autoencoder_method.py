"""Autoencoder methods: fresh corruption each step, sparsity reached, reconstruction
learned, device independence, evaluation with per-example keys, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng


def small(method, data=None, steps=4, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.code_dim=8", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def _method(config):
  spec = data_lib.from_config(config.data).spec
  return registry.get(config.method).make(config, spec), spec


def _digits(n=32):
  ds = data_lib.load_dataset("digits")
  batch = next(iter(data_lib.eval_batches(ds, split="train", batch_size=n)))
  return {"x": jnp.asarray(batch["x"])}


def test_denoising_draws_fresh_corruption_each_step():
  method, _ = _method(small("dae"))
  batch = _digits()
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  # The same parameters at different step counters: only the step key differs,
  # so a different loss means a different corruption; the same counter repeats.
  losses = [float(step(state.replace(step=jnp.int32(t)), batch)[1]["loss"])
            for t in (0, 1, 0)]
  assert losses[0] != losses[1] and losses[0] == losses[2], losses


def test_sparse_step_reports_achieved_activations_and_the_penalty():
  config = small("sae", overrides=["model.kl_weight=2.0", "model.sparsity_target=0.1"])
  method, _ = _method(config)
  batch = _digits()

  @jax.jit
  def run(key):
    state = method.init(key, batch)
    return method.encode(state, batch["x"]), method.train_step(state, batch)[1]

  code, metrics = run(jax.random.PRNGKey(1))
  rho_hat = np.asarray(code, np.float64).mean(0)
  assert np.all((np.asarray(code) > 0) & (np.asarray(code) < 1))  # sigmoid code
  np.testing.assert_allclose(metrics["mean_activation"], rho_hat.mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["mean_activation_max"], rho_hat.max(), rtol=1e-5)
  expected = 2.0 * np.sum(0.1 * np.log(0.1 / rho_hat) + 0.9 * np.log(0.9 / (1 - rho_hat)))
  np.testing.assert_allclose(metrics["penalty"], expected, rtol=1e-4)
  np.testing.assert_allclose(metrics["loss"], metrics["reconstruction"] + metrics["penalty"],
                             rtol=1e-6)


@pytest.fixture(scope="module")
def trained():
  """A sparse autoencoder trained for a few hundred steps on digits."""
  config = small("sae", steps=300, overrides=[
      "model.hidden=(64,)", "optim.learning_rate=0.003", "train.eval_every=0",
      "data.batch_size=64", "model.sparsity_target=0.1"])
  return jaxgen.fit(config)


@pytest.mark.slow
def test_training_learns_to_reconstruct(trained):
  result = trained
  ds = data_lib.load_dataset("digits")
  batch = next(iter(data_lib.eval_batches(ds, split="test", batch_size=128)))
  x = jnp.asarray(batch["x"])

  @jax.jit
  def errors_and_codes(state, key):
    fresh = result.method.init(key, {"x": x})
    error = lambda s: jnp.mean((result.method.reconstruct(s, {"x": x}) - x) ** 2)  # noqa: E731
    return error(state), error(fresh), result.method.encode(state, x)

  trained_error, fresh_error, codes = errors_and_codes(result.state, jax.random.PRNGKey(5))
  assert float(trained_error) < 0.5 * float(fresh_error)
  # The engine's test evaluation agrees with its definition.
  evaluation = result.metrics["eval"]
  assert evaluation["mse"] == pytest.approx(evaluation["squared_error"] / 64, rel=1e-6)
  assert evaluation["mse"] < 0.05
  # Codes and decodes have the documented shapes; samples come from the
  # running code moments and lie in the data range.
  codes = np.asarray(codes)
  assert codes.shape == (128, 8)
  np.testing.assert_allclose(result.state.model_state["code_mean"], codes.mean(0),
                             atol=0.5 * codes.std() + 0.01)
  samples = np.asarray(jax.jit(result.method.sample, static_argnums=2)(
      result.state, jax.random.PRNGKey(0), 16))
  assert samples.shape == (16, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.slow
def test_sparse_training_reaches_the_target_activation(trained):
  activation = trained.metrics["train"]["mean_activation"]
  assert 0.05 < activation < 0.2, activation
  # The untrained sigmoid code sits near 0.5.
  assert trained.metrics["eval"]["mean_activation"] < 0.2


def test_conv_autoencoder_wires_up_and_traces():
  """Strided convs down, PhaseConvTranspose up (jaxgen.nn tests those modules)."""
  method, _ = _method(small("ae", overrides=["model.architecture=conv"]))
  batch = _digits(8)
  key = jax.random.PRNGKey(0)
  state = jax.eval_shape(method.init, key, batch)
  assert "ConvEncoder_0" in state.params["encoder"]
  assert "ConvDecoder_0" in state.params["decoder"]
  assert jax.eval_shape(method.encode, state, batch["x"]).shape == (8, 8)
  assert jax.eval_shape(method.reconstruct, state, batch, key).shape == (8, 8, 8, 1)
  assert jax.eval_shape(lambda s, k: method.sample(s, k, 3), state, key).shape == (3, 8, 8, 1)
  jax.jit(method.train_step).lower(state, batch)


@pytest.mark.parametrize("name, overrides", [
    ("dae", ["model.corruption=gaussian", "model.loss=mse", "data.scale=symmetric"]),
    ("sae", ["model.sparsity_penalty=l1", "model.code_activation=relu"]),
])
def test_variants_run_one_step_and_evaluate(name, overrides):
  method, spec = _method(small(name, overrides=overrides))
  batch = _digits(8)
  if name == "dae":  # data.scale=symmetric: digits in [-1, 1]
    batch = {"x": 2 * batch["x"] - 1}

  @jax.jit
  def run(key):
    state = method.init(key, batch)
    code = method.encode(state, batch["x"])
    state, metrics = method.train_step(state, batch)
    return code, metrics, method.evaluate(state, batch, key)

  code, metrics, evaluation = run(jax.random.PRNGKey(0))
  assert np.isfinite(float(metrics["loss"]))
  assert all(v.shape == (8,) for v in evaluation.values())
  if name == "dae":
    assert "denoising_mse" in evaluation
    # Gaussian noise on the input raises the error against the clean image.
    assert float(jnp.mean(evaluation["denoising_loss"])) > float(
        jnp.mean(evaluation["reconstruction_loss"]))
  if name == "sae":
    # λ · mean_i Σ_j |h_ij| of the codes the step saw (λ = 0.1, the default).
    expected = 0.1 * np.abs(np.asarray(code)).sum(-1).mean()
    assert float(metrics["penalty"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["dae", "sae"])
def test_evaluate_with_per_example_keys_does_not_depend_on_the_batching(name):
  method, _ = _method(small(name))
  batch = _digits(12)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  key = jax.random.PRNGKey(4)
  evaluate = jax.jit(method.evaluate)

  def run(rows):
    return evaluate(state, {"x": batch["x"][rows]}, rng.index_keys(key, jnp.asarray(rows)))

  whole = run(np.arange(12))
  parts = [run(np.arange(6)), run(np.arange(6, 12))]
  for metric, values in whole.items():
    assert values.shape == (12,)
    np.testing.assert_allclose(values, np.concatenate([p[metric] for p in parts]),
                               rtol=1e-5, atol=1e-6, err_msg=metric)
  if name == "dae":
    assert "denoising_loss" in whole


def test_traced_code_reads_no_config():
  """make reads the ConfigDict once: changing it afterwards changes nothing."""
  config = small("sae", overrides=["model.kl_weight=2.0"])
  method, _ = _method(config)
  batch = _digits(8)
  state = method.init(jax.random.PRNGKey(0), batch)
  before = jax.jit(method.train_step)(state, batch)[1]["penalty"]
  config.model.kl_weight = 100.0
  after = jax.jit(method.train_step)(state, batch)[1]["penalty"]
  assert float(before) == float(after)


def test_sparse_penalty_is_device_independent_under_pmap():
  """ρ̂ is a batch statistic: 4 pmap devices must average it to match 1 device."""
  def config(**train):
    c = small("sae", steps=3, overrides=["model.hidden=(16,)", "data.batch_size=16",
                                         "train.eval_every=0", "train.final_eval=False"])
    c.train.update(train)
    return c

  one = jaxgen.fit(config(num_devices=1))
  four = jaxgen.fit(config(num_devices=4, strategy="pmap"))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
               (one.state.params, one.state.model_state),
               (four.state.params, four.state.model_state))
