"""Transposed convolution as stride-1 convolutions over the output phases.

On CPU the backward pass of `lax.conv_transpose` (what `nn.ConvTranspose`
lowers to), its kernel gradient above all, is slow. Each output position
o = s * q + p only sees the kernel taps j = (pad_a - p) mod s (+ multiples of
s), so every output phase p is a stride-1 correlation of the undilated input
with a sub-kernel W[j_p::s]. `PhaseConvTranspose` computes each phase as its
own stride-1 convolution with exactly its taps (four 2x2 convs for k=4, s=2)
and interleaves the results into space (`form="phases"`, the default). The
alternative `form="combined"` stacks all phases into one convolution whose
kernel spans every phase's taps, zeros included (a 3x3 kernel per phase for
k=4, s=2: 2.25x the multiply-adds). The parameters are those of
`nn.ConvTranspose`, so checkpoints move freely between the three.

benchmarks/conv_transpose.py measures the trade (results/conv_transpose.json,
batch 64, 2 shared CPU cores): forward plus backward of the per-phase form is
1.0-14x faster than nn.ConvTranspose and faster than or equal to the combined
form on every layer timed; the forward pass alone ranges from 0.5x to 2x of
nn.ConvTranspose, so a forward-only workload (sampling) may prefer the latter.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgen.core import precision
from jaxgen.errors import ConfigError, choices
from jaxgen.nn import channels_last

Array = jax.Array
PaddingLike = str | int | Sequence[int | tuple[int, int]]

_PADDING_MODES = ("SAME", "VALID")
FORMS = ("auto", "phases", "combined")


def depth_to_space(x: Array, block: int | Sequence[int]) -> Array:
  """Moves channel blocks into space: [N, *S, prod(b) * C] -> [N, *(S * b), C].

  The channel axis is read as (b_1, ..., b_n, C) in row-major order, as in
  `tf.nn.depth_to_space` (DCR), so `x[n, h, w, (i * b_w + j) * C + c]` lands at
  `[n, h * b_h + i, w * b_w + j, c]`.
  """
  spatial_ndim = x.ndim - 2
  block = (block,) * spatial_ndim if isinstance(block, int) else tuple(block)
  if len(block) != spatial_ndim:
    raise ValueError(
        f"depth_to_space: block {block} has {len(block)} entries but x with "
        f"shape {x.shape} has {spatial_ndim} spatial dims")
  batch, *spatial, depth = x.shape
  block_size = math.prod(block)
  if depth % block_size:
    raise ValueError(
        f"depth_to_space: channels {depth} not divisible by block {block}")
  channels = depth // block_size
  x = x.reshape(batch, *spatial, *block, channels)
  # [N, S_1..S_n, b_1..b_n, C] -> [N, S_1, b_1, ..., S_n, b_n, C]
  order = [0]
  for d in range(spatial_ndim):
    order += [1 + d, 1 + spatial_ndim + d]
  x = x.transpose(*order, x.ndim - 1)
  return x.reshape(batch, *(n * b for n, b in zip(spatial, block)), channels)


def _transpose_padding(kernel: int, stride: int, padding: str | tuple[int, int]
                       ) -> tuple[int, int]:
  """Padding of the dilated input, exactly as `lax.conv_transpose` picks it."""
  if padding == "SAME":
    pad_len = kernel + stride - 2
    pad_a = kernel - 1 if stride > kernel - 1 else math.ceil(pad_len / 2)
    return pad_a, pad_len - pad_a
  if padding == "VALID":
    pad_len = kernel + stride - 2 + max(kernel - stride, 0)
    return kernel - 1, pad_len - (kernel - 1)
  # Explicit pairs pass straight through to the dilated input in lax (unless
  # its `use_consistent_padding` is set, which flax does not do).
  return padding


def _canonical_padding(padding: PaddingLike, rank: int
                       ) -> str | list[tuple[int, int]]:
  """'SAME' | 'VALID' | per-dim (low, high) pairs, as flax reads `padding`."""
  if isinstance(padding, str):
    if padding in _PADDING_MODES:
      return padding
  elif isinstance(padding, int):
    return [(padding, padding)] * rank
  elif isinstance(padding, Sequence) and len(padding) == rank:
    pairs = []
    for p in padding:
      if isinstance(p, int):
        pairs.append((p, p))
      elif isinstance(p, Sequence) and len(p) == 2:
        pairs.append((int(p[0]), int(p[1])))
      else:
        break
    if len(pairs) == rank:
      return pairs
  raise ConfigError(
      f"PhaseConvTranspose padding {padding!r} is not supported; use "
      f"{choices(_PADDING_MODES)}, an int, or {rank} (low, high) pairs")


class _Phase(NamedTuple):
  """One output phase p of one spatial dimension of a transposed convolution.

  out[s*q + p] = sum_{t < taps} x[q + offset + t] * W[first_tap + s*t].
  """

  first_tap: int
  taps: int
  offset: int


def _phases(size: int, kernel: int, stride: int, pad_a: int, pad_b: int
            ) -> tuple[list[_Phase], int, int]:
  """The phases of one spatial dimension, the rows per phase and the output length."""
  out_size = (size - 1) * stride + 1 + pad_a + pad_b - kernel + 1
  if out_size <= 0:
    raise ConfigError(
        f"PhaseConvTranspose output would be empty: input size {size}, kernel "
        f"{kernel}, stride {stride}, padding ({pad_a}, {pad_b})")
  phases = []
  for p in range(stride):
    first_tap = (pad_a - p) % stride
    taps = max(0, -(-(kernel - first_tap) // stride))
    phases.append(_Phase(first_tap, taps, (p + first_tap - pad_a) // stride))
  return phases, -(-out_size // stride), out_size


def _phase_plan(size: int, kernel: int, stride: int, pad_a: int, pad_b: int
                ) -> tuple[np.ndarray, tuple[int, int], int]:
  """Plans one spatial dimension of the combined (one-convolution) form.

  Returns `(index, (pad_low, pad_high), out_size)`: `index[u, p]` is the tap of
  the original kernel that the combined kernel holds at offset u for phase p
  (`kernel` means "no tap", a zero), the padding of the undilated input for the
  stride-1 convolution, and the length of the transposed-conv output.
  """
  phases, phase_rows, out_size = _phases(size, kernel, stride, pad_a, pad_b)
  active = [phase for phase in phases if phase.taps]
  start = min(phase.offset for phase in active)
  end = max(phase.offset + phase.taps for phase in active)
  width = end - start
  index = np.full((width, stride), kernel, dtype=np.int32)
  for p, phase in enumerate(phases):
    for t in range(phase.taps):
      index[phase.offset - start + t, p] = phase.first_tap + stride * t
  # Rows q in [0, phase_rows) read input q + start + u, u < width.
  padding = (-start, phase_rows - 1 + end - 1 - (size - 1))
  return index, padding, out_size


def _combined_kernel(kernel: Array, indices: Sequence[np.ndarray]) -> Array:
  """[*k, Cin, Cout] -> [*L, Cin, prod(s) * Cout], phases outer, Cout inner."""
  spatial_ndim = len(indices)
  # A trailing zero slot per spatial axis stands for "this phase has no tap".
  padded = jnp.pad(kernel, [(0, 1)] * spatial_ndim + [(0, 0), (0, 0)])
  # Broadcast each axis' [L_d, s_d] index table over the grid
  # [L_1..L_n, s_1..s_n]; numpy builds them at trace time, so jit sees a gather
  # with constant indices.
  grids = []
  for d, index in enumerate(indices):
    shape = [1] * (2 * spatial_ndim)
    shape[d] = index.shape[0]
    shape[spatial_ndim + d] = index.shape[1]
    grids.append(index.reshape(shape))
  gathered = padded[tuple(grids)]  # [L..., s..., Cin, Cout]
  widths = [index.shape[0] for index in indices]
  strides = [index.shape[1] for index in indices]
  cin, cout = kernel.shape[-2:]
  order = (list(range(spatial_ndim)) + [2 * spatial_ndim]
           + list(range(spatial_ndim, 2 * spatial_ndim)) + [2 * spatial_ndim + 1])
  gathered = gathered.transpose(order)  # [L..., Cin, s..., Cout]
  return gathered.reshape(*widths, cin, math.prod(strides) * cout)


def _conv_per_phase(inputs: Array, kernel: Array, kernel_size: Sequence[int],
                    strides: Sequence[int], pads: Sequence[tuple[int, int]],
                    conv) -> tuple[Array, list[int]]:
  """All output phases, each a stride-1 conv with its own taps, stacked on channels.

  Returns [N, *phase_rows, prod(s) * Cout] (phases outer, row-major, as
  `depth_to_space` reads them) and the transposed-conv output lengths.
  """
  plans = [_phases(n, k, s, *pad) for n, k, s, pad in
           zip(inputs.shape[1:-1], kernel_size, strides, pads)]
  rows = [plan[1] for plan in plans]
  outputs = []
  for phase in itertools.product(*[plan[0] for plan in plans]):
    if any(p.taps == 0 for p in phase):  # no tap reaches this phase: zeros
      outputs.append(jnp.zeros((inputs.shape[0], *rows, kernel.shape[-1]),
                               jnp.result_type(inputs, kernel)))
      continue
    sub_kernel = kernel[tuple(slice(p.first_tap, p.first_tap + s * p.taps, s)
                              for p, s in zip(phase, strides))]
    padding = [(-p.offset, q - 1 + p.offset + p.taps - 1 - (n - 1))
               for p, q, n in zip(phase, rows, inputs.shape[1:-1])]
    outputs.append(conv(sub_kernel, padding))
  return jnp.concatenate(outputs, axis=-1), [plan[2] for plan in plans]


@precision.linear_layer
class PhaseConvTranspose(nn.Module):
  """Drop-in `nn.ConvTranspose` computed as stride-1 convs plus a depth-to-space.

  Same attributes, parameter names and shapes (`kernel` [*k, Cin, Cout],
  `bias` [Cout]) and outputs as `nn.ConvTranspose` with
  `transpose_kernel=False`; forward plus backward is several times cheaper on
  CPU (see the module docstring for the trade).
  inputs: [*batch, *spatial, Cin] (or unbatched [*spatial, Cin]).
  """

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] | None = None
  padding: PaddingLike = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()
  # "phases": one stride-1 conv per output phase with exactly its taps;
  # "combined": one conv whose kernel stacks all phases (zeros where a phase
  # has fewer taps); "auto": phases whenever a stride exceeds 1.
  form: str = "auto"

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    """Applies the transposed convolution."""
    # An int kernel_size means a 1-d convolution, as in flax.
    if isinstance(self.kernel_size, int):
      kernel_size = (self.kernel_size,)
    else:
      kernel_size = tuple(self.kernel_size)
    rank = len(kernel_size)
    if self.strides is None:
      strides = (1,) * rank
    elif isinstance(self.strides, int):
      strides = (self.strides,) * rank
    else:
      strides = tuple(self.strides)
    if len(strides) != rank:
      raise ConfigError(
          f"PhaseConvTranspose strides {self.strides!r} must have {rank} "
          f"entries to match kernel_size {self.kernel_size!r}")
    padding = _canonical_padding(self.padding, rank)

    batch_ndim = inputs.ndim - (rank + 1)
    if batch_ndim < 0:
      raise ValueError(
          f"PhaseConvTranspose with kernel_size {kernel_size} needs inputs "
          f"with at least {rank + 1} dims; got shape {inputs.shape}")
    batch_shape = inputs.shape[:batch_ndim]
    inputs = inputs.reshape((-1,) + inputs.shape[batch_ndim:])

    in_features = inputs.shape[-1]
    kernel = self.param("kernel", self.kernel_init,
                        kernel_size + (in_features, self.features),
                        self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    inputs, kernel, bias = nn.dtypes.promote_dtype(
        inputs, kernel, bias, dtype=self.dtype)

    pads = [_transpose_padding(k, s, padding if isinstance(padding, str)
                               else padding[d])
            for d, (k, s) in enumerate(zip(kernel_size, strides))]
    form = self.form
    if form not in FORMS:
      raise ConfigError(f"PhaseConvTranspose form {form!r} is not one of {choices(FORMS)}")
    if form == "auto":
      form = "combined" if all(s == 1 for s in strides) else "phases"
    spatial = tuple(range(1, rank + 1))
    dimension_numbers = lax.ConvDimensionNumbers(
        lhs_spec=(0, rank + 1) + spatial,
        rhs_spec=(rank + 1, rank) + tuple(range(rank)),
        out_spec=(0, rank + 1) + spatial)

    def conv(weights: Array, padding: Sequence[tuple[int, int]]) -> Array:
      return channels_last.conv_general_dilated(
          inputs, weights, window_strides=(1,) * rank, padding=padding,
          dimension_numbers=dimension_numbers, precision=self.precision)

    if form == "combined":
      plans = [_phase_plan(n, k, s, *pad) for n, k, s, pad in
               zip(inputs.shape[1:-1], kernel_size, strides, pads)]
      y = conv(_combined_kernel(kernel, [plan[0] for plan in plans]),
               [plan[1] for plan in plans])
      out_sizes = [plan[2] for plan in plans]
    else:
      y, out_sizes = _conv_per_phase(inputs, kernel, kernel_size, strides, pads, conv)
    y = depth_to_space(y, strides)
    # Phase rows are rounded up to whole strides; drop the overhang.
    y = y[(slice(None),) + tuple(slice(0, size) for size in out_sizes)]

    if bias is not None:
      y = y + bias
    return y.reshape(batch_shape + y.shape[1:])
