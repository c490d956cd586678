"""The `realnvp` method end to end: fit, exact densities, sampling, resume, devices, errors."""

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
from jaxgen.families import realnvp
from jaxgen.families.realnvp import method as method_lib
from jaxgen.families.realnvp.plots import density_figure, density_grid
from tests.helpers import assert_trees_close, assert_trees_equal

TOY = ["model.hidden=(32, 32)", "model.couplings=4", "data.num_examples=2000",
       "data.batch_size=64", "optim.learning_rate=0.003"]
TINY_CONV = ["model.features=8", "model.blocks=1", "data.batch_size=16"]


def small(data="toy2d:moons", steps=3, overrides=()):
  config = config_lib.get_config("realnvp", data)
  config_lib.apply_overrides(config, [
      "train.progress=False", "train.num_samples=0", f"train.steps={steps}",
      "train.eval_every=0", *(TOY if data.startswith("toy2d") else TINY_CONV), *overrides])
  return config


@pytest.fixture(scope="module")
def moons_run():
  """The 2-D flow with batch normalization on moons, 60 steps."""
  return jaxgen.fit(small(steps=60, overrides=["train.log_every=10"]))


def box(spec, margin=3.0):
  low, high = spec.value_range
  return (low - margin,) * 2, (high + margin,) * 2


def test_an_untrained_2d_density_integrates_to_one():
  config = small()
  dataset = data_lib.from_config(config.data)
  method = registry.get("realnvp").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=64, seed=0))
  state = method.init(jax.random.PRNGKey(0), batch)
  low, high = box(dataset.spec)
  grid = density_grid(realnvp.model_of(method), state, low=low, high=high, points=300)
  assert grid.mass == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_the_trained_2d_density_integrates_to_one_and_learns(moons_run, tmp_path):
  train = [r for r in moons_run.history if r["split"] == "train"]
  assert train[-1]["bits_per_dim"] < train[0]["bits_per_dim"] - 0.1, [
      r["bits_per_dim"] for r in train]
  model = realnvp.model_of(moons_run.method)
  low, high = box(moons_run.spec)
  grid = density_grid(model, moons_run.state, low=low, high=high, points=400)
  assert grid.mass == pytest.approx(1.0, abs=1e-3)
  # The grid's density is the evaluator's: exp(−nll) at the same points.
  points = np.stack(np.meshgrid(grid.xs[::50], grid.ys[::50]), -1).reshape(-1, 2)
  nll = moons_run.method.evaluate(moons_run.state, {"x": jnp.asarray(points, jnp.float32)},
                                  jax.random.PRNGKey(0))["nll"]
  density = grid.density[::50, ::50].ravel()
  assert np.sum(density > 1e-3) >= 4
  np.testing.assert_allclose(-np.asarray(nll)[density > 0], np.log(density[density > 0]),
                             rtol=1e-5, atol=1e-5)
  samples = moons_run.method.sample(moons_run.state, jax.random.PRNGKey(1), 500)
  density_figure(tmp_path / "density.png", grid, data=np.asarray(points), samples=samples)
  assert (tmp_path / "density.png").stat().st_size > 1000


@pytest.mark.slow
def test_temperature_encoding_and_interpolation(moons_run):
  method, state = moons_run.method, moons_run.state
  model = realnvp.model_of(method)
  key = jax.random.PRNGKey(2)
  # T = 0: every sample is the image of z = 0.
  cold = np.asarray(method.sample(state, key, 4, temperature=0.0))
  np.testing.assert_allclose(cold, np.repeat(np.asarray(method.decode(
      state, jnp.zeros((1, 2)))), 4, axis=0), rtol=1e-6)
  # A sample at temperature T encodes back to T·ε with the key's ε.
  warm = method.sample(state, key, 6, temperature=0.5)
  np.testing.assert_allclose(method.encode(state, warm),
                             0.5 * jax.random.normal(key, (6, 2)), atol=1e-4)
  x_a, x_b = warm[:3], warm[3:]
  for path in ("linear", "elliptic"):
    line = realnvp.interpolate(model, state, x_a, x_b, 5, path=path)
    assert line.shape == (3, 5, 2)
    np.testing.assert_allclose(line[:, 0], x_a, atol=1e-4)
    np.testing.assert_allclose(line[:, -1], x_b, atol=1e-4)
  with pytest.raises(ConfigError, match="unknown interpolation path"):
    realnvp.interpolate(model, state, x_a, x_b, 5, path="spline")


def _toy(steps, **train):
  # SGD, not Adam: at the start some gradients are zero in exact arithmetic
  # (a batch-normalized layer's shift and scale, followed through identity
  # couplings by another batch normalization, do not change the output), and
  # Adam turns their float rounding, which differs with the reduction order of
  # 1 or 4 devices, into full-size steps of either sign.
  config = small(steps=steps, overrides=["train.final_eval=False", "data.batch_size=32",
                                         "optim.name=sgd", "optim.learning_rate=0.05"])
  for key, value in train.items():
    config.train[key] = value
  return config


