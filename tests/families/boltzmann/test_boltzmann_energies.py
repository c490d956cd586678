"""RBM energies against brute-force enumeration of a 10 x 8 RBM (2^18 joint states)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from jaxgen.core import rng
from jaxgen.families.boltzmann import energies

D, H = 10, 8


def _params(seed=0, scale=0.5, dim=D, hidden=H):
  r = np.random.default_rng(seed)
  return {"weights": jnp.asarray(scale * r.standard_normal((dim, hidden)), jnp.float32),
          "visible_bias": jnp.asarray(scale * r.standard_normal(dim), jnp.float32),
          "hidden_bias": jnp.asarray(scale * r.standard_normal(hidden), jnp.float32)}


def _np(params):
  return {k: np.asarray(v, np.float64) for k, v in params.items()}


def _joint(params):
  """All (v, h) and their exact log p(v, h) (float64)."""
  p = _np(params)
  states = np.array(list(itertools.product((0.0, 1.0), repeat=D + H)))
  v, h = states[:, :D], states[:, D:]
  neg_energy = v @ p["visible_bias"] + h @ p["hidden_bias"] + np.sum((v @ p["weights"]) * h, 1)
  log_z = special.logsumexp(neg_energy)
  return v, h, neg_energy - log_z, log_z


def test_log_partition_and_free_energy_match_enumeration():
  params = _params()
  v, h, log_p, log_z = _joint(params)
  np.testing.assert_allclose(energies.log_partition_exact(params=params, visible="bernoulli"),
                             log_z, rtol=1e-6)
  all_v = np.asarray(energies.all_binary(D))
  free = np.asarray(energies.free_energy(v=jnp.asarray(all_v), params=params,
                                         visible="bernoulli"), np.float64)
  # p(v) = exp(-F(v)) / Z: sum the joint over h for each v
  index = (v @ (2 ** np.arange(D - 1, -1, -1))).astype(int)
  marginal = np.array([special.logsumexp(log_p[index == i]) for i in range(2 ** D)])
  np.testing.assert_allclose(-free - log_z, marginal, atol=2e-5)


def test_conditionals_match_enumeration():
  params = _params(1)
  v, h, log_p, _ = _joint(params)
  p = np.exp(log_p)
  probe_v = np.array([[0, 1, 1, 0, 1, 0, 0, 1, 1, 1]], np.float64)
  rows = np.all(v == probe_v, 1)
  exact_h = (p[rows, None] * h[rows]).sum(0) / p[rows].sum()
  np.testing.assert_allclose(energies.hidden_probs(jnp.asarray(probe_v, jnp.float32), params)[0],
                             exact_h, atol=1e-6)
  probe_h = np.array([[1, 0, 0, 1, 1, 0, 1, 0]], np.float64)
  rows = np.all(h == probe_h, 1)
  exact_v = (p[rows, None] * v[rows]).sum(0) / p[rows].sum()
  np.testing.assert_allclose(
      energies.visible_mean(jnp.asarray(probe_h, jnp.float32), params, "bernoulli")[0],
      exact_v, atol=1e-6)


def test_exact_gradient_is_grad_of_the_enumerated_log_likelihood():
  """CD-infinity: data minus exact model statistics = -∇ mean log p(v_data)."""
  params = _params(2)
  data = jnp.asarray(np.random.default_rng(3).integers(0, 2, (20, D)), jnp.float32)

  def nll(params):
    return -jnp.mean(-energies.free_energy(v=data, params=params, visible="bernoulli")
                     - energies.log_partition_exact(params=params, visible="bernoulli"))

  expected = jax.grad(nll)(params)
  all_v = energies.all_binary(D)
  log_p = (-energies.free_energy(v=all_v, params=params, visible="bernoulli")
           - energies.log_partition_exact(params=params, visible="bernoulli"))
  got = energies.cd_statistics(v_data=data, v_model=all_v, params=params,
                               model_weights=jnp.exp(log_p))
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], atol=2e-5, err_msg=name)


def test_cd_k_statistics_match_a_hand_computation_with_fixed_draws():
  """CD-2 from fixed uniforms (the documented key rule), recomputed in float64 numpy."""
  params, k = _params(4), 2
  data = np.random.default_rng(5).integers(0, 2, (6, D)).astype(np.float64)
  key = jax.random.PRNGKey(7)
  v_model = energies.gibbs_chain(key, jnp.asarray(data, jnp.float32), params, "bernoulli", k,
                                 energies.per_example_noise)
  got = energies.cd_statistics(v_data=jnp.asarray(data, jnp.float32), v_model=v_model,
                               params=params)
  p = _np(params)
  sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
  v = data
  for t in range(k):   # sweep t: fold_in(key, t), split in two: h's noise, then v's
    key_h, key_v = jax.random.split(jax.random.fold_in(key, t), 2)
    u_h = np.asarray(rng.uniform(key_h, (6, H)), np.float64)
    u_v = np.asarray(rng.uniform(key_v, (6, D)), np.float64)
    h = (u_h < sigmoid(v @ p["weights"] + p["hidden_bias"])).astype(float)
    v = (u_v < sigmoid(h @ p["weights"].T + p["visible_bias"])).astype(float)
  np.testing.assert_array_equal(np.asarray(v_model), v)
  ph_data = sigmoid(data @ p["weights"] + p["hidden_bias"])
  ph_model = sigmoid(v @ p["weights"] + p["hidden_bias"])
  hand = {"weights": (v.T @ ph_model - data.T @ ph_data) / 6,
          "visible_bias": v.mean(0) - data.mean(0),
          "hidden_bias": ph_model.mean(0) - ph_data.mean(0)}
  for name in hand:
    np.testing.assert_allclose(got[name], hand[name], atol=1e-6, err_msg=name)


def test_pseudo_log_likelihood_exact_and_its_one_unit_estimate():
  params = _params(6)
  v = jnp.asarray(np.random.default_rng(8).integers(0, 2, (5, D)), jnp.float32)
  free = lambda x: energies.free_energy(v=x, params=params, visible="bernoulli")  # noqa: E731
  exact = sum(jnp.log(jax.nn.sigmoid(free(v.at[:, i].set(1 - v[:, i])) - free(v)))
              for i in range(D))
  pll = energies.pseudo_log_likelihood(v=v, params=params)
  np.testing.assert_allclose(pll, exact, rtol=1e-5)
  # The one-unit estimate is unbiased: averaged over many keys it approaches the PLL.
  draws = jax.jit(jax.vmap(
      lambda k: energies.pseudo_log_likelihood_estimate(v=v, params=params, key=k)))(
      jax.random.split(jax.random.PRNGKey(0), 4000))
  stderr = np.asarray(draws.std(0)) / np.sqrt(4000)
  assert np.all(np.abs(np.asarray(draws.mean(0)) - np.asarray(pll)) < 4 * stderr + 1e-3)


def test_gaussian_log_partition_matches_numerical_integration():
  params = _params(9, scale=0.4, dim=2, hidden=3)
  grid = np.linspace(-12, 12, 801)
  xx, yy = np.meshgrid(grid, grid, indexing="ij")
  v = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
  log_f = -np.asarray(energies.free_energy(v=v, params=params, visible="gaussian"), np.float64)
  step = grid[1] - grid[0]
  numerical = special.logsumexp(log_f) + 2 * np.log(step)
  np.testing.assert_allclose(energies.log_partition_exact(params=params, visible="gaussian"),
                             numerical, atol=1e-4)
