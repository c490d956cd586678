"""Autoencoders: losses and penalties against their formulas, corruption statistics,
fresh corruption each step, sparsity reached, reconstruction learned, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError
from jaxgen.families import autoencoder as ae


# ------------------------------------------------------------ pure functions
def test_kl_sparsity_penalty_matches_its_formula_and_scipy():
  rho = 0.05
  rho_hat = np.array([0.05, 0.5, 0.01, 0.9, 0.2], np.float32)
  expected = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
  got = np.asarray(ae.kl_sparsity_penalty(mean_activation=jnp.asarray(rho_hat), target=rho))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
  scipy_kl = [stats.entropy([rho, 1 - rho], [r, 1 - r]) for r in rho_hat]
  np.testing.assert_allclose(got, scipy_kl, rtol=1e-5, atol=1e-7)
  assert got[0] == pytest.approx(0.0, abs=1e-7) and np.all(got[1:] > 0)
  # Dead and saturated units stay finite.
  assert np.all(np.isfinite(ae.kl_sparsity_penalty(mean_activation=jnp.array([0.0, 1.0]),
                                                   target=rho)))
  with pytest.raises(ConfigError, match="sparsity_target"):
    ae.kl_sparsity_penalty(mean_activation=jnp.ones(2) / 2, target=1.0)


def test_reconstruction_losses_and_l1_match_their_formulas():
  rng = np.random.default_rng(0)
  x = rng.random((3, 4, 2)).astype(np.float32)
  out = rng.normal(size=(3, 4, 2)).astype(np.float32)
  p = 1 / (1 + np.exp(-out))
  bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(-1)
  np.testing.assert_allclose(ae.reconstruction_loss(x=x, output=out, kind="bernoulli"),
                             bce, rtol=1e-5)
  np.testing.assert_allclose(ae.reconstruction_loss(x=x, output=out, kind="mse"),
                             ((x - out) ** 2).reshape(3, -1).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(ae.l1_penalty(code=out.reshape(3, -1)),
                             np.abs(out).reshape(3, -1).sum(-1), rtol=1e-6)


def test_corruption_statistics():
  """Masking rate, Gaussian noise moments, salt and pepper shares (4σ bounds)."""
  n, d, rate = 400, 250, 0.3
  x = jnp.full((n, d), 0.5)
  key = jax.random.PRNGKey(0)

  @jax.jit
  def draws(key):
    k = jax.random.split(key, 3)
    return (ae.corrupt(k[0], x, kind="masking", rate=rate, low=0.0, high=1.0),
            ae.corrupt(k[1], x, kind="gaussian", noise_std=0.2),
            ae.corrupt(k[2], x, kind="salt_pepper", rate=rate, low=-1.0, high=2.0))

  masked, noisy, salted = (np.asarray(a) for a in draws(key))
  total = n * d
  tolerance = 4 * np.sqrt(rate * (1 - rate) / total)
  assert set(np.unique(masked)) == {0.0, 0.5}
  assert abs(np.mean(masked == 0.0) - rate) < tolerance
  noise = noisy - 0.5
  assert abs(noise.mean()) < 4 * 0.2 / np.sqrt(total)
  assert abs(noise.std() - 0.2) < 4 * 0.2 / np.sqrt(2 * total)
  assert stats.kstest(noise.reshape(-1)[:20_000] / 0.2, "norm").pvalue > 1e-3
  assert set(np.unique(salted)) == {-1.0, 0.5, 2.0}
  half = 4 * np.sqrt(rate / 2 * (1 - rate / 2) / total)
  assert abs(np.mean(salted == -1.0) - rate / 2) < half
  assert abs(np.mean(salted == 2.0) - rate / 2) < half
  # Each example gets its own draw: the masks of different rows differ.
  assert not np.array_equal(masked[0], masked[1])
  with pytest.raises(ConfigError, match="corruption"):
    ae.corrupt(key, x, kind="blur")


# ------------------------------------------------------------------ methods
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


@pytest.mark.parametrize("name, data, overrides, fragment", [
    ("dae", None, ["model.corruption=blur"], "model.corruption='blur' is not one of"),
    ("dae", None, ["model.corruption_rate=1.5"], "corruption_rate"),
    ("sae", None, ["model.code_activation=relu"], "code_activation='sigmoid'"),
    ("sae", None, ["model.kl_weight=-1.0"], "kl_weight"),
    ("ae", "toy2d:ring8", ["model.architecture=conv"], "needs image data"),
    ("ae", None, ["data.scale=symmetric"], "model.loss='bernoulli' needs data in [0, 1]"),
    ("ae", None, ["model.code_dim=0"], "code_dim"),
])
def test_settings_that_do_not_fit_are_one_line_errors(name, data, overrides, fragment):
  config = small(name, data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get(name).make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)
