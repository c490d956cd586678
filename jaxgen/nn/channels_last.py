"""A convolution whose gradients stay channels-last, so they run fast inside loops.

`conv_general_dilated` here is `jax.lax.conv_general_dilated` for channels-last
layouts (NWC/WIO, NHWC/HWIO, ...) with its own reverse-mode rule: the input
and weight gradients are written as convolutions in the same channels-last
layout (explicit transposes and a flip around them), and are themselves made
of this function, so gradients of gradients (WGAN-GP's penalty) stay
channels-last too.

Why not JAX's own rule: it emits the gradients as convolutions with permuted
dimension numbers (the weight gradient contracts over the batch, `[f,0,1,b]`)
and a reversed kernel. In the top-level program XLA:CPU rewrites those into
its fast channels-last kernels, but inside a nested computation — the body of
`lax.scan`/`lax.map`/`while`, a branch of `lax.cond`/`lax.switch` — it does
not, and runs them with a generic loop nest: on a 64×16×16×32 input with a
3×3×32×32 kernel the weight gradient took 650 ms inside a scan against 7 ms
outside, the input gradient 118 ms against 3.4 ms (jax-ml/jax#12868 is the
forward-pass form of the same problem). Written as below, both take the same
time inside a loop as outside, and give the same numbers.

Used by jaxgen's layers (`Conv` below, and the networks that call the
convolution directly), so a train step inside `lax.switch` (`pggan`) or
replicas run by `lax.map` (`train.seed_strategy='loop'`) keep the speed of a
plain step. Anything outside its scope (grouped or batch-grouped
convolutions, channels-first layouts) goes to `jax.lax.conv_general_dilated`
unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

Array = jax.Array

_LAYOUTS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"),
            3: ("NDHWC", "DHWIO", "NDHWC")}


def _channels_last(dimension_numbers: Any, spatial: int) -> bool:
  """Whether `dimension_numbers` is the channels-last layout for `spatial` dims."""
  if spatial not in _LAYOUTS:
    return False
  if dimension_numbers is None:
    return False  # lax's default is channels-first
  expected = jax.lax.conv_dimension_numbers((1,) * (spatial + 2), (1,) * (spatial + 2),
                                            _LAYOUTS[spatial])
  given = jax.lax.conv_dimension_numbers((1,) * (spatial + 2), (1,) * (spatial + 2),
                                         dimension_numbers)
  return given == expected


def _dilated(size: int, dilation: int) -> int:
  return 0 if size == 0 else 1 + dilation * (size - 1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv(x: Array, w: Array, strides: tuple, padding: tuple, lhs_dilation: tuple,
          rhs_dilation: tuple, precision: Any) -> Array:
  return jax.lax.conv_general_dilated(
      x, w, strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=_LAYOUTS[x.ndim - 2], precision=precision)


def _conv_forward(x, w, strides, padding, lhs_dilation, rhs_dilation, precision):
  out = _conv(x, w, strides, padding, lhs_dilation, rhs_dilation, precision)
  return out, (x, w)


def _conv_backward(strides, padding, lhs_dilation, rhs_dilation, precision, residuals, ct):
  x, w = residuals
  spatial = x.ndim - 2
  if ct.size == 0:  # an empty output: nothing flows back
    return jax.numpy.zeros_like(x), jax.numpy.zeros_like(w)
  in_shape, out_shape, window = x.shape[1:-1], ct.shape[1:-1], w.shape[:-2]
  # Input gradient: the cotangent convolved with the flipped kernel, its in/out
  # channels swapped (JAX's padding rule for the transposed convolution).
  # Weight gradient: the batch is the contraction, so batch and channels trade
  # places (transposes) and the cotangent is the kernel, dilated by the strides.
  dx_padding, dw_padding = [], []
  for size, k, s, out, (lo, _), a, d in zip(in_shape, window, strides, out_shape, padding,
                                            lhs_dilation, rhs_dilation):
    before = _dilated(k, d) - lo - 1
    dx_padding.append((before, _dilated(size, a) + _dilated(k, d) - 1 - _dilated(out, s)
                       - before))
    dw_padding.append((lo, _dilated(out, s) - _dilated(size, a) + _dilated(k, d) - lo - 1))
  flipped = jax.numpy.flip(w, tuple(range(spatial))).swapaxes(-1, -2)
  dx = _conv(ct, flipped, lhs_dilation, tuple(dx_padding), strides, rhs_dilation, precision)
  swap = (x.ndim - 1,) + tuple(range(1, x.ndim - 1)) + (0,)  # [C, *S, N]
  kernel = tuple(range(1, ct.ndim - 1)) + (0, ct.ndim - 1)   # [*O, N, Co]
  dw = _conv(x.transpose(swap), ct.transpose(kernel), rhs_dilation, tuple(dw_padding),
             lhs_dilation, strides, precision)
  dw = dw.transpose(tuple(range(1, spatial + 1)) + (0, spatial + 1))  # [*K, Ci, Co]
  return dx.astype(x.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_forward, _conv_backward)


def conv_general_dilated(lhs: Array, rhs: Array, window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]],
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None) -> Array:
  """`jax.lax.conv_general_dilated` with channels-last gradients (module docstring)."""
  spatial = lhs.ndim - 2
  if (feature_group_count != 1 or batch_group_count != 1 or preferred_element_type is not None
      or not _channels_last(dimension_numbers, spatial)):
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, batch_group_count=batch_group_count,
        precision=precision, preferred_element_type=preferred_element_type)
  strides = tuple(int(s) for s in window_strides)
  lhs_dilation = tuple(int(a) for a in lhs_dilation) if lhs_dilation else (1,) * spatial
  rhs_dilation = tuple(int(d) for d in rhs_dilation) if rhs_dilation else (1,) * spatial
  if isinstance(padding, str):
    in_shape = [_dilated(n, a) for n, a in zip(lhs.shape[1:-1], lhs_dilation)]
    window = [_dilated(k, d) for k, d in zip(rhs.shape[:-2], rhs_dilation)]
    padding = jax.lax.padtype_to_pads(in_shape, window, strides, padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if isinstance(precision, list):
    precision = tuple(precision)
  return _conv(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, precision)


class Conv(nn.Conv):
  """`flax.linen.Conv` on `conv_general_dilated` above (same parameters, same outputs)."""

  conv_general_dilated: Any = staticmethod(conv_general_dilated)

