"""β-VAE with warm-up, cvae, iwae, the importance-weighted bound, discretized logistic.

Oracles: a linear-Gaussian model whose log p(x) is known exactly; the
discretized logistic's masses against scipy's logistic CDF and their sum over
all levels; Jensen's inequality between the bounds; a classifier reading the
digits a trained cvae was asked for.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import distributions
from jaxgen.errors import ConfigError
from jaxgen.families import vae


# ----------------------------------------------------------- discretized logistic
@pytest.mark.parametrize("levels, low, high", [(2, 0.0, 1.0), (17, 0.0, 1.0),
                                               (256, -1.0, 1.0)])
def test_discretized_logistic_masses_sum_to_one_and_match_scipy(levels, low, high):
  grid = np.linspace(low, high, levels, dtype=np.float32)
  means = np.array([low - 0.3, low, 0.5 * (low + high), high + 0.2], np.float32)
  log_scales = np.array([np.log(0.01), np.log(0.2), np.log(3.0)], np.float32)
  # One example per (mean, scale, level): x of shape [examples, 1].
  m, s, x = (a.reshape(-1, 1) for a in np.meshgrid(means, log_scales, grid,
                                                    indexing="ij"))
  log_p = jax.jit(lambda x, m, s: distributions.discretized_logistic_log_prob(
      x=x, mean=m, log_scale=s, levels=levels, low=low, high=high))(x, m, s)
  log_p = np.asarray(log_p, np.float64).reshape(len(means), len(log_scales), levels)
  np.testing.assert_allclose(special.logsumexp(log_p, axis=-1), 0.0, atol=2e-5)
  half = 0.5 * (high - low) / (levels - 1)
  cdf = lambda v: stats.logistic.cdf(v, loc=m, scale=np.exp(s))  # noqa: E731
  upper = np.where(x > high - half, 1.0, cdf(x + half))
  lower = np.where(x < low + half, 0.0, cdf(x - half))
  expected = (upper - lower).reshape(log_p.shape)
  # Compare where the mass is not lost to float64 rounding in scipy's difference.
  big = expected > 1e-12
  np.testing.assert_allclose(np.exp(log_p[big]), expected[big], rtol=2e-4, atol=1e-7)


def test_discretized_logistic_is_finite_far_in_the_tails_and_sums_per_example():
  x = jnp.array([[0.0, 0.5, 1.0]])
  far = distributions.discretized_logistic_log_prob(
      x=x, mean=jnp.full((1, 3), 40.0), log_scale=math.log(0.01), levels=3)
  assert np.all(np.isfinite(far)) and float(far[0]) < -1e3
  log_p = distributions.discretized_logistic_log_prob(
      x=x, mean=x, log_scale=jnp.zeros((1, 3)) + math.log(0.05), levels=3)
  # Bins of half-width 0.25 = 5 scales: the ends hold σ(5), the middle σ(5) − σ(−5).
  sigmoid = special.expit
  expected = 2 * np.log(sigmoid(5.0)) + np.log(sigmoid(5.0) - sigmoid(-5.0))
  assert log_p.shape == (1,) and float(log_p[0]) == pytest.approx(expected, rel=1e-5)


def test_discretized_logistic_samples_follow_the_masses():
  levels, n = 5, 200_000
  mean, log_scale = jnp.full((n, 1), 0.4), jnp.full((n, 1), math.log(0.15))
  draws = np.asarray(distributions.discretized_logistic_sample(
      jax.random.PRNGKey(0), mean=mean, log_scale=log_scale, levels=levels))
  grid = np.linspace(0, 1, levels)
  assert set(np.round(np.unique(draws), 6)) <= set(np.round(grid, 6))
  counts = np.array([(np.abs(draws - g) < 1e-6).sum() for g in grid])
  probs = np.exp(np.asarray(distributions.discretized_logistic_log_prob(
      x=jnp.asarray(grid[:, None], jnp.float32), mean=mean[:levels],
      log_scale=log_scale[:levels], levels=levels), np.float64))
  assert probs.sum() == pytest.approx(1.0, abs=1e-5)
  _, p_value = stats.chisquare(counts, probs / probs.sum() * n)
  assert p_value > 1e-3, (counts, probs * n)


# ------------------------------------------------- importance-weighted bound
class LinearGaussian:
  """p(z) = N(0, I_2), p(x|z) = N(Wz + b, σ²I_3): log p(x) = log N(x; b, WWᵀ + σ²I)."""

  W = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)  # orthogonal columns
  b = np.array([0.5, -1.0, 0.3], np.float32)
  sigma = 0.7

  def log_px(self, x):
    cov = self.W @ self.W.T + self.sigma**2 * np.eye(3)
    return stats.multivariate_normal(self.b, cov).logpdf(x)

  def posterior(self, x):
    """The exact posterior, diagonal because WᵀW is: (mean [B, 2], logvar [B, 2])."""
    precision = 1.0 + np.diag(self.W.T @ self.W) / self.sigma**2
    mean = ((x - self.b) @ self.W) / self.sigma**2 / precision
    return mean.astype(np.float32), np.broadcast_to(-np.log(precision), mean.shape
                                                    ).astype(np.float32)

  def log_weights(self, x, mean, logvar):
    """eps [C, B, 2] -> log p(x, z) − log q(z|x) [C, B] with z = mean + σ_q eps."""

    def fn(eps):
      z = mean + jnp.exp(0.5 * logvar) * eps
      log_lik = jax.vmap(lambda z: distributions.gaussian_log_prob(
          x=x, mean=z @ self.W.T + self.b, log_scale=math.log(self.sigma)))(z)
      log_prior = jax.vmap(distributions.standard_normal_log_prob)(z)
      log_q = (jax.vmap(distributions.standard_normal_log_prob)(eps)
               - 0.5 * jnp.sum(logvar, -1))
      return log_lik + log_prior - log_q

    return fn


@pytest.fixture(scope="module")
def linear_gaussian():
  model = LinearGaussian()
  x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32) * 1.5
  mean, logvar = model.posterior(x)
  # A deliberately wrong posterior: shifted and too wide.
  rough = (mean + 0.6, logvar + 0.8)
  return model, x, (mean, logvar), rough


def _bound(fn, num_samples, chunk_size, key=jax.random.PRNGKey(3), batch=6):
  return np.asarray(jax.jit(lambda k: vae.importance_weighted_bound(
      fn, k, batch_size=batch, latent_dim=2, num_samples=num_samples,
      chunk_size=chunk_size))(key), np.float64)


def test_bound_is_exact_for_the_true_posterior(linear_gaussian):
  model, x, exact, _ = linear_gaussian
  fn = model.log_weights(x, *exact)
  # Every weight equals p(x): any K gives log p(x) exactly.
  np.testing.assert_allclose(_bound(fn, 10, 4), model.log_px(x), atol=2e-4)


def test_bound_rises_to_log_px_and_k1_is_the_elbo(linear_gaussian):
  model, x, _, rough = linear_gaussian
  fn = model.log_weights(x, *rough)
  key = jax.random.PRNGKey(3)

  @jax.jit
  def first_weights_and_bounds(key):
    # The first 8 log weights, drawn as the function documents, and the
    # function's own 1-, 8- and 5000-sample bounds, in chunks (8 = 3 + 3 + 2).
    eps = vae.importance_noise(key, batch_size=6, latent_dim=2, indices=jnp.arange(8))
    bounds = [vae.importance_weighted_bound(fn, key, batch_size=6, latent_dim=2,
                                            num_samples=k, chunk_size=c)
              for k, c in ((1, 1), (8, 3), (5000, 250))]
    # Plenty of samples for the ELBO's expectation.
    many = jax.random.normal(jax.random.fold_in(key, 10**6), (4000, 6, 2))
    return fn(eps), bounds, jnp.mean(fn(many), axis=0)

  log_w, bounds, elbo = jax.tree.map(lambda a: np.asarray(a, np.float64),
                                     first_weights_and_bounds(key))
  # k=1: the one-sample ELBO estimate log p(x, z_1) − log q(z_1|x).
  np.testing.assert_allclose(bounds[0], log_w[0], rtol=1e-6, atol=1e-5)
  # The first k samples are shared, and chunking does not change the numbers.
  np.testing.assert_allclose(bounds[1], special.logsumexp(log_w, axis=0) - np.log(8),
                             rtol=1e-6, atol=1e-5)
  # Burda et al.'s proof, exactly on these 8 weights: the mean of the k-sample
  # bound over all k-subsets does not decrease with k (A_1 = mean log w, the
  # ELBO estimate; A_8 = the 8-sample bound).
  averages = [np.mean([special.logsumexp(log_w[list(s)], axis=0) - np.log(k)
                       for s in itertools.combinations(range(8), k)], axis=0)
              for k in range(1, 9)]
  assert np.all(np.diff(averages, axis=0) >= -1e-9)
  np.testing.assert_allclose(averages[0], log_w.mean(0))
  # Large K approaches the exact log-likelihood from below, in chunks.
  exact = model.log_px(x)
  elbo_gap = exact - elbo
  gap = exact - bounds[2]
  assert np.all(elbo_gap > 0.3), elbo_gap
  assert np.all(np.abs(gap) < 0.05 * elbo_gap + 0.01), (gap, elbo_gap)
  assert np.mean(gap) > -0.01


def test_bound_runs_in_chunks_of_bounded_size():
  """K=5000 in chunks of 100 is a scan of 50 steps over [100, B] log weights."""
  seen = []

  def fn(eps):
    seen.append(eps.shape)
    return -jnp.sum(eps * eps, -1)

  jaxpr = jax.make_jaxpr(lambda k: vae.importance_weighted_bound(
      fn, k, batch_size=4, latent_dim=3, num_samples=5000, chunk_size=100))(
          jax.random.PRNGKey(0))
  scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
  assert len(scans) == 1 and scans[0].params["length"] == 50
  assert seen == [(100, 4, 3)]
  with pytest.raises(ConfigError, match="num_samples"):
    vae.importance_weighted_bound(fn, jax.random.PRNGKey(0), batch_size=1,
                                  latent_dim=1, num_samples=0)


# ------------------------------------------------------------------ methods
def small(method="vae", data=None, steps=4, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "model.hidden=(32,)", "model.latent_dim=2", "model.channels=(8, 8)",
      "data.batch_size=32", "train.progress=False", *overrides])
  config.train.steps = steps
  return config


def _method(config):
  spec = data_lib.from_config(config.data).spec
  return vae.registry.get(config.method).make(config, spec), spec


def _batch(spec, size=8, seed=0):
  rng_np = np.random.default_rng(seed)
  x = (rng_np.random((size,) + tuple(spec.shape)) < 0.5).astype(np.float32)
  return {"x": jnp.asarray(x), "label": jnp.asarray(np.arange(size) % 10, jnp.int32)}


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


@pytest.fixture(scope="module")
def trained_cvae():
  config = small("cvae", steps=400, overrides=[
      "model.hidden=(128,)", "model.latent_dim=4", "optim.learning_rate=0.003",
      "data.batch_size=64", "train.eval_every=0", "model.eval_importance_samples=64",
      "model.eval_chunk_size=16"])
  return jaxgen.fit(config)


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


@pytest.mark.parametrize("method, data, overrides, fragment", [
    ("iwae", None, ["model.beta=2.0"], "no KL weight"),
    ("iwae", None, ["model.importance_samples=0"], "importance_samples"),
    ("cvae", None, ["data.labels=False"], "needs labelled data"),
    ("vae", None, ["model.likelihood=discretized_logistic"], "binarized"),
    ("vae", None, ["model.likelihood=discretized_logistic", "data.binarize=none",
                   "data.dequantize=True"], "dequantized"),
    ("vae", "toy2d:ring8", ["model.likelihood=discretized_logistic"], "continuous"),
    ("vae", None, ["model.activation=swish"], "model.activation='swish' is not one of"),
    ("vae", None, ["model.kl_warmup_steps=-1"], "kl_warmup_steps"),
    ("vae", None, ["model.eval_importance_samples=-5"], "eval_importance_samples"),
])
def test_settings_that_do_not_fit_are_one_line_errors(method, data, overrides, fragment):
  config = small(method, data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    vae.registry.get(method).make(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unconditional_sample_rejects_labels():
  method, spec = _method(small())
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), _batch(spec, 2))
  with pytest.raises(ConfigError, match="unconditional"):
    method.sample(state, jax.random.PRNGKey(0), 2, labels=jnp.array([1, 2]))
