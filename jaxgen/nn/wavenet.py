"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"):
dilated causal 1-D convolutions with gated units, and their one-step form for
fast generation (Paine et al. 2016, "Fast Wavenet Generation Algorithm").

The network maps a signal's one-hot levels x [B, T, C·L] to logits
[B, T, C, L] of p(x_t | x_<t): the input is shifted right by one sample (the
logits at t see x_{t−1} and before, never x_t), then

  h = CausalConv_k(shifted)                                  the input layer
  for d in dilations:                                        e.g. 1, 2, …, 2^9, repeated
    z = tanh(W_f *_d h + V_f y) ⊙ σ(W_g *_d h + V_g y)       eq. 2–3 (y: a label, optional)
    skip += 1×1(z);  h = h + 1×1(z)                          residual and skip, fig. 4
  logits = 1×1(ReLU(1×1(ReLU(skip))))                        the output layers

where *_d is a causal convolution of kernel k dilated by d (zero-padded on
the left: activations before the signal starts are zero). The logits at t
see exactly the `receptive_field` samples x_{t−R} … x_{t−1}, with
R = (k − 1)(1 + Σ d) + 1. The C channels of one time step are conditionally
independent given the past.

`step` computes the logits of one time step from the previous sample alone,
keeping for each convolution a queue of its last (k − 1)·d inputs (a circular
buffer): O(layers) work per sample instead of the O(layers · R) of running
the stack on the receptive field. Both read the same parameters.

  net = WaveNet(levels=256, channels=1, dilations=(1, 2, 4, 8) * 2)
  logits = net.apply(params, one_hot)                              # [B, T, 1, 256]
  queues = net.apply(params, batch, method=WaveNet.initial_queues)
  logits_t, queues = net.apply(params, previous, queues, t, method=WaveNet.step)
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.core import precision
from jaxgen.nn import channels_last


def dilation_schedule(depth: int, stacks: int) -> tuple[int, ...]:
  """(1, 2, 4, …, 2^depth) repeated `stacks` times (WaveNet's dilation pattern)."""
  return tuple(2**i for i in range(depth + 1)) * stacks


def receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
  """How many past samples the logits at t see: (k − 1)(1 + Σ d) + 1."""
  return (kernel_size - 1) * (1 + sum(dilations)) + 1


def shift_right(inputs: jax.Array) -> jax.Array:
  """[B, T, D] -> [B, T, D] with position t holding inputs[t − 1] (zeros at t = 0)."""
  return jnp.pad(inputs, ((0, 0), (1, 0), (0, 0)))[:, :-1]


@precision.linear_layer
class CausalConv(nn.Module):
  """A causal 1-D convolution: out[t] = Σ_j in[t − (k−1−j)·d] W_j + b (zeros before t = 0)."""

  in_features: int
  features: int
  kernel_size: int
  dilation: int = 1

  def setup(self):
    self.kernel = self.param("kernel", nn.initializers.lecun_normal(),
                             (self.kernel_size, self.in_features, self.features))
    self.bias = self.param("bias", nn.initializers.zeros, (self.features,))

  @property
  def memory(self) -> int:
    """How many past inputs a step needs: (k − 1)·d."""
    return (self.kernel_size - 1) * self.dilation

  def __call__(self, x: jax.Array) -> jax.Array:
    """x [B, T, in] -> [B, T, out]."""
    y = channels_last.conv_general_dilated(
        x, self.kernel, window_strides=(1,), padding=[(self.memory, 0)],
        rhs_dilation=(self.dilation,), dimension_numbers=("NWC", "WIO", "NWC"))
    return y + self.bias

  def step(self, x: jax.Array, queue: jax.Array, position: jax.Array
           ) -> tuple[jax.Array, jax.Array]:
    """One time step: x [B, in] at `position` t; queue [B, (k−1)·d, in] holds the
    inputs at t − (k−1)·d … t − 1 in slots s mod (k−1)·d. -> (out [B, out], queue)."""
    window = [queue[:, (position - (self.kernel_size - 1 - j) * self.dilation) % self.memory]
              for j in range(self.kernel_size - 1)] + [x]
    y = sum(jnp.dot(w, self.kernel[j]) for j, w in enumerate(window)) + self.bias
    return y, queue.at[:, position % self.memory].set(x)


