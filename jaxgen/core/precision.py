"""Mixed precision: `train.compute_dtype` for every family, in one mechanism.

With `train.compute_dtype=bfloat16` the parameters and optimizer state stay
float32 (optax updates them in float32, checkpoints hold float32), while every
matrix multiplication and convolution of a network runs in bfloat16: its
input, kernel and bias are cast to bfloat16 and so is its output. Everything
a family computes from a network's outputs (losses, likelihoods, bits/dim,
samplers' arithmetic) is float32, because the outputs are cast back to
float32 where the network returns.

A family calls this module in one place, where it builds its networks:

  encoder = precision.wrap(Encoder(...), precision.compute_dtype(config))

`wrap` returns the module itself for float32 (so the default path is the
same program as before, bit for bit) and otherwise a thin wrapper whose
`init` is the module's (float32 parameters) and whose `apply`

  1. casts the "kernel", "bias" and "embedding" leaves of every parameter
     dict that holds a "kernel" (or an "embedding") — the linear layers'
     weights — to the compute dtype. Other parameters (normalisation scales
     and offsets, flows' log-scales, ActNorm, style constants) and other
     collections (BatchNorm's running statistics) stay float32, so that
     statistics, log-determinants and running averages keep float32
     precision;
  2. runs the module with a flax method interceptor that casts the floating
     inputs of each linear layer (`LINEAR_LAYERS`: Dense, Conv,
     ConvTranspose, ... and jaxgen's own masked and phase-decomposed
     convolutions) to the compute dtype. A float32 value entering a layer
     (the network's input, a normalisation's float32 output, a sinusoidal
     time embedding) is cast there; values that feed no linear layer (a
     timestep, a mask) are never rounded;
  3. casts every bfloat16 leaf of the result (outputs and mutated
     collections) back to float32.

Normalisation layers compute their statistics in float32 (flax does) and,
with float32 scales, return float32: the elementwise chain between a
normalisation and the next convolution runs in float32, which XLA fuses into
the convolution's input cast. Gradients reach the float32 parameters through
the casts (the transpose of a cast is a cast back), so the optimizer sees
float32 gradients.

A family with no network to run in low precision (closed-form EM, naive
Bayes) calls `require_float32`, which refuses bfloat16 with a one-line error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError, choices

COMPUTE_DTYPES = ("float32", "bfloat16")
DEFAULT = "float32"

# Modules whose floating inputs are cast to the compute dtype. jaxgen.nn adds
# its own linear layers with `linear_layer` (a class decorator).
LINEAR_LAYERS: list[type] = [nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose,
                             nn.ConvLocal, nn.Einsum]
# Leaves of a linear layer's parameter dict that are cast.
_WEIGHT_NAMES = ("kernel", "bias", "embedding")


def linear_layer(cls: type) -> type:
  """Class decorator: `cls` is a linear layer whose inputs are cast (see module doc)."""
  if cls not in LINEAR_LAYERS:
    LINEAR_LAYERS.append(cls)
  return cls


def check(name: Any, key: str = "train.compute_dtype") -> str:
  """`name` if it is a supported compute dtype, else a one-line ConfigError."""
  if name not in COMPUTE_DTYPES:
    raise ConfigError(f"unknown {key} {name!r}; valid: {choices(COMPUTE_DTYPES)}")
  return name


def compute_dtype(config: Any) -> str:
  """The run's compute dtype (`config.train.compute_dtype`, float32 when absent)."""
  train = config.get("train") if hasattr(config, "get") else None
  name = train.get("compute_dtype", DEFAULT) if train is not None else DEFAULT
  return check(name)


def require_float32(config: Any, method: str, reason: str) -> None:
  """Refuses a compute dtype other than float32 for `method`, saying why."""
  name = compute_dtype(config)
  if name != "float32":
    raise ConfigError(f"method {method!r} does not support train.compute_dtype="
                      f"{name} ({reason}); use train.compute_dtype=float32")


def _is_float(leaf: Any) -> bool:
  return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.floating)


def cast_weights(params: Any, dtype: Any) -> Any:
  """`params` with the linear layers' weights (see module doc) cast to `dtype`."""
  if not isinstance(params, Mapping):
    return params
  linear = "kernel" in params or "embedding" in params
  out = {}
  for name, value in params.items():
    if isinstance(value, Mapping):
      out[name] = cast_weights(value, dtype)
    elif linear and name in _WEIGHT_NAMES and _is_float(jnp.asarray(value)):
      out[name] = jnp.asarray(value).astype(dtype)
    else:
      out[name] = value
  return out


def to_float32(tree: Any) -> Any:
  """Every low-precision floating leaf of `tree` as float32 (others unchanged)."""
  def cast(leaf):
    if _is_float(leaf) and jnp.finfo(leaf.dtype).bits < 32:
      return leaf.astype(jnp.float32)
    return leaf
  return jax.tree.map(cast, tree)


def _input_caster(dtype: Any):
  """A flax interceptor casting the floating inputs of linear layers to `dtype`."""
  layers = tuple(LINEAR_LAYERS)

  def cast(leaf):
    return leaf.astype(dtype) if _is_float(leaf) else leaf

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and isinstance(context.module, layers):
      args, kwargs = jax.tree.map(cast, (args, kwargs))
    return next_fun(*args, **kwargs)

  return interceptor


class MixedPrecision:
  """A flax module run in a low compute dtype (see the module docstring).

  `init` and every attribute are the wrapped module's; `apply` casts.
  """

  def __init__(self, module: nn.Module, dtype: Any):
    self.module = module
    self.dtype = jnp.dtype(dtype)

  def init(self, *args: Any, **kwargs: Any) -> Any:
    return self.module.init(*args, **kwargs)

  def apply(self, variables: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    variables = dict(variables)
    if "params" in variables:
      variables["params"] = cast_weights(variables["params"], self.dtype)
    with nn.intercept_methods(_input_caster(self.dtype)):
      out = self.module.apply(variables, *args, **kwargs)
    return to_float32(out)

  def __getattr__(self, name: str) -> Any:
    # Only reached for names not set in __init__: the module's fields, methods.
    return getattr(self.module, name)


def wrap(module: nn.Module, dtype: str) -> Any:
  """`module` itself for float32; else `module` run in `dtype` (see module doc)."""
  check(dtype)
  if dtype == "float32":
    return module
  return MixedPrecision(module, dtype)
