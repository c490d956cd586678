"""Scores of generated samples read through a classifier's predictions.

For small datasets without an Inception network (digits, MNIST) a classifier
trained on the real data stands in: the Inception-Score formula of Salimans
et al. 2016 applied to its class probabilities, the entropy of the predicted
label histogram and the number of classes generated.
"""

from __future__ import annotations

import numpy as np


def classifier_score(probs: np.ndarray) -> float:
  """exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of p(y|x) over the samples.

  probs: [N, C] rows summing to 1. Ranges from 1 (every sample gets the same
  prediction, or every prediction is uniform) to C (confident predictions,
  spread evenly over the C classes).
  """
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2 or not np.allclose(probs.sum(-1), 1.0, atol=1e-4):
    raise ValueError(f"probs must be [N, C] with rows summing to 1, got {probs.shape}")
  marginal = probs.mean(0)
  logs = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0))
                  - np.log(np.where(marginal > 0, marginal, 1.0)), 0.0)
  return float(np.exp(np.mean(np.sum(probs * logs, axis=-1))))


def label_statistics(probs: np.ndarray) -> dict[str, float]:
  """Histogram statistics of the argmax labels: entropy (nats) and classes seen.

  `classes_generated` counts classes predicted for at least 1% of the samples.
  """
  probs = np.asarray(probs, np.float64)
  labels = np.argmax(probs, axis=-1)
  counts = np.bincount(labels, minlength=probs.shape[-1]) / len(labels)
  nonzero = counts[counts > 0]
  return {"label_entropy": float(-np.sum(nonzero * np.log(nonzero))),
          "max_label_entropy": float(np.log(probs.shape[-1])),
          "classes_generated": int(np.sum(counts >= 0.01)),
          "mean_confidence": float(np.mean(np.max(probs, axis=-1)))}
