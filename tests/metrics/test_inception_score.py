"""Inception Score: known answers and an independent scipy.stats.entropy computation."""

import numpy as np
import pytest
import scipy.special
import scipy.stats

from jaxgen.metrics.inception_score import inception_score


def _reference(probabilities, splits):
  """The paper's formula, one KL per sample with scipy.stats.entropy."""
  n = len(probabilities)
  scores = []
  for i in range(splits):
    part = probabilities[i * n // splits:(i + 1) * n // splits]
    marginal = part.mean(axis=0)
    kl = [scipy.stats.entropy(row, marginal) for row in part]
    scores.append(np.exp(np.mean(kl)))
  return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("classes", [2, 5, 10])
def test_one_hot_uniform_over_classes_scores_the_class_count(classes):
  labels = np.tile(np.arange(classes), 10 * 3)    # every split holds each class 3 times
  out = inception_score(np.eye(classes)[labels], splits=10)
  np.testing.assert_allclose(out["mean"], classes, rtol=1e-12)
  assert out["std"] < 1e-12


def test_identical_predictions_score_one():
  row = np.array([0.1, 0.6, 0.3])
  out = inception_score(np.tile(row, (40, 1)), splits=4)
  np.testing.assert_allclose(out["mean"], 1.0, rtol=1e-12)
  assert out["std"] < 1e-12


def test_mean_and_std_over_splits_by_hand():
  # First half: one-hot over 2 classes (IS 2); second half: all alike (IS 1).
  first = np.eye(2)[[0, 1, 0, 1]]
  second = np.tile([0.5, 0.5], (4, 1))
  out = inception_score(np.concatenate([first, second]), splits=2)
  np.testing.assert_allclose(out["mean"], 1.5, rtol=1e-12)
  np.testing.assert_allclose(out["std"], 0.5, rtol=1e-12)


@pytest.mark.parametrize("n, splits", [(100, 10), (103, 10), (57, 3)])
def test_matches_scipy_entropy_reference(n, splits):
  rng = np.random.default_rng(n)
  logits = rng.normal(size=(n, 7)) * 2.0
  probabilities = scipy.special.softmax(logits, axis=1)
  want_mean, want_std = _reference(probabilities, splits)
  out = inception_score(probabilities, splits=splits)
  np.testing.assert_allclose([out["mean"], out["std"]], [want_mean, want_std], rtol=1e-10)
  from_logits = inception_score(logits, splits=splits, from_logits=True)
  np.testing.assert_allclose([from_logits["mean"], from_logits["std"]],
                             [want_mean, want_std], rtol=1e-10)


def test_zero_probabilities_count_as_zero_terms():
  predictions = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
  # p(y) = (0.5, 0.25, 0.25); KLs log 2 and log 2; IS = 2.
  out = inception_score(predictions, splits=1)
  np.testing.assert_allclose(out["mean"], 2.0, rtol=1e-12)


def test_shuffle_seed_is_deterministic_and_keeps_a_single_split():
  rng = np.random.default_rng(0)
  probabilities = scipy.special.softmax(rng.normal(size=(60, 4)), axis=1)
  unshuffled = inception_score(probabilities, splits=1)
  shuffled = inception_score(probabilities, splits=1, seed=3)
  np.testing.assert_allclose(shuffled["mean"], unshuffled["mean"], rtol=1e-12)
  a = inception_score(probabilities, splits=6, seed=3)
  assert inception_score(probabilities, splits=6, seed=3) == a
  assert inception_score(probabilities, splits=6, seed=4) != a


def test_input_errors():
  with pytest.raises(ValueError, match="from_logits"):
    inception_score(np.array([[2.0, -1.0]] * 10))
  with pytest.raises(ValueError, match="splits"):
    inception_score(np.eye(3), splits=10)
  with pytest.raises(ValueError, match=r"\[N, classes\]"):
    inception_score(np.ones(10) / 10)
