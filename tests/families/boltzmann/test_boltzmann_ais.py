"""AIS against exact partition functions of RBMs and a DBM small enough to enumerate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.boltzmann import ais, dbm, energies


def _rbm(seed=0, scale=1.0, dim=10, hidden=8):
  r = np.random.default_rng(seed)
  return {"weights": jnp.asarray(scale * r.standard_normal((dim, hidden)), jnp.float32),
          "visible_bias": jnp.asarray(0.5 * r.standard_normal(dim), jnp.float32),
          "hidden_bias": jnp.asarray(0.5 * r.standard_normal(hidden), jnp.float32),
          "base_bias": jnp.asarray(0.3 * r.standard_normal(dim), jnp.float32)}


def test_beta_schedule_is_the_papers_by_default():
  betas = ais.beta_schedule((0.5, 0.9, 1.0), (500, 4000, 10000))
  assert len(betas) == 14_501 and betas[0] == 0.0 and betas[-1] == 1.0
  assert np.all(np.diff(betas) > 0)
  assert np.sum((betas > 0) & (betas <= 0.5)) == 500
  assert np.sum((betas > 0.5) & (betas <= 0.9)) == 4000
  assert np.sum(betas > 0.9) == 10000
  np.testing.assert_allclose(np.diff(betas[-10000:]), 0.1 / 10000, rtol=1e-6)


def test_ais_is_within_a_tenth_of_a_nat_of_the_exact_log_z():
  params = _rbm()
  exact = float(energies.log_partition_exact(params=params, visible="bernoulli"))
  out = ais.estimate(model="rbm", params=params, betas=ais.beta_schedule((0.5, 0.9, 1.0),
                                                                         (100, 400, 1000)),
                     key=jax.random.PRNGKey(0), runs=100)
  assert abs(float(out["log_z"]) - exact) < 0.1, (float(out["log_z"]), exact)
  assert float(out["log_z_stderr"]) < 0.1
  assert float(out["log_z_minus_3se"]) < float(out["log_z"]) < float(out["log_z_plus_3se"])
  assert 1 <= float(out["ess"]) <= 100


def test_ais_is_unbiased_in_z():
  """Each run's Z_A w_m is an unbiased estimate of Z: their mean / Z ~ 1 within 3 stderr.

  Few temperatures, so that the weights vary widely and a bias would show.
  """
  params = _rbm(1, scale=0.7)
  exact = float(energies.log_partition_exact(params=params, visible="bernoulli"))
  log_w, log_z_base = ais.log_weights(model="rbm", params=params,
                                      betas=np.linspace(0, 1, 11), key=jax.random.PRNGKey(1),
                                      runs=20_000)
  ratio = np.exp(np.asarray(log_w, np.float64) + float(log_z_base) - exact)
  stderr = ratio.std() / np.sqrt(ratio.size)
  assert ratio.std() > 0.05          # the estimates do vary
  assert abs(ratio.mean() - 1.0) < 3 * stderr, (ratio.mean(), stderr)
  # while log Ẑ, by Jensen, is biased low with these few temperatures
  assert np.mean(np.log(ratio)) < 0


def test_chunking_does_not_change_the_weights():
  params = _rbm(2)
  betas = ais.beta_schedule((0.5, 1.0), (20, 37))
  whole = ais.log_weights(model="rbm", params=params, betas=betas, key=jax.random.PRNGKey(2),
                          runs=8, chunk=1000)[0]
  chunked = ais.log_weights(model="rbm", params=params, betas=betas,
                            key=jax.random.PRNGKey(2), runs=8, chunk=7)[0]
  np.testing.assert_allclose(chunked, whole, rtol=1e-6)


def test_gaussian_rbm_ais_matches_the_exact_log_z():
  params = _rbm(3, scale=0.3, dim=6, hidden=5)
  exact = float(energies.log_partition_exact(params=params, visible="gaussian"))
  out = ais.estimate(model="rbm", params=params, visible="gaussian",
                     betas=ais.beta_schedule((0.5, 1.0), (200, 800)),
                     key=jax.random.PRNGKey(3), runs=100)
  assert abs(float(out["log_z"]) - exact) < 0.1, (float(out["log_z"]), exact)


def test_dbm_ais_with_h1_summed_out_matches_enumeration():
  r = np.random.default_rng(4)
  dim, h1, h2 = 8, 6, 5
  params = {"w1": jnp.asarray(0.8 * r.standard_normal((dim, h1)), jnp.float32),
            "w2": jnp.asarray(0.8 * r.standard_normal((h1, h2)), jnp.float32),
            "b": jnp.asarray(0.3 * r.standard_normal(dim), jnp.float32),
            "c1": jnp.asarray(0.3 * r.standard_normal(h1), jnp.float32),
            "c2": jnp.asarray(0.3 * r.standard_normal(h2), jnp.float32)}
  exact = float(dbm.log_partition_exact(params))
  out = ais.estimate(model="dbm", params={**params, "base_bias": jnp.zeros(dim)},
                     betas=ais.beta_schedule((0.5, 0.9, 1.0), (100, 400, 1000)),
                     key=jax.random.PRNGKey(4), runs=100)
  assert abs(float(out["log_z"]) - exact) < 0.1, (float(out["log_z"]), exact)


# ------------------------------------------------ reverse AIS and RAISE (Burda et al. 2015)
def _exact_samples(params, num, seed):
  """Exact samples of v from an RBM: h from its enumerated marginal, then v | h."""
  r = np.random.default_rng(seed)
  hidden = np.asarray(energies.all_binary(params["hidden_bias"].shape[0]), np.float64)
  w, b, c = (np.asarray(params[k], np.float64) for k in ("weights", "visible_bias",
                                                         "hidden_bias"))
  log_p = hidden @ c + np.logaddexp(0, hidden @ w.T + b).sum(-1)
  p = np.exp(log_p - log_p.max())
  h = hidden[r.choice(len(hidden), size=num, p=p / p.sum())]
  v = r.random((num, w.shape[0])) < 1 / (1 + np.exp(-(h @ w.T + b)))
  return jnp.asarray(v, jnp.float32)


def test_forward_and_reverse_ais_sandwich_the_exact_log_z():
  """From exact samples reverse AIS is biased high, forward AIS low; with enough
  temperatures both are within 0.1 nats of the enumerated log Z."""
  params = _rbm(5)
  exact = float(energies.log_partition_exact(params=params, visible="bernoulli"))
  few = np.linspace(0, 1, 6)
  fwd, base = ais.log_weights(model="rbm", params=params, betas=few,
                              key=jax.random.PRNGKey(5), runs=400)
  rev, base_rev = ais.reverse_log_weights(model="rbm", params=params, betas=few,
                                          key=jax.random.PRNGKey(6),
                                          start=_exact_samples(params, 400, 0))
  assert float(base) == pytest.approx(float(base_rev))
  # 40 estimates of 10 runs each: their mean is below (forward) / above (reverse) log Z.
  forward = float(base) + np.mean(jax.nn.logsumexp(fwd.reshape(40, 10), -1) - np.log(10))
  reverse = float(base) - np.mean(jax.nn.logsumexp(rev.reshape(40, 10), -1) - np.log(10))
  assert forward < exact - 0.02 and reverse > exact + 0.02, (forward, exact, reverse)
  betas = ais.beta_schedule((0.5, 0.9, 1.0), (50, 200, 500))
  up = ais.reverse_estimate(params=params, betas=betas, key=jax.random.PRNGKey(7),
                            start=_exact_samples(params, 100, 1))
  down = ais.estimate(model="rbm", params=params, betas=betas, key=jax.random.PRNGKey(8),
                      runs=100)
  assert abs(float(up["log_z"]) - exact) < 0.1 and abs(float(down["log_z"]) - exact) < 0.1
  assert float(up["log_z_stderr"]) < 0.1


def test_reverse_chunking_does_not_change_the_weights():
  params = _rbm(2)
  betas = ais.beta_schedule((0.5, 1.0), (20, 37))
  start = _exact_samples(params, 8, 2)
  whole, chunked = (ais.reverse_log_weights(model="rbm", params=params, betas=betas,
                                            key=jax.random.PRNGKey(2), start=start,
                                            chunk=chunk)[0] for chunk in (1000, 7))
  np.testing.assert_allclose(chunked, whole, rtol=1e-6)


def _bernoulli_table(states, logits):
  """P(state | logits) for every row of logits and every state: [N, S]."""
  log_on, log_off = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)   # [N, D]
  return np.exp(log_on @ states.T + log_off @ (1 - states).T)


def _annealing_model_probability(params, betas):
  """p_ann(v) for every v, exactly: p_A(v) pushed through the Gibbs kernels T_1..T_K."""
  f = lambda k: np.asarray(params[k], np.float64)  # noqa: E731
  w, b, c, base = f("weights"), f("visible_bias"), f("hidden_bias"), f("base_bias")
  vis = np.asarray(energies.all_binary(w.shape[0]), np.float64)
  hid = np.asarray(energies.all_binary(w.shape[1]), np.float64)
  p = _bernoulli_table(vis, base[None])[0]
  for beta in betas[1:]:
    h_given_v = _bernoulli_table(hid, beta * (c + vis @ w))                  # [2^D, 2^H]
    v_given_h = _bernoulli_table(vis, (1 - beta) * base + beta * (b + hid @ w.T))
    p = p @ h_given_v @ v_given_h
  return p


def test_raise_is_unbiased_for_the_annealing_model_and_tends_to_the_model():
  params = _rbm(6, scale=0.6, dim=8, hidden=6)
  betas = np.linspace(0, 1, 6)                       # few: p_ann differs from p visibly
  p_ann = _annealing_model_probability(params, betas)
  assert p_ann.sum() == pytest.approx(1.0, abs=1e-9)
  states = np.asarray(energies.all_binary(8))
  log_p = np.asarray(-energies.free_energy(v=energies.all_binary(8), params=params,
                                           visible="bernoulli"), np.float64)
  log_p -= float(energies.log_partition_exact(params=params, visible="bernoulli"))
  test = np.array([3, 77, 200])                      # three test points, 4,000 estimates each
  v = jnp.asarray(np.repeat(states[test], 4000, 0))
  keys = jax.random.split(jax.random.PRNGKey(9), v.shape[0])
  one_run = np.asarray(ais.raise_log_likelihood(params=params, v=v, keys=keys, betas=betas,
                                                runs=1), np.float64).reshape(3, 4000)
  ratio = np.exp(one_run - np.log(p_ann[test])[:, None])
  stderr = ratio.std(1) / np.sqrt(4000)
  assert np.all(np.abs(ratio.mean(1) - 1) < 4 * stderr), (ratio.mean(1), stderr)
  assert np.all(np.mean(one_run, 1) < np.log(p_ann[test]))        # a stochastic lower bound
  assert np.max(np.abs(np.log(p_ann[test]) - log_p[test])) > 0.05  # p_ann is not p here
  # With S&M's schedule shape the annealing model is the model: RAISE within 0.1 nats.
  many = ais.beta_schedule((0.5, 0.9, 1.0), (50, 200, 500))
  v = jnp.asarray(states[test])
  estimate = ais.raise_log_likelihood(params=params, v=v, keys=jax.random.split(
      jax.random.PRNGKey(10), 3), betas=many, runs=50)
  np.testing.assert_allclose(np.asarray(estimate), log_p[test], atol=0.1)
