"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs").

IS = exp E_x KL(p(y|x) ‖ p(y)), with p(y) the mean of p(y|x) over the split,
computed on `splits` consecutive parts of the samples (parts i·N//splits to
(i+1)·N//splits, as in the original TensorFlow code and torch-fidelity) and
reported as the mean and population std (ddof=0) of the per-part scores.

Terms with p(y|x) = 0 count as 0 (`scipy.special.rel_entr`), where the original
code would give NaN; a softmax in float32 can underflow to exact zeros.

Evaluation-time code on the host: NumPy/SciPy float64, never traced.
"""

from __future__ import annotations

import numpy as np
import scipy.special

# Rows of given probabilities must sum to 1 within this (float32 softmax outputs do).
_SUM_TOLERANCE = 1e-3


def _probabilities(predictions: np.ndarray, from_logits: bool) -> np.ndarray:
  predictions = np.asarray(predictions, np.float64)
  if predictions.ndim != 2:
    raise ValueError(f"predictions must be [N, classes]; got shape {predictions.shape}")
  if from_logits:
    return np.exp(scipy.special.log_softmax(predictions, axis=1))
  if np.any(predictions < 0) or not np.allclose(predictions.sum(axis=1), 1.0,
                                                atol=_SUM_TOLERANCE):
    raise ValueError("predictions must be class probabilities (non-negative rows summing "
                     "to 1); pass from_logits=True for logits")
  return predictions


def inception_score(predictions: np.ndarray, *, splits: int = 10, from_logits: bool = False,
                    seed: int | np.random.Generator | None = None) -> dict[str, float]:
  """Inception Score of class predictions (Salimans et al. 2016).

  Args:
    predictions: [N, classes] class probabilities p(y|x), or logits with
      from_logits=True (softmax taken in float64). N >= splits.
    splits: number of parts the score is computed on (the paper's 10).
    seed: None keeps the given order (the original code); an int or a
      `numpy.random.Generator` shuffles the rows first (torch-fidelity shuffles).

  Returns:
    {"mean": float, "std": float} over the splits; IS lies in [1, classes].
  """
  probabilities = _probabilities(predictions, from_logits)
  n = len(probabilities)
  if splits < 1 or n < splits:
    raise ValueError(f"need 1 <= splits <= N; got splits={splits} with N={n}")
  if seed is not None:
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    probabilities = probabilities[rng.permutation(n)]
  scores = []
  for i in range(splits):
    part = probabilities[i * n // splits:(i + 1) * n // splits]
    marginal = np.mean(part, axis=0, keepdims=True)
    kl = np.sum(scipy.special.rel_entr(part, marginal), axis=1)
    scores.append(np.exp(np.mean(kl)))
  return {"mean": float(np.mean(scores)), "std": float(np.std(scores))}
