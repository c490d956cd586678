"""The VAE methods: training improves the test ELBO; every configuration runs;
β warm-up, iwae, cvae, discretized logistic; evaluation with per-example keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families import vae


def small(method="vae", data=None, steps=4, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def _method(config):
  spec = data_lib.from_config(config.data).spec
  return registry.get(config.method).make(config, spec), spec


def _batch(spec, size=8, seed=0):
  rng_np = np.random.default_rng(seed)
  x = (rng_np.random((size,) + tuple(spec.shape)) < 0.5).astype(np.float32)
  return {"x": jnp.asarray(x), "label": jnp.asarray(np.arange(size) % 10, jnp.int32)}


@pytest.mark.slow
def test_test_elbo_improves_steadily_on_digits():
  config = small(steps=300, overrides=[
      "model.hidden=(64,)", "optim.learning_rate=0.003", "train.eval_every=100",
      "data.batch_size=64"])
  result = jaxgen.fit(config)
  evals = [r for r in result.history if r["split"] == "test"]
  assert [r["step"] for r in evals] == [100, 200, 300]
  elbos = [r["elbo"] for r in evals]
  assert elbos[0] < elbos[1] < elbos[2], elbos
  # An untrained decoder scores about 64·log 2 ≈ 44 nats per image.
  assert elbos[-1] > -34, elbos
  protocol = evals[-1]["protocol"]
  assert protocol["num_examples"] == result.spec.num_test
  assert protocol["split"] == "test" and "ELBO" in protocol["estimator"]
  for record in evals:
    assert record["kl"] >= 0
    assert record["elbo"] == pytest.approx(record["reconstruction"] - record["kl"])


@pytest.mark.parametrize("overrides", [
    ["model.architecture=conv"],
    ["model.likelihood=gaussian", "data.binarize=none"],
    ["model.likelihood=gaussian", "model.variance=learned", "data.binarize=none",
     "data.scale=symmetric"],
    ["model.sample_mode=sample"],
])
def test_configurations_train_and_sample(overrides):
  result = jaxgen.fit(small(overrides=overrides))
  assert np.isfinite(result.metrics["train"]["loss"])
  assert np.isfinite(result.metrics["eval"]["elbo"])
  samples = result.method.sample(result.state, jax.random.PRNGKey(0), 5)
  assert samples.shape == (5, 8, 8, 1)
  lo, hi = result.spec.value_range
  if "model.sample_mode=sample" not in overrides or "bernoulli" in str(overrides):
    assert float(samples.min()) >= lo - 1e-6 and float(samples.max()) <= hi + 1e-6


def test_sample_draws_are_binary_for_bernoulli():
  result = jaxgen.fit(small(overrides=["model.sample_mode=sample"]))
  samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(1), 8))
  assert set(np.unique(samples)) <= {0.0, 1.0}


def test_encode_decode_and_reconstruct_shapes():
  result = jaxgen.fit(small(steps=2))
  x = jnp.zeros((3, 8, 8, 1))
  mean, logvar = result.method.encode(result.state, x, None)
  assert mean.shape == logvar.shape == (3, 2)
  assert result.method.decode(result.state, mean).shape == (3, 8, 8, 1)
  assert result.method.reconstruct(result.state, {"x": x}, None).shape == (3, 8, 8, 1)


def test_kl_warmup_ramps_beta_linearly():
  config = small(overrides=["model.beta=2.0", "model.kl_warmup_steps=4"])
  method, spec = _method(config)
  batch = _batch(spec)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  betas, losses = [], []
  for _ in range(6):
    state, metrics = step(state, batch)
    betas.append(float(metrics["beta"]))
    # The reported loss is the β-weighted objective of that step.
    losses.append((float(metrics["loss"]),
                   betas[-1] * float(metrics["kl"]) - float(metrics["reconstruction"])))
  np.testing.assert_allclose(betas, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
  for loss, expected in losses:
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_iwae_training_bound_is_above_its_elbo():
  config = small("iwae", overrides=["model.importance_samples=4"])
  method, spec = _method(config)
  batch = _batch(spec)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  new_state, metrics = jax.jit(method.train_step)(state, batch)
  bound, elbo = float(metrics["iwae_bound"]), float(metrics["elbo"])
  assert float(metrics["loss"]) == pytest.approx(-bound, rel=1e-6)
  assert bound > elbo  # log mean exp >= mean log, per example (Jensen)
  assert int(new_state.step) == 1


@pytest.mark.parametrize("method_name", ["vae", "cvae"])
def test_evaluate_with_per_example_keys_does_not_depend_on_the_batching(method_name):
  """Keys from global indices: 12 examples in one batch or in two batches of 6."""
  config = small(method_name, overrides=["model.eval_importance_samples=6",
                                         "model.eval_chunk_size=4"])
  method, spec = _method(config)
  batch = _batch(spec, size=12)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  key = jax.random.PRNGKey(5)
  evaluate = jax.jit(method.evaluate)

  def run(rows):
    part = jax.tree.map(lambda a: a[rows], batch)
    return evaluate(state, part, rng.index_keys(key, jnp.asarray(rows)))

  whole = run(np.arange(12))
  parts = [run(np.arange(6)), run(np.arange(6, 12))]
  assert set(whole) >= {"elbo", "kl", "reconstruction", "log_likelihood"}
  for name, values in whole.items():
    assert values.shape == (12,)
    np.testing.assert_allclose(values, np.concatenate([p[name] for p in parts]),
                               rtol=1e-5, atol=1e-5, err_msg=name)
  # Different examples get different noise: the same x at two indices differs.
  twin = jax.tree.map(lambda a: jnp.repeat(a[:1], 6, axis=0), batch)
  twins = evaluate(state, twin, rng.index_keys(key, jnp.arange(6)))
  assert len(np.unique(np.asarray(twins["reconstruction"]))) == 6


@pytest.fixture(scope="module")
def trained_cvae():
  config = small("cvae", steps=400, overrides=[
      "model.hidden=(128,)", "model.latent_dim=4", "optim.learning_rate=0.003",
      "data.batch_size=64", "train.eval_every=0", "model.eval_importance_samples=64",
      "model.eval_chunk_size=16"])
  return jaxgen.fit(config)


@pytest.mark.slow
def test_cvae_generates_the_digits_asked_for(trained_cvae):
  result = trained_cvae
  # Grey-level digits in [0, 1], the range of the decoder's mean images.
  ds = data_lib.load_dataset("digits")
  batches = list(data_lib.eval_batches(ds, split="train", batch_size=500))
  train_x = np.concatenate([b["x"][b["mask"] > 0] for b in batches])
  train_y = np.concatenate([b["label"][b["mask"] > 0] for b in batches])
  # A nearest-class-mean classifier reads about 90% of real test digits right.
  centroids = np.stack([train_x[train_y == c].reshape(-1, 64).mean(0) for c in range(10)])
  classify = lambda x: np.argmin(  # noqa: E731
      ((x.reshape(len(x), 1, 64) - centroids) ** 2).sum(-1), axis=1)
  labels = np.repeat(np.arange(10), 20)
  samples = np.asarray(jax.jit(lambda s, k: result.method.sample(
      s, k, 200, labels=labels))(result.state, jax.random.PRNGKey(1)))
  assert samples.shape == (200, 8, 8, 1)
  accuracy = np.mean(classify(samples) == labels)
  assert accuracy > 0.8, accuracy
  # Default labels cycle 0..9.
  cycled = result.method.sample(result.state, jax.random.PRNGKey(1), 20)
  explicit = result.method.sample(result.state, jax.random.PRNGKey(1), 20,
                                  labels=np.arange(20) % 10)
  np.testing.assert_array_equal(cycled, explicit)


@pytest.mark.slow
def test_cvae_evaluates_importance_weighted_log_likelihood(trained_cvae):
  result = trained_cvae
  evaluation = result.metrics["eval"]
  # In expectation log p(x|y) >= the 64-sample bound >= the ELBO; over the
  # whole test split the averages keep that order.
  assert evaluation["log_likelihood"] > evaluation["elbo"]
  assert evaluation["nll"] == pytest.approx(-evaluation["log_likelihood"])
  assert "K=64" in result.history[-1]["protocol"]["estimator"]
  x = jnp.zeros((3, 8, 8, 1))
  with pytest.raises(ConfigError, match="labels"):
    result.method.encode(result.state, x)
  mean, _ = result.method.encode(result.state, x, None, labels=jnp.array([1, 2, 3]))
  assert mean.shape == (3, 4)
  decoded = result.method.decode(result.state, jnp.zeros((2, 4)), labels=jnp.array([0, 7]))
  assert decoded.shape == (2, 8, 8, 1)
  assert float(jnp.abs(decoded[0] - decoded[1]).max()) > 0.05  # the label matters


def test_discretized_logistic_vae_trains_and_samples_on_the_grid():
  config = small(overrides=[
      "model.likelihood=discretized_logistic", "model.variance=learned",
      "data.binarize=none", "model.sample_mode=sample"])
  method, spec = _method(config)
  levels = spec.levels
  x = np.random.default_rng(0).integers(0, levels, (16,) + tuple(spec.shape))
  batch = {"x": jnp.asarray(x / (levels - 1), jnp.float32)}

  @jax.jit
  def run(key):
    state, metrics = method.train_step(method.init(key, batch), batch)
    return metrics["loss"], method.sample(state, key, 6)

  loss, samples = run(jax.random.PRNGKey(0))
  assert np.isfinite(float(loss))
  samples = np.asarray(samples)
  np.testing.assert_allclose(samples * (levels - 1), np.round(samples * (levels - 1)),
                             atol=1e-4)
  assert samples.min() >= 0 and samples.max() <= 1


def test_unconditional_sample_rejects_labels():
  method, spec = _method(small())
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), _batch(spec, 2))
  with pytest.raises(ConfigError, match="unconditional"):
    method.sample(state, jax.random.PRNGKey(0), 2, labels=jnp.array([1, 2]))


def test_traced_code_reads_no_config():
  """make reads the ConfigDict once: changing it afterwards changes nothing."""
  config = small(overrides=["model.beta=2.0"])
  method, spec = _method(config)
  batch = _batch(spec)
  state = method.init(jax.random.PRNGKey(0), batch)
  config.model.beta = 100.0
  config.model.likelihood = "gaussian"
  _, metrics = jax.jit(method.train_step)(state, batch)
  assert float(metrics["beta"]) == 2.0
  assert vae.method.make is vae.make
