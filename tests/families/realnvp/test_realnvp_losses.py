"""RealNVP's pre-processing and bits/dim against hand computations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng
from jaxgen.families.realnvp import losses


def test_logit_transform_inverts_and_its_log_det_is_the_jacobians():
  m = jax.random.uniform(jax.random.PRNGKey(0), (3, 5), minval=-1.0, maxval=1.0)
  y, log_det = losses.logit_transform(m=m, alpha=0.05)
  np.testing.assert_allclose(losses.logit_inverse(y=y, alpha=0.05), m, atol=1e-6)
  for i in range(3):
    jac = jax.jacobian(lambda v: losses.logit_transform(m=v[None], alpha=0.05)[0][0])(m[i])
    np.testing.assert_allclose(log_det[i], np.linalg.slogdet(np.asarray(jac, np.float64))[1],
                               rtol=1e-5)
  # Both ends of the range stay finite: logit(α) and logit(1 − α).
  ends, _ = losses.logit_transform(m=jnp.array([[-1.0, 1.0]]), alpha=0.05)
  np.testing.assert_allclose(ends, [[math.log(0.05 / 0.95), math.log(0.95 / 0.05)]],
                             rtol=1e-5)


def test_negative_log_likelihood_is_the_change_of_variables():
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
  log_det = jnp.array([0.0, 1.0, -2.0, 0.5])
  expected = -stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1) - np.asarray(log_det)
  np.testing.assert_allclose(losses.negative_log_likelihood(z=z, log_det=log_det),
                             expected, rtol=1e-5)


def test_l2_penalty_counts_kernels_only():
  params = {"a": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
            "b": {"scale": jnp.ones(4), "kernel": 2.0 * jnp.ones((1,))}}
  assert float(losses.l2_penalty(params=params)) == pytest.approx(6.0 + 4.0)


def identity_flow(data="digits", overrides=()):
  """The realnvp method and a fresh state: couplings start as the identity."""
  config = config_lib.get_config("realnvp", data)
  config_lib.apply_overrides(config, ["model.normalization=none", "model.features=4",
                                      "model.blocks=0", "model.num_scales=1",
                                      "data.batch_size=8", *overrides])
  dataset = data_lib.from_config(config.data)
  method = registry.get("realnvp").make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=8, seed=0))
  return method, method.init(jax.random.PRNGKey(0), batch), batch, dataset.spec


@pytest.mark.slow
def test_bits_per_dim_of_the_digits_is_the_hand_computation():
  method, state, batch, _ = identity_flow()
  keys = rng.index_keys(jax.random.PRNGKey(7), jnp.arange(8))
  out = jax.jit(method.evaluate)(state, batch, keys)
  # By hand, in float64: the same dequantization draws (u per value), the
  # grid k + u in integer units (17 levels), the logit with α = 0.05, an
  # identity flow, the standard normal.
  u = np.asarray(rng.uniform(rng.split(keys, "dequantize")["dequantize"], (8, 8, 8, 1)),
                 np.float64)
  k = np.rint(np.asarray(batch["x"], np.float64) * 16)
  grid = k + u                                   # in [0, 17)
  p = 0.05 + 0.9 * grid / 17
  y = np.log(p) - np.log1p(-p)
  log_dy_dgrid = np.log(0.9 / 17) - np.log(p) - np.log1p(-p)
  nll = -(stats.norm.logpdf(y) + log_dy_dgrid).reshape(8, -1).sum(-1)
  np.testing.assert_allclose(out["nll"], nll, rtol=1e-5)
  np.testing.assert_allclose(out["bits_per_dim"], nll / (64 * math.log(2)), rtol=1e-5)


def test_density_of_continuous_data_is_in_the_datas_units():
  method, state, batch, spec = identity_flow("toy2d:moons", ["data.num_examples=100",
                                                            "model.hidden=(8,)"])
  low, high = spec.value_range
  out = method.evaluate(state, batch, jax.random.PRNGKey(0))
  # Identity flow on m = −1 + 2(x − low)/(high − low): p(x) = N(m; 0, I)·|dm/dx|².
  x = np.asarray(batch["x"], np.float64)
  m = -1 + 2 * (x - low) / (high - low)
  nll = -(stats.norm.logpdf(m).sum(-1) + 2 * np.log(2 / (high - low)))
  np.testing.assert_allclose(out["nll"], nll, rtol=1e-5)
  np.testing.assert_allclose(out["bits_per_dim"], nll / (2 * math.log(2)), rtol=1e-5)
