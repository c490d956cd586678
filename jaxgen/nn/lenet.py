"""A LeNet-like digit classifier: the feature network of the digit FID/KID/IS.

Two conv + ReLU + 2x2 max-pool stages, a hidden Dense + ReLU layer (the
*features*, as Inception's pool3 is for FID) and a Dense layer of class logits
(LeCun et al. 1998, with ReLU and max pooling). Dropout before the logits is the
only train-time difference. `jaxgen.metrics.lenet` ships trained weights for
MNIST (28x28) and sklearn digits (8x8).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxgen.nn import channels_last

Array = jax.Array


class LeNet(nn.Module):
  """[N, H, W, 1] images in [0, 1] -> {"features": [N, hidden], "logits": [N, classes]}."""

  channels: Sequence[int] = (32, 64)
  kernel_size: int = 5
  hidden: int = 128
  num_classes: int = 10
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> dict[str, Array]:
    for i, width in enumerate(self.channels):
      x = channels_last.Conv(width, (self.kernel_size, self.kernel_size), padding="SAME",
                  name=f"conv{i}")(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
    dropped = nn.Dropout(self.dropout, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, name="logits")(dropped)
    return {"features": features, "logits": logits}


def prepare(images: Array, value_range: tuple[float, float]) -> Array:
  """Images [N, H, W], [N, H, W, 1] or [N, H*W] in `value_range` -> [N, H, W, 1] in [0, 1].

  Flattened images must be square. Values outside the range are clipped, as
  samples of an unconstrained decoder may stray slightly outside it.
  """
  x = jnp.asarray(images, jnp.float32)
  if x.ndim == 2:
    side = int(round(x.shape[1] ** 0.5))
    if side * side != x.shape[1]:
      raise ValueError(f"flattened images must be square, got {x.shape[1]} values")
    x = x.reshape(x.shape[0], side, side)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] != 1:
    raise ValueError(f"LeNet takes grey images [N, H, W(, 1)], got {images.shape}")
  low, high = value_range
  return jnp.clip((x - low) / (high - low), 0.0, 1.0)
