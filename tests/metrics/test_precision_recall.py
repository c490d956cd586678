"""k-NN manifold metrics: hand-worked point clouds and a brute-force reference."""

import numpy as np
import pytest

from jaxgen.metrics.precision_recall import density_coverage
from jaxgen.metrics.precision_recall import knn_radii
from jaxgen.metrics.precision_recall import pairwise_distances
from jaxgen.metrics.precision_recall import precision_recall

# 1-D clouds worked by hand below (no distance ties with a ball's radius).
REAL = np.array([[0.0], [1.0], [3.0], [10.0]])
FAKE = np.array([[0.4], [0.6], [12.0], [20.0]])


def _brute_force(real, fake, k):
  """The definitions, with full distance matrices from explicit differences."""
  d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
  d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
  d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)    # [M, N]
  r_real = np.sort(d_rr, axis=1)[:, k]    # column 0 is the point itself
  r_fake = np.sort(d_ff, axis=1)[:, k]
  precision = np.mean([any(d_fr[j, i] <= r_real[i] for i in range(len(real)))
                       for j in range(len(fake))])
  recall = np.mean([any(d_fr[j, i] <= r_fake[j] for j in range(len(fake)))
                    for i in range(len(real))])
  density = sum(d_fr[j, i] < r_real[i] for j in range(len(fake))
                for i in range(len(real))) / (k * len(fake))
  coverage = np.mean([d_fr[:, i].min() < r_real[i] for i in range(len(real))])
  return precision, recall, density, coverage


def test_knn_radii_by_hand():
  # k=1: nearest other point; k=2: second nearest.
  np.testing.assert_allclose(knn_radii(REAL, k=1), [1.0, 1.0, 2.0, 7.0])
  np.testing.assert_allclose(knn_radii(REAL, k=2, batch_size=3), [3.0, 2.0, 3.0, 9.0])


@pytest.mark.parametrize("k, want", [
    # k=1: real balls [-1,1], [0,2], [1,5], [3,17]; fake radii 0.2, 0.2, 8, 8.
    # fake 0.4, 0.6, 12 lie in real balls, 20 does not; only real 10 lies in a
    # fake ball ([4, 20]); fakes lie in 2, 2, 1, 0 real balls (density 5/4);
    # reals 0, 1, 10 hold a fake (coverage 3/4; real 3's nearest fake is 2.4 away).
    (1, dict(precision=0.75, recall=0.25, density=5 / 4, coverage=0.75)),
    # k=2: real radii 3, 2, 3, 9; fake radii 11.6, 11.4, 11.4, 19.4 cover every real;
    # fakes lie in 3, 3, 1, 0 real balls (density 7/8); every real holds a fake.
    (2, dict(precision=0.75, recall=1.0, density=7 / 8, coverage=1.0)),
])
def test_hand_worked_one_dimensional_example(k, want):
  got = {**precision_recall(REAL, FAKE, k=k, batch_size=3),
         **density_coverage(REAL, FAKE, k=k, batch_size=3)}
  assert got == pytest.approx(want, rel=1e-12)


def test_boundary_conventions_of_the_reference_implementations():
  real, fake = np.array([[0.0], [2.0]]), np.array([[4.0], [8.0]])
  # Real radii 2, 2: fake 4 sits exactly on real 2's ball. Kynkäänniemi's code
  # counts it (<=); prdc's density/coverage do not (<).
  assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 1.0}
  assert density_coverage(real, fake, k=1) == {"density": 0.0, "coverage": 0.0}


def test_identical_sets_are_fully_precise_recalled_and_covered():
  x = np.random.default_rng(0).normal(size=(60, 5))
  assert precision_recall(x, x.copy(), k=3) == {"precision": 1.0, "recall": 1.0}
  assert density_coverage(x, x.copy(), k=5)["coverage"] == 1.0


def test_far_away_fake_set_scores_zero():
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 100.0
  assert precision_recall(real, fake, k=3) == {"precision": 0.0, "recall": 0.0}
  assert density_coverage(real, fake, k=5) == {"density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize("k, batch_size", [(1, 1), (3, 7), (5, 1000)])
def test_matches_brute_force_on_random_sets(k, batch_size):
  rng = np.random.default_rng(k)
  real = rng.normal(size=(45, 6))
  fake = rng.normal(size=(38, 6)) * 0.8 + 0.8
  precision, recall, density, coverage = _brute_force(real, fake, k)
  assert precision not in (0.0, 1.0) and recall not in (0.0, 1.0)   # a non-trivial case
  got = {**precision_recall(real, fake, k=k, batch_size=batch_size),
         **density_coverage(real, fake, k=k, batch_size=batch_size)}
  want = dict(precision=precision, recall=recall, density=density, coverage=coverage)
  assert got == pytest.approx(want, rel=1e-12)


def test_density_is_about_one_for_one_distribution():
  """Naeem et al. 2020: E[density] = 1 when real and fake share a distribution."""
  rng = np.random.default_rng(2)
  real, fake = rng.normal(size=(600, 3)), rng.normal(size=(600, 3))
  assert density_coverage(real, fake, k=5)["density"] == pytest.approx(1.0, abs=0.15)


def test_pairwise_distances_match_differences():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
  np.testing.assert_allclose(pairwise_distances(x, y),
                             np.linalg.norm(x[:, None] - y[None], axis=-1), rtol=1e-12)
  assert np.all(pairwise_distances(x, x) >= 0)


def test_input_errors():
  with pytest.raises(ValueError, match="agree in d"):
    precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match="k must be"):
    precision_recall(np.zeros((5, 2)), np.zeros((3, 2)), k=3)
  with pytest.raises(ValueError, match="k must be"):
    knn_radii(np.zeros((3, 2)), k=3)
  with pytest.raises(ValueError, match=r"\[N, d\]"):
    density_coverage(np.zeros(5), np.zeros((5, 1)))
  # Density and coverage need no fake radii: one fake point is enough.
  assert density_coverage(REAL, FAKE[:1], k=2)["coverage"] == 0.75
