"""WaveNet's likelihood as pure functions: per-example exact NLL from per-sample logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_probs(*, logits: jax.Array, levels: jax.Array) -> jax.Array:
  """log p(x_t,c | x_<t) of every value: logits [B, T, C, L], levels int [B, T, C] -> [B, T, C]."""
  if logits.shape[:-1] != levels.shape:
    raise ValueError(f"logits {logits.shape} do not fit levels {levels.shape}")
  log_softmax = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(log_softmax, levels[..., None], axis=-1)[..., 0]


def nll(*, logits: jax.Array, levels: jax.Array) -> jax.Array:
  """−log p(x) = −Σ_t Σ_c log p(x_t,c | x_<t) in nats, per example: -> [B].

  Exact for a network whose logits at t see only the samples before t
  (van den Oord et al. 2016, eq. 1).
  """
  values = log_probs(logits=logits, levels=levels)
  return -jnp.sum(values.reshape(values.shape[0], -1), axis=-1)
