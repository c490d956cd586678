"""PixelCNN's likelihood as pure functions: per-example exact NLL from per-value logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_probs(*, logits: jax.Array, levels: jax.Array) -> jax.Array:
  """log p(x_k | x_<k) of every value: logits [B, H, W, C, L], levels int [B, H, W, C] -> [B, H, W, C]."""
  if logits.shape[:-1] != levels.shape:
    raise ValueError(f"logits {logits.shape} do not fit levels {levels.shape}")
  log_softmax = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(log_softmax, levels[..., None], axis=-1)[..., 0]


def nll(*, logits: jax.Array, levels: jax.Array) -> jax.Array:
  """−log p(x) = −Σ_k log p(x_k | x_<k) in nats, per example: -> [B].

  Exact for an autoregressive model whose logits at value k see only the
  values before k (van den Oord et al. 2016a, eq. 1).
  """
  values = log_probs(logits=logits, levels=levels)
  return -jnp.sum(values.reshape(values.shape[0], -1), axis=-1)
