"""An MLP denoiser for vectors (2-D toy data, latent codes).

  net = MLPDenoiser(out_features=2, hidden=256, depth=3)
  out = net.apply({"params": params}, x, t)   # x: [B, D], t: [B] -> [B, 2]

Residual blocks LayerNorm-swish-Dense, + the time (and class) embedding,
swish-Dense, in the manner of the U-Net's residual blocks. It also serves as a
noise-conditional classifier for vectors (out_features = num_classes).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxgen.nn.unet import ConditioningEmbedding

Array = jax.Array


class MLPDenoiser(nn.Module):
  """x [B, D], t [B] (labels [B]) -> [B, out_features]."""

  out_features: int
  hidden: int = 256
  depth: int = 3
  num_classes: int = 0
  zero_init_output: bool = True

  @nn.compact
  def __call__(self, x: Array, t: Array, labels: Array | None = None) -> Array:
    emb = ConditioningEmbedding(self.hidden, self.num_classes, name="embed")(t, labels)
    h = nn.Dense(self.hidden, name="dense_in")(x)
    for i in range(self.depth):
      r = nn.Dense(self.hidden, name=f"block_{i}_0")(nn.swish(nn.LayerNorm(name=f"norm_{i}")(h)))
      r = r + nn.Dense(self.hidden, name=f"block_{i}_embedding")(nn.swish(emb))
      h = h + nn.Dense(self.hidden, name=f"block_{i}_1")(nn.swish(r))
    h = nn.swish(nn.LayerNorm(name="norm_out")(h))
    init = nn.initializers.zeros if self.zero_init_output else nn.initializers.lecun_normal()
    return nn.Dense(self.out_features, kernel_init=init, name="dense_out")(h)
