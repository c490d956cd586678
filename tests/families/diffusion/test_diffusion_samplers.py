"""Samplers with the analytic optimal denoiser: they must reproduce the data distribution.

For data N(MU, S² I) the optimal ε-predictor is closed-form,
ε*(x_t, t) = √(1−ᾱ_t)(x_t − √ᾱ_t MU)/(ᾱ_t S² + 1 − ᾱ_t); for a single point
(S = 0) every sampler's reverse chain is exact at every step.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.diffusion import samplers, schedules

MU, S = 0.5, 0.3
N = 100_000
T = 1000


def optimal_denoiser(schedule, scale, prediction="epsilon"):
  """The exact E[ε | x_t] (or its x_0 / v equivalent) for data N(MU, scale²)."""
  table = jnp.asarray(np.asarray(schedule.alpha_bars, np.float32))

  def denoise(params, x, t, cond):
    del params, cond
    ab = table[t][:, None]
    eps = jnp.sqrt(1.0 - ab) * (x - jnp.sqrt(ab) * MU) / (ab * scale**2 + 1.0 - ab)
    if prediction == "x0":
      return (x - jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(ab), None
    if prediction == "v":
      x0 = (x - jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(ab)
      return jnp.sqrt(ab) * eps - jnp.sqrt(1.0 - ab) * x0, None
    return eps, None

  return denoise


def exact_output_moments(schedule, plan_steps, sampler, eta, variance, scale):
  """Mean and variance of the sampler's output, by the linear-Gaussian recursion.

  Every step is x' = A x + B + σ z with A, B from the formulas of Ho et al.
  (posterior mean) and Song et al. (DDIM), computed here in float64 from ᾱ
  alone, independently of the sampler's tables.
  """
  timesteps = samplers.timestep_subsequence(T, plan_steps)
  abar = np.asarray(schedule.alpha_bars, np.float64)[timesteps]
  mean, var = 0.0, 1.0  # x_T ~ N(0, 1)
  for i in range(len(timesteps) - 1, -1, -1):
    a_t = abar[i]
    a_p = abar[i - 1] if i > 0 else 1.0
    marginal = a_t * scale**2 + 1.0 - a_t
    # ε* = c (x − √ᾱ MU), x̂_0 = MU + g (x − √ᾱ MU)
    c = math.sqrt(1 - a_t) / marginal
    g = math.sqrt(a_t) * scale**2 / marginal
    if sampler == "ddpm":
      beta = 1.0 - a_t / a_p
      coef_x0 = math.sqrt(a_p) * beta / (1 - a_t)
      coef_xt = math.sqrt(1 - beta) * (1 - a_p) / (1 - a_t)
      A = coef_x0 * g + coef_xt
      B = coef_x0 * (MU - g * math.sqrt(a_t) * MU)
      if i == 0:
        sigma2 = 0.0
      elif variance == "fixed_small":
        sigma2 = beta * (1 - a_p) / (1 - a_t)
      else:
        sigma2 = beta
    else:
      sigma2 = 0.0 if i == 0 else eta**2 * (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
      d = math.sqrt(max(1 - a_p - sigma2, 0.0))
      A = math.sqrt(a_p) * g + d * c
      B = math.sqrt(a_p) * (MU - g * math.sqrt(a_t) * MU) - d * c * math.sqrt(a_t) * MU
    mean, var = A * mean + B, A * A * var + sigma2
  return mean, var


CASES = [("ddpm", None, 0.0, "fixed_small"), ("ddpm", None, 0.0, "fixed_large"),
         ("ddpm", 100, 0.0, "fixed_small"), ("ddim", 50, 0.0, "fixed_small"),
         ("ddim", 50, 1.0, "fixed_small"), ("ddim", 1000, 0.0, "fixed_small")]


@pytest.fixture(scope="module")
def schedule():
  return schedules.get("linear", T)


@pytest.mark.parametrize("sampler,steps,eta,variance", CASES)
def test_gaussian_data_is_reproduced(schedule, sampler, steps, eta, variance):
  settings = samplers.Settings(sampler=sampler, variance=variance)
  plan = samplers.make_plan(schedule, steps)
  x_T = jax.random.normal(jax.random.PRNGKey(0), (N, 1))
  out = samplers.sample(optimal_denoiser(schedule, S), {}, {}, settings, plan, x_T,
                        jax.random.PRNGKey(1), eta)
  out = np.asarray(out, np.float64)[:, 0]
  mean, var = exact_output_moments(schedule, steps or T, sampler, eta, variance, S)
  # 1. The implementation: the sample moments are those of the exact recursion.
  assert abs(out.mean() - mean) < 5 * math.sqrt(var / N)
  assert abs(out.var() - var) < 5 * var * math.sqrt(2.0 / N)
  # 2. The algorithm: the output distribution is the data's, up to the
  # discretisation error of the chain. With all 1000 steps it is a few per
  # cent of the variance; with 50 evenly spaced steps DDIM loses 17% (η = 0)
  # to 29% (η = 1) of it, a property of the coarse chain, not of the code.
  assert abs(mean - MU) < 0.01
  if (steps or T) == T:
    assert abs(var / S**2 - 1.0) < 0.05, var / S**2
  else:
    assert 0.6 < var / S**2 < 1.0, var / S**2


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", None, 0.0), ("ddim", 20, 0.0),
                                               ("ddim", 20, 1.0)])
def test_single_point_every_intermediate_marginal_is_exact(schedule, sampler, steps, eta):
  # For x_0 = MU the reverse chain of DDPM (β̃ variance) and of DDIM (any η) is
  # the exact q: starting from q(x_T | MU), x after each step is distributed
  # as q(x_τ | MU) = N(√ᾱ_τ MU, 1 − ᾱ_τ), and the last step returns MU.
  settings = samplers.Settings(sampler=sampler, variance="fixed_small")
  plan = samplers.make_plan(schedule, steps)
  denoise = optimal_denoiser(schedule, 0.0)
  abar_T = float(plan.alpha_bar[0])
  x = math.sqrt(abar_T) * MU + math.sqrt(1 - abar_T) * jax.random.normal(
      jax.random.PRNGKey(2), (N, 1))
  key = jax.random.PRNGKey(3)
  half = plan.num_steps // 2
  first = jax.tree.map(lambda a: a[:half], plan)
  rest = jax.tree.map(lambda a: a[half:], plan)
  x_mid = samplers.sample(denoise, {}, {}, settings, first, x, key, eta)
  abar_mid = float(plan.alpha_bar_prev[half - 1])  # ᾱ at the step reached
  mid = np.asarray(x_mid, np.float64)[:, 0]
  assert abs(mid.mean() - math.sqrt(abar_mid) * MU) < 5 * math.sqrt((1 - abar_mid) / N)
  assert abs(mid.var() / (1 - abar_mid) - 1.0) < 5 * math.sqrt(2.0 / N)
  out = samplers.sample(denoise, {}, {}, settings, rest, x_mid, key, eta)
  np.testing.assert_allclose(np.asarray(out), MU, atol=2e-4)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_parameterisations_give_the_same_chain(schedule, prediction):
  plan = samplers.make_plan(schedule, 25)
  x_T = jax.random.normal(jax.random.PRNGKey(4), (512, 1))
  outs = []
  for pred in ("epsilon", prediction):
    settings = samplers.Settings(sampler="ddpm", prediction=pred)
    outs.append(samplers.sample(optimal_denoiser(schedule, S, pred), {}, {}, settings,
                                plan, x_T, jax.random.PRNGKey(5)))
  np.testing.assert_allclose(outs[0], outs[1], atol=1e-3)


def test_chunked_loop_with_progress_equals_the_single_loop(schedule):
  plan = samplers.make_plan(schedule, 30)
  settings = samplers.Settings(sampler="ddim")
  x_T = jax.random.normal(jax.random.PRNGKey(6), (64, 2))
  denoise = optimal_denoiser(schedule, S)
  one = samplers.sample(denoise, {}, {}, settings, plan, x_T, jax.random.PRNGKey(7), 0.5)
  chunked = samplers.sample(denoise, {}, {}, settings, plan, x_T, jax.random.PRNGKey(7),
                            0.5, chunk_size=7, progress=True)
  np.testing.assert_array_equal(np.asarray(one), np.asarray(chunked))


def test_plan_visits_evenly_spaced_steps_in_reverse(schedule):
  plan = samplers.make_plan(schedule, 5)
  np.testing.assert_array_equal(plan.t, [999, 749, 500, 250, 0])
  np.testing.assert_array_equal(plan.index, [4, 3, 2, 1, 0])
  np.testing.assert_allclose(plan.alpha_bar, schedule.alpha_bars[plan.t], rtol=1e-6)
  np.testing.assert_allclose(plan.alpha_bar_prev[:-1], plan.alpha_bar[1:], rtol=1e-6)
  assert plan.alpha_bar_prev[-1] == 1.0
