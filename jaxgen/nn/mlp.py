"""Multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

from jaxgen.errors import ConfigError, choices

Array = jax.Array

NORMS = ("none", "layer")


def check_norm(norm: str, valid: Sequence[str], where: str) -> None:
  """Raises ConfigError unless `norm` is one of `valid`."""
  if norm not in valid:
    raise ConfigError(
        f"{where} norm {norm!r} is not supported; use {choices(valid)}")


class MLP(nn.Module):
  """Dense layers with `activation` between them (and after the last if asked).

  With `norm='layer'` a LayerNorm sits between each activated Dense and its
  activation. x: [..., in_features] -> [..., features[-1]].
  """

  features: Sequence[int]
  activation: Callable[[Array], Array] = nn.relu
  activate_final: bool = False
  norm: str = "none"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Applies the MLP to the last axis of x."""
    check_norm(self.norm, NORMS, "MLP")
    if not self.features:
      raise ConfigError("MLP needs at least one layer; got features=()")
    for i, width in enumerate(self.features):
      x = nn.Dense(width, name=f"dense_{i}")(x)
      if i < len(self.features) - 1 or self.activate_final:
        if self.norm == "layer":
          x = nn.LayerNorm(name=f"norm_{i}")(x)
        x = self.activation(x)
    return x