class WaveNet(nn.Module):
  """Dilated causal convolutions with gated units: one-hot x [B, T, C·L] -> logits [B, T, C, L]."""

  levels: int
  channels: int = 1
  dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
  kernel_size: int = 2
  residual_channels: int = 32
  dilation_channels: int = 32
  skip_channels: int = 64
  output_channels: int = 64
  num_classes: int = 0  # > 0: global conditioning on a label

  def setup(self):
    inputs = self.channels * self.levels
    self.input_layer = CausalConv(inputs, self.residual_channels, self.kernel_size)
    self.dilated = [CausalConv(self.residual_channels, 2 * self.dilation_channels,
                               self.kernel_size, d)
                    for i, d in enumerate(self.dilations)]
    self.residual = [nn.Dense(self.residual_channels)
                     for i in range(len(self.dilations))]
    self.skip = [nn.Dense(self.skip_channels)
                 for i in range(len(self.dilations))]
    if self.num_classes:
      self.condition = [nn.Embed(self.num_classes, 2 * self.dilation_channels) for i in range(len(self.dilations))]
    self.output_hidden = nn.Dense(self.output_channels)
    self.output_logits = nn.Dense(inputs)

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.kernel_size, self.dilations)

  def _gate(self, i: int, z: jax.Array, labels: jax.Array | None) -> jax.Array:
    """tanh(filter) ⊙ σ(gate) of layer i, with the label's bias added (eq. 3)."""
    if self.num_classes:
      bias = self.condition[i](labels)  # [B, 2D]
      z = z + (bias[:, None] if z.ndim == 3 else bias)
    filter_, gate = jnp.split(z, 2, axis=-1)
    return jnp.tanh(filter_) * jax.nn.sigmoid(gate)

  def _output(self, skip: jax.Array) -> jax.Array:
    hidden = nn.relu(self.output_hidden(nn.relu(skip)))
    logits = self.output_logits(hidden)
    return logits.reshape(logits.shape[:-1] + (self.channels, self.levels))

  def __call__(self, inputs: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """inputs [B, T, C·L] (one-hot levels; any floats) -> logits [B, T, C, L] of x_t given x_<t."""
    return self.stack(shift_right(inputs), labels)

  def stack(self, shifted: jax.Array, labels: jax.Array | None = None,
            valid: jax.Array | None = None) -> jax.Array:
    """The convolutions on already shifted inputs [B, W, C·L] -> logits [B, W, C, L].

    valid: optional [W] flags; activations at invalid positions are set to
    zero before every convolution, as the left padding of the whole signal
    does (a window that starts before t = 0 then gives the signal's logits).
    """
    mask = (lambda h: h) if valid is None else (lambda h: h * valid[None, :, None])
    h = self.input_layer(mask(shifted))
    skip = 0.0
    for i in range(len(self.dilations)):
      z = self._gate(i, self.dilated[i](mask(h)), labels)
      skip = skip + self.skip[i](z)
      h = h + self.residual[i](z)
    return self._output(skip)

  def initial_queues(self, batch_size: int) -> tuple[jax.Array, ...]:
    """Zero queues (the left padding) for `step`: one [B, (k−1)·d, features] per convolution."""
    layers = [self.input_layer, *self.dilated]
    return tuple(jnp.zeros((batch_size, layer.memory, layer.in_features), jnp.float32)
                 for layer in layers)

  def step(self, previous: jax.Array, queues: tuple[jax.Array, ...], position: jax.Array,
           labels: jax.Array | None = None) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Logits [B, C, L] at `position` t from previous [B, C·L] (x_{t−1}, zeros at t = 0)."""
    h, queue = self.input_layer.step(previous, queues[0], position)
    new_queues = [queue]
    skip = 0.0
    for i in range(len(self.dilations)):
      z, queue = self.dilated[i].step(h, queues[i + 1], position)
      new_queues.append(queue)
      z = self._gate(i, z, labels)
      skip = skip + self.skip[i](z)
      h = h + self.residual[i](z)
    return self._output(skip), tuple(new_queues)
