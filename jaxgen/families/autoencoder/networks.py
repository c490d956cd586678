"""The autoencoder's encoder and decoder: architecture only (shapes and wiring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import nn as jnn

CODE_ACTIVATIONS = {"linear": lambda h: h, "sigmoid": nn.sigmoid, "relu": nn.relu,
                    "tanh": jnp.tanh}
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "gelu": nn.gelu,
               "sigmoid": nn.sigmoid}


class Encoder(nn.Module):
  """x: [B, *shape] -> code [B, code_dim]."""

  architecture: str
  code_dim: int
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array]
  code_activation: Callable[[jax.Array], jax.Array]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.architecture == "conv":
      # Strided convolutions down, then a Dense to the code.
      h = jnn.ConvEncoder(features=self.code_dim, channels=tuple(self.channels),
                          activation=self.activation)(x)
    else:
      h = jnn.MLP(tuple(self.hidden) + (self.code_dim,),
                  activation=self.activation)(x.reshape(x.shape[0], -1))
    return self.code_activation(h)


class Decoder(nn.Module):
  """code [B, code_dim] -> output [B, *shape] (logits or values)."""

  architecture: str
  output_shape: tuple[int, ...]
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array]

  @nn.compact
  def __call__(self, code: jax.Array) -> jax.Array:
    if self.architecture == "conv":
      # Learned upsampling with PhaseConvTranspose (fast on CPU; jaxgen.nn).
      return jnn.ConvDecoder(output_shape=tuple(self.output_shape),
                             channels=tuple(reversed(self.channels)),
                             activation=self.activation)(code)
    size = math.prod(self.output_shape)
    out = jnn.MLP(tuple(reversed(self.hidden)) + (size,), activation=self.activation)(code)
    return out.reshape((code.shape[0],) + tuple(self.output_shape))
