"""KID: the unbiased MMD² against a brute-force double loop, and its unbiasedness."""

import numpy as np
import pytest

from jaxgen.metrics import kid


def _brute_force_mmd2(x, y):
  """Unbiased MMD², cubic kernel (x·y/d + 1)³, one pair at a time."""
  d = x.shape[1]

  def k(a, b):
    return (sum(float(p) * float(q) for p, q in zip(a, b)) / d + 1.0) ** 3

  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2.0 * xy


def test_polynomial_kernel_by_hand():
  x = np.array([[1.0, 2.0]])
  y = np.array([[3.0, -1.0], [0.0, 0.0]])
  # x·y = 1 and 0; (x·y/2 + 1)³ = 1.5³ and 1.
  np.testing.assert_allclose(kid.polynomial_kernel(x, y), [[3.375, 1.0]])


@pytest.mark.parametrize("m, n", [(5, 5), (4, 7)])
def test_unbiased_mmd2_matches_a_double_loop(m, n):
  rng = np.random.default_rng(m * 10 + n)
  x, y = rng.normal(size=(m, 3)), rng.normal(size=(n, 3)) + 0.5
  np.testing.assert_allclose(kid.polynomial_mmd2(x, y), _brute_force_mmd2(x, y), rtol=1e-12)


def test_one_full_subset_is_the_mmd_of_the_whole_sets():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
  # The subset size is capped at 6: all of x (in some order) against 6 rows of y.
  out = kid.kid_from_features(x, y[:6], num_subsets=3, subset_size=1000, seed=1)
  assert out["subset_size"] == 6
  np.testing.assert_allclose(out["mean"], _brute_force_mmd2(x, y[:6]), rtol=1e-12)
  assert out["std"] < 1e-12


def test_unbiased_over_fresh_samples_of_one_distribution():
  """E[MMD²_u] = 0 when both samples come from one law; the biased V-statistic is not."""
  rng = np.random.default_rng(2)
  repeats, m, d = 300, 20, 4
  unbiased, biased = [], []
  for _ in range(repeats):
    x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
    unbiased.append(kid.polynomial_mmd2(x, y))
    kxx, kyy, kxy = (kid.polynomial_kernel(a, b) for a, b in ((x, x), (y, y), (x, y)))
    biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
  standard_error = np.std(unbiased) / np.sqrt(repeats)
  assert abs(np.mean(unbiased)) < 4 * standard_error
  assert np.mean(biased) > 10 * standard_error   # the check can fail on a biased estimator


def test_kid_near_zero_for_one_distribution_and_positive_for_shifted():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(300, 8))
  same = rng.normal(size=(300, 8))
  shifted = rng.normal(size=(300, 8)) + 0.5
  null = kid.kid_from_features(real, same, num_subsets=20, subset_size=100, seed=0)
  alternative = kid.kid_from_features(real, shifted, num_subsets=20, subset_size=100, seed=0)
  assert abs(null["mean"]) < 2 * null["std"]
  assert alternative["mean"] > 5 * alternative["std"]
  assert alternative["mean"] > 20 * abs(null["mean"])


def test_seed_makes_it_deterministic():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(50, 3)), rng.normal(size=(60, 3)) + 0.2
  args = dict(num_subsets=5, subset_size=10)
  first = kid.kid_from_features(x, y, seed=7, **args)
  assert kid.kid_from_features(x, y, seed=7, **args) == first
  assert kid.kid_from_features(x, y, seed=np.random.default_rng(7), **args) == first
  assert kid.kid_from_features(x, y, seed=8, **args) != first


def test_input_errors():
  with pytest.raises(ValueError, match=r"\[N1, d\]"):
    kid.kid_from_features(np.zeros((5, 2)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match="at least 2"):
    kid.kid_from_features(np.zeros((1, 2)), np.zeros((5, 2)))
  with pytest.raises(ValueError, match="num_subsets"):
    kid.kid_from_features(np.zeros((5, 2)), np.zeros((5, 2)), num_subsets=0)
