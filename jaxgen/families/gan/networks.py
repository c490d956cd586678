"""The GAN family's generator and discriminator: architectures plus heads.

Architecture only (shapes and wiring); what is optimized lives in `method`.
The generator maps [N, inputs] (noise, plus one-hot labels or InfoGAN codes)
to data space. The discriminator maps data (plus an optional condition) to a
dict of outputs, one per head the method asks for:

  score                 [N]        the adversarial output (logit, critic value, V)
  class_logits          [N, K]     ACGAN's classes, or the SSGAN's C + 1 outputs
  q_categorical_logits  [N, c]     InfoGAN's Q head, on the shared trunk
  q_continuous_mean     [N, k]
  features              [N, F]     the trunk's output (feature matching)
  reconstruction, code             EBGAN/BEGAN autoencoder discriminators
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import nn as jnn
from jaxgen.core import rng
from jaxgen.families.gan.tricks import MinibatchDiscrimination
from jaxgen.nn.dcgan import DCGANDiscriminator, DCGANGenerator, normalization
from jaxgen.nn.style import StyleGenerator

Array = jax.Array


def to_range(x: Array, value_range: tuple[float, float]) -> Array:
  """Maps [-1, 1] onto the data's [lo, hi]."""
  lo, hi = value_range
  if (lo, hi) == (-1.0, 1.0):
    return x
  return lo + (hi - lo) * (x + 1.0) / 2.0


class MLPGenerator(nn.Module):
  """[N, inputs] -> [N, *output_shape]: Dense, norm, ReLU layers, a linear output."""

  output_shape: tuple[int, ...]
  hidden: Sequence[int] = (128, 128)
  norm: str = "none"  # "none", "layer", "batch" or "virtual"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: Array, *, train: bool = True, num_reference: int = 0) -> Array:
    """Generates flat outputs reshaped to output_shape."""
    size = math.prod(self.output_shape)
    if self.norm in ("none", "layer"):
      h = jnn.MLP(tuple(self.hidden) + (size,), norm=self.norm, name="mlp")(z)
    else:
      h = z
      for i, width in enumerate(self.hidden):
        # No bias before (virtual) batch norm: the normalization removes it.
        h = nn.Dense(width, use_bias=False, name=f"dense_{i}")(h)
        h = nn.relu(normalization(self.norm, train, num_reference, self.axis_name,
                               f"norm_{i}")(h))
      h = nn.Dense(size, name="output")(h)
    return h.reshape((z.shape[0],) + tuple(self.output_shape))


class Generator(nn.Module):
  """The generator: MLP, DCGAN or style-based; outputs in data space.

  output 'tanh' maps a tanh output onto the data's value range (images);
  'linear' leaves it unbounded (2-D toy data).
  """

  architecture: str
  output_shape: tuple[int, ...]
  value_range: tuple[float, float]
  output: str = "linear"
  hidden: Sequence[int] = (128, 128)
  channels: Sequence[int] = (64, 32)
  norm: str = "none"
  style_dim: int = 64
  mapping_layers: int = 3
  style_noise: bool = True
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: Array, *, train: bool = True, num_reference: int = 0) -> Array:
    """z: [N, inputs] -> samples [N, *output_shape]."""
    activation = "tanh" if self.output == "tanh" else "none"
    if self.architecture == "dcgan":
      x = DCGANGenerator(tuple(self.output_shape), tuple(self.channels), norm=self.norm,
                         output_activation=activation, axis_name=self.axis_name,
                         name="dcgan")(z, train=train, num_reference=num_reference)
    elif self.architecture == "style":
      x = StyleGenerator(tuple(self.output_shape), tuple(self.channels),
                         style_dim=self.style_dim, mapping_layers=self.mapping_layers,
                         noise=self.style_noise, output_activation=activation,
                         name="style")(z, train=train, num_reference=num_reference)
    else:
      x = MLPGenerator(tuple(self.output_shape), tuple(self.hidden), self.norm,
                       self.axis_name, name="mlp")(z, train=train,
                                                   num_reference=num_reference)
      if activation == "tanh":
        x = jnp.tanh(x)
    return to_range(x, self.value_range) if self.output == "tanh" else x


