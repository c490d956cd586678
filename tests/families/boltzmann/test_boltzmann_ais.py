"""AIS against exact partition functions of RBMs and a DBM small enough to enumerate."""

import jax
import jax.numpy as jnp
import numpy as np

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