@pytest.mark.slow
def test_resume_is_bit_exact_and_devices_agree(tmp_path):
  uninterrupted = jaxgen.fit(_toy(6))
  jaxgen.fit(_toy(4, checkpoint_every=4), workdir=tmp_path / "run")
  resumed = jaxgen.fit(_toy(6, checkpoint_every=4), workdir=tmp_path / "run", resume=True)
  assert_trees_equal(jax.tree.map(np.asarray, resumed.state.params),
                     jax.tree.map(np.asarray, uninterrupted.state.params))
  assert_trees_equal(jax.tree.map(np.asarray, resumed.state.model_state),
                     jax.tree.map(np.asarray, uninterrupted.state.model_state))
  # Batch statistics are over the global batch: 4 devices give the 1-device run.
  one = jaxgen.fit(_toy(4, num_devices=1))
  for strategy in ("pmap", "jit"):
    four = jaxgen.fit(_toy(4, num_devices=4, strategy=strategy))
    assert_trees_close(jax.tree.map(np.asarray, four.state.params),
                       jax.tree.map(np.asarray, one.state.params), rtol=1e-4, atol=1e-5)
    assert_trees_close(jax.tree.map(np.asarray, four.state.model_state),
                       jax.tree.map(np.asarray, one.state.model_state), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_multi_seed_replicas_match_single_seed_runs():
  multi = jaxgen.fit(_toy(3, seeds=(0, 1)))
  for replica, seed in enumerate((0, 1)):
    single = jaxgen.fit(_toy(3, seed=seed))
    assert_trees_close(jax.tree.map(lambda x: np.asarray(x[replica]), multi.state.params),
                       jax.tree.map(np.asarray, single.state.params), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def digits_run():
  """The multi-scale flow with ActNorm on digits, 3 steps, evaluated on the test split."""
  return jaxgen.fit(small("digits", steps=3, overrides=[
      "model.normalization=actnorm", "train.final_eval=True"]))


@pytest.mark.slow
def test_digits_run_reports_bits_per_dim_and_samples_in_range(digits_run):
  evaluation = digits_run.metrics["eval"]
  assert evaluation["bits_per_dim"] == pytest.approx(
      evaluation["nll"] / (64 * np.log(2)), rel=1e-6)
  record = [r for r in digits_run.history if r["split"] == "test"][-1]
  assert "17 levels" in record["protocol"]["units"]
  assert "α = 0.05" in record["protocol"]["preprocessing"]
  samples = np.asarray(digits_run.method.sample(digits_run.state, jax.random.PRNGKey(0), 4,
                                                temperature=0.7))
  assert samples.shape == (4, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.slow
def test_digits_evaluation_does_not_depend_on_the_batching(digits_run):
  method, state = digits_run.method, digits_run.state
  batch = next(data_lib.eval_batches(data_lib.from_config(digits_run.config.data),
                                     split="test", batch_size=8))
  batch = {k: jnp.asarray(v) for k, v in batch.items() if k != "mask"}
  keys = rng.index_keys(jax.random.PRNGKey(3), jnp.arange(8))
  evaluate = jax.jit(method.evaluate)
  whole = evaluate(state, batch, keys)
  parts = [evaluate(state, {k: v[i:i + 4] for k, v in batch.items()}, keys[i:i + 4])
           for i in (0, 4)]
  for name, values in whole.items():
    np.testing.assert_allclose(np.concatenate([p[name] for p in parts]), values,
                               rtol=1e-5, atol=1e-5)
  # Interpolation between digits starts and ends at the originals (bin centres).
  model = realnvp.model_of(method)
  line = realnvp.interpolate(model, state, batch["x"][:2], batch["x"][2:4], 4)
  assert line.shape == (2, 4, 8, 8, 1)
  np.testing.assert_allclose(line[:, 0], batch["x"][:2], atol=0.5 / 17 + 1e-4)


def test_actnorm_is_initialised_from_the_first_real_batch():
  config = small(overrides=["model.normalization=actnorm"])
  dataset = data_lib.from_config(config.data)
  method = registry.get("realnvp").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=64, seed=0))
  state = method.init(jax.random.PRNGKey(0), batch)
  model = realnvp.model_of(method)
  y, _ = method_lib.preprocess(model, batch["x"], None)
  first = state.params["flow"]["norm0"]
  np.testing.assert_allclose(first["bias"], -np.mean(y, 0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(first["log_scale"], -np.log(np.std(y, 0) + 1e-6), rtol=1e-5)


@pytest.mark.parametrize("data,overrides,fragment", [
    ("digits", ["model.architecture=mlp"], "needs vector data"),
    ("toy2d:moons", ["model.architecture=multiscale"], "needs image data"),
    ("digits", ["model.num_scales=5"], "divisible by 16"),
    ("toy2d:moons", ["model.preprocessing=logit"], "needs bounded data"),
    ("digits", ["model.normalization=layer"], "unknown model.normalization 'layer'"),
    ("digits", ["model.alpha=0.5"], "model.alpha must be < 0.5"),
])
def test_settings_that_do_not_fit_are_one_line_errors(data, overrides, fragment):
  config = small(data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    registry.get("realnvp").make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_model_key_is_a_one_line_error():
  config = small("digits")
  with pytest.raises(AttributeError, match="widths"):
    config.model.widths = 3   # configs are locked: a typo cannot add a key
  with config.unlocked():     # and should one get in anyway, make refuses it
    config.model.widths = 3
  with pytest.raises(ConfigError, match="unknown key model.widths; valid: "):
    registry.get("realnvp").make(config, data_lib.from_config(config.data).spec)


def test_realnvp_is_registered_and_picks_the_architecture_from_the_data():
  assert registry.get("realnvp").family == "flow"
  for data, architecture in (("digits", "multiscale"), ("toy2d:moons", "mlp")):
    config = small(data)
    method = registry.get("realnvp").make(config, data_lib.from_config(config.data).spec)
    assert realnvp.model_of(method).settings.architecture == architecture
  config = small("digits", overrides=["data.flatten=True"])
  method = registry.get("realnvp").make(config, data_lib.from_config(config.data).spec)
  settings = realnvp.model_of(method).settings
  assert settings.architecture == "mlp" and settings.logit and settings.dequantize