class Discriminator(nn.Module):
  """The discriminator: an MLP or DCGAN trunk and the heads a method needs.

  `condition` ([N, k], e.g. one-hot labels for CGAN) is concatenated to the
  input: to the flat vector for the MLP, as k constant channels for images.
  With `autoencoder` the network is an autoencoder (EBGAN, BEGAN): the trunk
  encodes to a `code_dim` code and a mirrored decoder reconstructs the input.
  Regularisers from Salimans et al. 2016 for semi-supervised learning:
  Gaussian noise on the input (and on hidden layers, MLP) and dropout, active
  only with train=True, drawn per example from the "noise"/"dropout" streams.
  """

  architecture: str
  input_shape: tuple[int, ...]
  value_range: tuple[float, float]
  output: str = "linear"
  hidden: Sequence[int] = (128, 128)
  channels: Sequence[int] = (32, 64)
  norm: str = "none"
  score: bool = True
  num_class_logits: int = 0
  q_categorical: int = 0
  q_continuous: int = 0
  q_hidden: int = 128
  autoencoder: bool = False
  code_dim: int = 32
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  input_noise: float = 0.0
  hidden_noise: float = 0.0
  dropout: float = 0.0
  negative_slope: float = 0.2
  axis_name: str | None = None

  def _noise(self, h: Array, std: float, train: bool) -> Array:
    if not train or std <= 0:
      return h
    return h + std * rng.normal(self.make_rng("noise"), h.shape, h.dtype)

  def _dropout(self, h: Array, train: bool) -> Array:
    if not train or self.dropout <= 0:
      return h
    keep = ~rng.bernoulli(self.make_rng("dropout"), self.dropout, h.shape)
    return jnp.where(keep, h / (1.0 - self.dropout), 0.0)

  def _trunk(self, x: Array, condition: Array | None, train: bool) -> Array:
    x = self._noise(x, self.input_noise, train)
    if self.architecture == "dcgan":
      if condition is not None:
        tiled = jnp.broadcast_to(condition[:, None, None, :],
                                 x.shape[:3] + (condition.shape[-1],))
        x = jnp.concatenate([x, tiled], axis=-1)
      _, h = DCGANDiscriminator(tuple(self.channels), norm=self.norm, outputs=0,
                                negative_slope=self.negative_slope,
                                axis_name=self.axis_name, name="dcgan")(x, train=train)
      return self._dropout(h, train)
    h = x.reshape(x.shape[0], -1)
    if condition is not None:
      h = jnp.concatenate([h, condition], axis=-1)
    for i, width in enumerate(self.hidden):
      # As in DCGAN, the input layer is not normalized: batch norm there would
      # make D blind to a shift of the whole batch (e.g. G's output bias).
      norm = self.norm if i > 0 else "none"
      h = nn.Dense(width, use_bias=norm != "batch", name=f"dense_{i}")(h)
      h = normalization(norm, train, 0, self.axis_name, f"norm_{i}")(h)
      h = nn.leaky_relu(h, self.negative_slope)
      h = self._dropout(self._noise(h, self.hidden_noise, train), train)
    return h

  def _decoder(self, code: Array, train: bool) -> Array:
    if self.architecture == "dcgan":
      out = DCGANGenerator(tuple(self.input_shape), tuple(reversed(self.channels)),
                           norm=self.norm,
                           output_activation="tanh" if self.output == "tanh" else "none",
                           axis_name=self.axis_name, name="decoder")(code, train=train)
    else:
      size = math.prod(self.input_shape)
      out = jnn.MLP(tuple(reversed(self.hidden)) + (size,), name="decoder")(code)
      out = out.reshape((code.shape[0],) + tuple(self.input_shape))
      if self.output == "tanh":
        out = jnp.tanh(out)
    return to_range(out, self.value_range) if self.output == "tanh" else out

  @nn.compact
  def __call__(self, x: Array, condition: Array | None = None, *,
               train: bool = True) -> dict[str, Array]:
    """x: [N, *input_shape] -> {head: output} (see the module docstring)."""
    h = self._trunk(x, condition, train)
    if self.autoencoder:
      code = nn.Dense(self.code_dim, name="code")(h)
      return {"reconstruction": self._decoder(code, train), "code": code, "features": code}
    out = {"features": h}
    if self.minibatch_kernels:
      h = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim,
                                  name="minibatch")(h)
    if self.score:
      out["score"] = nn.Dense(1, name="score")(h)[:, 0]
    if self.num_class_logits:
      out["class_logits"] = nn.Dense(self.num_class_logits, name="classes")(h)
    if self.q_categorical or self.q_continuous:
      q = nn.leaky_relu(nn.Dense(self.q_hidden, name="q_hidden")(h), self.negative_slope)
      q = nn.Dense(self.q_categorical + self.q_continuous, name="q")(q)
      out["q_categorical_logits"] = q[:, :self.q_categorical]
      out["q_continuous_mean"] = q[:, self.q_categorical:]
    return out
