"""The VAE's encoder and decoder: architecture only (shapes and wiring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import nn as jnn

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "softplus": nn.softplus,
               "elu": nn.elu, "gelu": nn.gelu}


class Encoder(nn.Module):
  """x: [B, *shape] (+ condition [B, C]) -> (mean, logvar): [B, latent_dim] each."""

  architecture: str
  latent_dim: int
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array]:
    if self.architecture == "conv":
      if condition is not None:  # one constant plane per class
        planes = jnp.broadcast_to(condition[:, None, None, :],
                                  x.shape[:3] + condition.shape[-1:])
        x = jnp.concatenate([x, planes.astype(x.dtype)], axis=-1)
      h = self.activation(jnn.ConvEncoder(
          features=self.hidden[-1], channels=tuple(self.channels),
          activation=self.activation)(x))
    else:
      h = x.reshape(x.shape[0], -1)
      if condition is not None:
        h = jnp.concatenate([h, condition.astype(h.dtype)], axis=-1)
      h = jnn.MLP(tuple(self.hidden), activation=self.activation,
                  activate_final=True)(h)
    stats = nn.Dense(2 * self.latent_dim, name="posterior")(h)
    mean, logvar = jnp.split(stats, 2, axis=-1)
    return mean, logvar


class Decoder(nn.Module):
  """z: [B, latent_dim] (+ condition [B, C]) -> likelihood parameters [B, *shape, outputs]."""

  architecture: str
  output_shape: tuple[int, ...]
  outputs: int  # parameters per data value: 1 (logits or mean) or 2 (+ scale)
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, z: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    if condition is not None:
      z = jnp.concatenate([z, condition.astype(z.dtype)], axis=-1)
    if self.architecture == "conv":
      height, width, channels = self.output_shape
      out = jnn.ConvDecoder(output_shape=(height, width, channels * self.outputs),
                            channels=tuple(reversed(self.channels)),
                            activation=self.activation)(z)
      return out.reshape(out.shape[:-1] + (channels, self.outputs))
    size = math.prod(self.output_shape) * self.outputs
    out = jnn.MLP(tuple(reversed(self.hidden)) + (size,), activation=self.activation)(z)
    return out.reshape((z.shape[0],) + tuple(self.output_shape) + (self.outputs,))
