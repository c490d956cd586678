"""Losses and the variational bound: closed forms, scipy, and the Gaussian case."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import optax
from scipy import stats

from jaxgen import distributions
from jaxgen.core import rng as rng_lib
from jaxgen.families.diffusion import losses, schedules

MU, S, D = 0.5, 0.3, 2  # data N(MU, S² I) in D dims


def _table(values, t):
  return jnp.asarray(np.asarray(values, np.float32))[t][:, None]


def gaussian_reverse_model(schedule, exact_variance: bool):
  """p(x_{t-1} | x_t) for data N(MU, S²): the exact mean, and the exact or β̃ variance."""

  def model(x_t, t):
    ab = _table(schedule.alpha_bars, t)
    marginal = ab * S**2 + 1.0 - ab
    x0_mean = MU + jnp.sqrt(ab) * S**2 * (x_t - jnp.sqrt(ab) * MU) / marginal
    x0_var = S**2 * (1.0 - ab) / marginal
    coef_x0 = _table(schedule.posterior_coef_x0, t)
    mean = coef_x0 * x0_mean + _table(schedule.posterior_coef_xt, t) * x_t
    if exact_variance:  # Var[x_{t-1} | x_t] = β̃_t + coef² Var[x_0 | x_t]
      log_var = jnp.log(_table(schedule.posterior_variance, t) + coef_x0**2 * x0_var)
    else:
      log_var = _table(schedule.posterior_log_variance, t)
    return mean, jnp.broadcast_to(log_var, x_t.shape)

  return model


def test_simple_loss_is_the_mean_squared_error_per_example():
  rng = np.random.default_rng(0)
  eps, eps_hat = rng.normal(size=(2, 4, 3, 3, 1)).astype(np.float32)
  got = losses.simple_loss(prediction=eps_hat, target=eps)
  np.testing.assert_allclose(got, ((eps - eps_hat) ** 2).reshape(4, -1).mean(-1), rtol=1e-6)


def test_the_bound_kl_against_numerical_integration():
  # vlb_term's KL is distributions.gaussian_kl between two Gaussians: check
  # that general form (neither of them standard) by quadrature.
  x = np.linspace(-12, 12, 200_001)
  m1, v1, m2, v2 = 0.3, 0.5, -0.4, 1.7
  p, q = stats.norm.pdf(x, m1, v1**0.5), stats.norm.pdf(x, m2, v2**0.5)
  numeric = np.trapezoid(p * (np.log(p) - np.log(q)), x)
  full = lambda v: jnp.full((1, 1), v, jnp.float32)  # noqa: E731
  got = distributions.gaussian_kl(mean=full(m1), logvar=full(math.log(v1)),
                                  prior_mean=full(m2), prior_logvar=full(math.log(v2)))
  assert float(got[0]) == pytest.approx(numeric, rel=1e-5)


def test_continuous_decoder_term_is_the_gaussian_log_density():
  # At t = 0 the term is −log N(x_0; μ, σ²) summed over dimensions (scipy).
  s = schedules.get("linear", 10)
  rng = np.random.default_rng(2)
  x0, mean = rng.normal(size=(2, 3, 4)).astype(np.float32)
  log_var = np.full((3, 4), math.log(0.3), np.float32)
  got = losses.vlb_term(s, x0=x0, x_t=x0, t=jnp.zeros(3, jnp.int32), model_mean=mean,
                        model_log_variance=log_var, levels=None)
  expected = -stats.norm.logpdf(x0, mean, math.sqrt(0.3)).sum(-1)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_discrete_decoder_term_is_the_codecs_discretized_gaussian():
  s = schedules.get("linear", 10)
  grid = np.linspace(-1, 1, 17, dtype=np.float32)
  x0 = grid[np.random.default_rng(3).integers(0, 17, (4, 5))]
  mean = np.full((4, 5), 0.2, np.float32)
  log_var = np.full((4, 5), math.log(0.09), np.float32)
  got = losses.vlb_term(s, x0=x0, x_t=x0, t=jnp.zeros(4, jnp.int32), model_mean=mean,
                        model_log_variance=log_var, levels=17)
  edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
  mass = np.diff(stats.norm.cdf(edges, 0.2, 0.3))
  expected = -np.log(mass[np.searchsorted(grid, x0)]).sum(-1)
  np.testing.assert_allclose(got, expected, rtol=2e-4)


def test_vlb_terms_are_non_negative_for_any_model():
  s = schedules.get("linear", 40)
  rng = np.random.default_rng(1)
  x0 = jnp.asarray(rng.uniform(-1, 1, (8, 4, 4, 1)), jnp.float32)
  x_t = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
  mean = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
  log_var = jnp.asarray(rng.normal(size=(8, 4, 4, 1)) - 3.0, jnp.float32)
  t = jnp.arange(8) * 5
  grid = jnp.round((x0 + 1) * 8) / 8 - 1  # 17 levels
  terms = losses.vlb_term(s, x0=grid, x_t=x_t, t=t, model_mean=mean,
                          model_log_variance=log_var, levels=17)
  assert terms.shape == (8,) and bool(jnp.all(terms >= 0))  # KLs, and -log P(bin) ≥ 0
  assert bool(jnp.all(losses.prior_kl(s, x0=x0) >= 0))


@pytest.fixture(scope="module")
def gaussian_bounds():
  """The bound for data N(MU, S²) with the exact reverse model and with β̃ variances."""
  schedule = schedules.get("linear", 200)
  n = 10_000
  x0 = MU + S * jax.random.normal(jax.random.PRNGKey(0), (n, D))
  out = {}
  for exact in (True, False):
    model = gaussian_reverse_model(schedule, exact)
    terms = jax.jit(lambda x0, model=model: losses.bound_terms(
        schedule, model=model, x0=x0, key=jax.random.PRNGKey(1), levels=None))(x0)
    out[exact] = np.asarray(sum(terms.values()), np.float64)
  nll = -stats.norm.logpdf(np.asarray(x0, np.float64), MU, S).sum(-1)
  return out, nll


def test_bound_equals_the_nll_for_the_exact_reverse_process(gaussian_bounds):
  # With p(x_{t-1} | x_t) = q(x_{t-1} | x_t), E_q[L] = -log p(x_0) exactly (up to
  # the N(0, I) prior at T); the estimate has one x_t draw per step.
  bounds, nll = gaussian_bounds
  gap = bounds[True] - nll
  assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(len(gap)) + 1e-3, gap.mean()


def test_bound_with_fixed_variances_is_above_the_true_nll(gaussian_bounds):
  bounds, nll = gaussian_bounds
  gap = bounds[False] - nll
  # β̃ misses Var[x_0 | x_t] at small t: a strictly looser bound.
  assert gap.mean() > 10 * gap.std() / math.sqrt(len(gap))
  assert bounds[False].mean() > bounds[True].mean()


def test_classifier_loss_is_the_cross_entropy():
  # The classifier's loss is optax's integer-label cross-entropy: −log softmax[y].
  logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
  labels = jnp.array([0, 1])
  expected = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))[[0, 1], [0, 1]]
  np.testing.assert_allclose(
      optax.softmax_cross_entropy_with_integer_labels(logits, labels), expected, rtol=1e-5)


def _draws(shape=(6, 3), timesteps=20, seed=4):
  s = schedules.get("linear", timesteps)
  generator = np.random.default_rng(seed)
  x0 = jnp.asarray(generator.uniform(-1, 1, shape), jnp.float32)
  noise = jnp.asarray(generator.normal(size=shape), jnp.float32)
  t = jnp.asarray(generator.integers(0, timesteps, shape[0]), jnp.int32)
  return s, x0, noise, t


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_simple_objective_regresses_on_the_parameterization_target(prediction):
  s, x0, noise, t = _draws()
  a = np.sqrt(s.alpha_bars[np.asarray(t)])[:, None]
  b = np.sqrt(1.0 - s.alpha_bars[np.asarray(t)])[:, None]
  target = {"epsilon": noise, "x0": x0,  # v = √ᾱ ε − √(1−ᾱ) x_0 (Salimans & Ho)
            "v": a * np.asarray(noise, np.float64) - b * np.asarray(x0, np.float64)}[prediction]
  output = jnp.asarray(np.random.default_rng(5).normal(size=x0.shape), jnp.float32)
  got = losses.simple_objective(s, prediction=prediction, output=output, x0=x0,
                                noise=noise, t=t)
  np.testing.assert_allclose(got, ((np.asarray(target) - output) ** 2).mean(-1), rtol=1e-5)
  exact = losses.simple_objective(s, prediction=prediction,
                                  output=jnp.asarray(target, jnp.float32), x0=x0,
                                  noise=noise, t=t)
  np.testing.assert_allclose(exact, 0.0, atol=1e-10)


def test_vlb_objective_is_T_times_the_term_in_bits_per_dim():
  s, x0, noise, t = _draws()
  x_t = schedules.q_sample(s, x0=x0, t=t, noise=noise)
  mean, log_var = x_t * 0.9, jnp.full(x0.shape, -4.0)
  term = losses.vlb_term(s, x0=x0, x_t=x_t, t=t, model_mean=mean,
                         model_log_variance=log_var, levels=None)
  got = losses.vlb_objective(s, x0=x0, x_t=x_t, t=t, model_mean=mean,
                             model_log_variance=log_var, levels=None)
  np.testing.assert_allclose(got, 20 * term / (3 * math.log(2)), rtol=1e-6)


def test_hybrid_trains_the_mean_by_l_simple_and_the_variance_by_the_bound():
  s, x0, noise, t = _draws()
  weight = 0.25

  def terms(objective, a, c):
    # A stand-in network: output a·x_t, variance output c (learned variance).
    network = lambda x_t, tt: (a * x_t, jnp.full_like(x_t, c))  # noqa: E731
    return losses.training_losses(
        s, objective=objective, prediction="epsilon", variance="learned",
        hybrid_weight=weight, levels=None, network=network, x0=x0, t=t, noise=noise)

  loss, aux = terms("hybrid", 0.7, 0.1)
  np.testing.assert_allclose(loss, aux["simple"] + weight * aux["vlb"], rtol=1e-6)
  simple, _ = terms("simple", 0.7, 0.1)
  vlb, _ = terms("vlb", 0.7, 0.1)
  np.testing.assert_allclose(aux["simple"], simple, rtol=1e-6)
  np.testing.assert_allclose(aux["vlb"], vlb, rtol=1e-6)
  grad = lambda objective: jax.grad(  # noqa: E731
      lambda a, c: jnp.mean(terms(objective, a, c)[0]), argnums=(0, 1))(0.7, 0.1)
  hybrid_a, hybrid_c = grad("hybrid")
  simple_a, simple_c = grad("simple")
  vlb_a, vlb_c = grad("vlb")
  assert float(simple_c) == 0.0 and abs(float(vlb_a)) > 1e-3  # not vacuous
  # The mean's gradient is L_simple's alone; the variance's is λ L_vlb's.
  assert float(hybrid_a) == pytest.approx(float(simple_a), rel=1e-5)
  assert float(hybrid_c) == pytest.approx(weight * float(vlb_c), rel=1e-5)


def test_the_bound_with_per_example_keys_does_not_depend_on_the_batching():
  schedule = schedules.get("linear", 30)
  model = gaussian_reverse_model(schedule, exact_variance=False)
  x0 = MU + S * jax.random.normal(jax.random.PRNGKey(2), (12, D))
  keys = rng_lib.index_keys(jax.random.PRNGKey(7), jnp.arange(12))
  bound = jax.jit(lambda x, k: losses.bound_terms(schedule, model=model, x0=x, key=k,
                                                  levels=None))
  whole = bound(x0, keys)
  halves = [bound(x0[i:i + 6], keys[i:i + 6]) for i in (0, 6)]
  for name in ("prior", "decoder", "diffusion"):
    np.testing.assert_allclose(np.concatenate([h[name] for h in halves]), whole[name],
                               rtol=1e-6, atol=1e-6)
  # With one key per batch, example i's noise depends on its place in the batch.
  single = bound(x0, jax.random.PRNGKey(7))
  second = bound(x0[6:], jax.random.PRNGKey(7))
  assert np.abs(np.asarray(single["diffusion"][6:]) - second["diffusion"]).max() > 1e-4
