"""Schedules and the forward process against their formulas, and q(x_t | x_0) by sampling."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.families.diffusion import schedules


def test_linear_betas_are_ho_et_al_at_1000_steps_and_rescaled_otherwise():
  np.testing.assert_allclose(schedules.linear_betas(1000), np.linspace(1e-4, 0.02, 1000))
  np.testing.assert_allclose(schedules.linear_betas(100),
                             np.linspace(1e-3, 0.2, 100))


def test_cosine_alpha_bar_is_nichol_dhariwal_f_t_over_f_0():
  T, s = 200, 0.008
  schedule = schedules.get("cosine", T)
  f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
  expected = np.array([f(t) / f(0) for t in range(1, T + 1)])
  unclipped = schedule.betas < 0.999
  assert unclipped.sum() >= T - 2  # only the last steps reach the cap
  np.testing.assert_allclose(schedule.alpha_bars[unclipped], expected[unclipped],
                             rtol=1e-10)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_tables_against_their_formulas(name):
  T = 50
  s = schedules.get(name, T)
  betas = s.betas
  alpha_bar, running = [], 1.0
  for b in betas:
    running *= 1.0 - b
    alpha_bar.append(running)
  alpha_bar = np.array(alpha_bar)
  np.testing.assert_allclose(s.alpha_bars, alpha_bar, rtol=1e-12)
  np.testing.assert_allclose(s.alpha_bars_prev[0], 1.0)
  np.testing.assert_allclose(s.alpha_bars_prev[1:], alpha_bar[:-1], rtol=1e-12)
  # The posterior q(x_{t-1} | x_t, x_0) by completing the square, independently
  # of Ho et al.'s closed form: prior N(√ᾱ_{t-1} x_0, 1 - ᾱ_{t-1}), likelihood
  # x_t | x_{t-1} ~ N(√α_t x_{t-1}, β_t).
  for t in range(1, T):
    prior_var = 1.0 - alpha_bar[t - 1]
    precision = 1.0 / prior_var + (1.0 - betas[t]) / betas[t]
    variance = 1.0 / precision
    coef_x0 = variance * math.sqrt(alpha_bar[t - 1]) / prior_var
    coef_xt = variance * math.sqrt(1.0 - betas[t]) / betas[t]
    assert s.posterior_variance[t] == pytest.approx(variance, rel=1e-9)
    assert s.posterior_coef_x0[t] == pytest.approx(coef_x0, rel=1e-9)
    assert s.posterior_coef_xt[t] == pytest.approx(coef_xt, rel=1e-9)
  # t = 0: x_{-1} is x_0 itself.
  assert s.posterior_variance[0] == 0.0
  assert s.posterior_coef_x0[0] == pytest.approx(1.0) and s.posterior_coef_xt[0] == 0.0
  np.testing.assert_allclose(s.posterior_log_variance[0], math.log(s.posterior_variance[1]))
  np.testing.assert_allclose(s.log_variance_large[1:], np.log(betas[1:]))


def test_q_posterior_and_q_mean_variance_use_the_tables():
  s = schedules.get("linear", 30)
  x0 = jnp.array([[0.3, -0.7]] * 3)
  x_t = jnp.array([[1.0, 0.5]] * 3)
  t = jnp.array([0, 7, 29])
  mean, var, log_var = schedules.q_posterior(s, x0=x0, x_t=x_t, t=t)
  for row, step in enumerate([0, 7, 29]):
    np.testing.assert_allclose(mean[row], s.posterior_coef_x0[step] * x0[row]
                               + s.posterior_coef_xt[step] * x_t[row], rtol=1e-6)
    np.testing.assert_allclose(var[row], s.posterior_variance[step], rtol=1e-6)
    np.testing.assert_allclose(log_var[row], s.posterior_log_variance[step], rtol=1e-6)
  qm, qv = schedules.q_mean_variance(s, x0=x0, t=t)
  np.testing.assert_allclose(qm[1], math.sqrt(s.alpha_bars[7]) * x0[1], rtol=1e-6)
  np.testing.assert_allclose(qv[2], 1.0 - s.alpha_bars[29], rtol=1e-6)


def test_q_sample_statistics_by_sampling():
  s = schedules.get("cosine", 100)
  n = 200_000
  x0 = jnp.full((n, 1), 0.8)
  for step in (0, 40, 99):
    t = jnp.full((n,), step)
    noise = jax.random.normal(jax.random.PRNGKey(step), (n, 1))
    x_t = np.asarray(schedules.q_sample(s, x0=x0, t=t, noise=noise), np.float64)
    mean, var = math.sqrt(s.alpha_bars[step]) * 0.8, 1.0 - s.alpha_bars[step]
    # Five standard errors of the sample mean and variance.
    assert abs(x_t.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(x_t.var() - var) < 5 * var * math.sqrt(2.0 / n)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_predictions_recover_x0_and_eps_from_their_targets(prediction):
  s = schedules.get("linear", 100)
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  x0 = jax.random.normal(keys[0], (5, 3))
  eps = jax.random.normal(keys[1], (5, 3))
  t = jnp.array([0, 10, 50, 90, 99])
  x_t = schedules.q_sample(s, x0=x0, t=t, noise=eps)
  target = schedules.training_target(s, prediction=prediction, x0=x0, noise=eps, t=t)
  x0_hat, eps_hat = schedules.predict_x0_and_eps(s, prediction=prediction,
                                                 output=target, x_t=x_t, t=t)
  np.testing.assert_allclose(x0_hat, x0, atol=2e-3)
  np.testing.assert_allclose(eps_hat, eps, atol=2e-3)


def test_respacing_keeps_alpha_bar_at_the_kept_steps():
  s = schedules.get("linear", 1000)
  kept = np.array([0, 99, 500, 999])
  r = schedules.respace(s, kept)
  np.testing.assert_allclose(r.alpha_bars, s.alpha_bars[kept], rtol=1e-12)
  with pytest.raises(ValueError):
    schedules.respace(s, np.array([5, 3]))


def test_learned_variance_interpolates_between_small_and_large():
  s = schedules.get("linear", 100)
  t = jnp.array([10, 60])
  shape = (2, 4)
  lo = schedules.model_log_variance(s, variance="learned", t=t, shape=shape,
                                    frac=-jnp.ones(shape))
  hi = schedules.model_log_variance(s, variance="learned", t=t, shape=shape,
                                    frac=jnp.ones(shape))
  np.testing.assert_allclose(lo[:, 0], s.posterior_log_variance[[10, 60]], rtol=1e-6)
  np.testing.assert_allclose(hi[:, 0], np.log(s.betas[[10, 60]]), rtol=1e-6)


def test_bad_schedule_names_are_one_line_errors():
  with pytest.raises(ConfigError, match="'quadratic' is not one of"):
    schedules.get("quadratic", 10)
  with pytest.raises(ConfigError, match="at least 1"):
    schedules.get("linear", 0)
