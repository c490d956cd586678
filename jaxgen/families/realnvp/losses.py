"""RealNVP's pre-processing and likelihood as pure functions, one value per example.

The chain from data to the flow's input (Dinh et al. 2017, §4.1), for
bounded data, with its log-Jacobian counted in the likelihood:

  x  --dequantize-->  x̃ = low + (k + u)(high − low)/L      (codec, u ~ U[0, 1))
     --codec.encode-->  m ∈ [−1, 1)                          (model space)
     --to_unit-->       v = (m + 1)/2 ∈ [0, 1)
     --logit-->         y = logit(α + (1 − 2α)·v)
     --flow-->          z,  log p(m) = log N(z; 0, I) + log|det ∂z/∂y| + log|det ∂y/∂m|

and `codec.bits_per_dim` turns −log p(m) into bits/dim of the dequantized
data in integer units (a bound on the discrete data's −log₂ P / D). The
paper prints the map as α + (1 − α)·x, whose logit is infinite at the top of
the range; the symmetric form used here (and in common reimplementations)
keeps both ends finite.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen import distributions


def logit_transform(*, m: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """m ∈ [−1, 1] -> (y = logit(α + (1 − 2α)(m + 1)/2), log|det ∂y/∂m| [B])."""
  if not 0.0 <= alpha < 0.5:
    raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
  p = alpha + (1.0 - 2.0 * alpha) * 0.5 * (m + 1.0)
  y = jnp.log(p) - jnp.log1p(-p)
  # dy/dm = (1 − 2α)/2 · 1/(p(1 − p))
  log_derivative = math.log(0.5 * (1.0 - 2.0 * alpha)) - jnp.log(p) - jnp.log1p(-p)
  return y, distributions.sum_per_example(log_derivative)


def logit_inverse(*, y: jax.Array, alpha: float) -> jax.Array:
  """The inverse of `logit_transform`: y -> m ∈ [−1, 1]."""
  p = jax.nn.sigmoid(y)
  return 2.0 * (p - alpha) / (1.0 - 2.0 * alpha) - 1.0


def negative_log_likelihood(*, z: jax.Array, log_det: jax.Array) -> jax.Array:
  """−log p(input) = −log N(z; 0, I) − log|det ∂z/∂input| per example (nats): [B]."""
  return -(distributions.standard_normal_log_prob(z.reshape(z.shape[0], -1)) + log_det)


def l2_penalty(*, params) -> jax.Array:
  """Σ w² over the weights (kernels) of a parameter tree (Dinh et al.'s L2 term)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  kernels = [leaf for path, leaf in leaves
             if getattr(path[-1], "key", None) == "kernel"]
  return sum((jnp.sum(jnp.square(k)) for k in kernels), jnp.zeros(()))
