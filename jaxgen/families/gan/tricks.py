"""GAN training tricks, each a pure function or a small module.

Salimans et al. 2016 ("Improved techniques for training GANs"): feature
matching, minibatch discrimination, virtual batch normalization (in
`jaxgen.nn.dcgan`), one-sided label smoothing, historical averaging. Mescheder
et al. 2017: consensus optimization. Arjovsky et al. 2017: weight clipping.
The R1 penalty and the gradient penalties are in `losses`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen.core import collectives

Array = jax.Array
PyTree = Any


def global_mean(x: Array) -> Array:
  """The mean over axis 0 of the *global* batch, with exact local gradients.

  Under `pmap` the value is the cross-device mean while the gradient flows
  through the local mean only; once the step averages gradients over devices
  with `mean_over_devices`, they equal the single-device gradients. An
  identity-cost mean under `jit`.
  """
  local = jnp.mean(x, axis=0)
  return local + jax.lax.stop_gradient(collectives.mean_over_devices(local) - local)


def gather_batch(x: Array) -> Array:
  """The global batch along axis 0: an all-gather under `pmap`, else x."""
  axis = collectives.current_pmap_axis()
  if axis is None:
    return x
  return jax.lax.all_gather(x, axis, tiled=True)


def one_sided_targets(*, smoothing: float) -> tuple[float, float]:
  """(real target, fake target) = (1 - smoothing, 0) (Salimans et al. 2016, 3.4).

  Only the real side is smoothed: smoothing the fake targets too would reward
  the discriminator for leaving p_model high where p_data is low.
  """
  if not 0.0 <= smoothing < 1.0:
    raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
  return 1.0 - smoothing, 0.0


def feature_matching(*, real_features: Array, fake_features: Array) -> Array:
  """‖E_x f(x) - E_z f(G(z))‖² (Salimans et al. 2016, 3.1): a scalar.

  real_features, fake_features: [B, F] discriminator features. The loss is a
  function of two batch means, not a mean of per-example terms, so it is
  returned as a scalar; both means are global-batch means (`global_mean`), and
  the real side carries no gradient (the generator matches fixed statistics).
  """
  chex.assert_rank([real_features, fake_features], 2)
  target = jax.lax.stop_gradient(global_mean(real_features))
  return jnp.sum((global_mean(fake_features) - target) ** 2)


class MinibatchDiscrimination(nn.Module):
  """Minibatch features (Salimans et al. 2016, 3.2): h [N, A] -> [N, A + B].

  M_i = h_i T with T: [A, B, C]; c_b(i, j) = exp(-‖M_i,b - M_j,b‖₁);
  o(i)_b = (1/N) Σ_j c_b(i, j) over the whole batch (j = i included, as in the
  reference code), concatenated to h. The paper sums over j; we average, so
  the features lie in (0, 1] whatever the batch size (at initialisation every
  c_b is close to 1, and a sum would hand the next layer inputs of size N).
  The next layer's weights absorb the constant factor. The output is
  permutation equivariant: permuting the batch permutes the rows. Under `pmap`
  the average runs over the global batch.
  """

  num_kernels: int = 50
  kernel_dim: int = 5

  @nn.compact
  def __call__(self, h: Array) -> Array:
    """Appends the minibatch features to h: [N, A]."""
    chex.assert_rank(h, 2)
    tensor = self.param("T", nn.initializers.normal(0.05),
                        (h.shape[-1], self.num_kernels * self.kernel_dim))
    m = (h @ tensor).reshape(h.shape[0], self.num_kernels, self.kernel_dim)
    others = gather_batch(m)
    l1 = jnp.sum(jnp.abs(m[:, None] - others[None, :]), axis=-1)  # [N, N', B]
    return jnp.concatenate([h, jnp.mean(jnp.exp(-l1), axis=1)], axis=-1)


def historical_average_update(average: PyTree, params: PyTree, count: Array
                              ) -> tuple[PyTree, Array]:
  """Running mean of a player's parameters over time: (average, count + 1)."""
  count = count + 1
  weight = 1.0 / count.astype(jnp.float32)
  average = jax.tree.map(lambda a, p: a + weight * (p - a), average, params)
  return average, count


def historical_averaging(*, params: PyTree, average: PyTree) -> Array:
  """‖θ - (1/t) Σ_i θ[i]‖² (Salimans et al. 2016, 3.3); the average is fixed."""
  average = jax.lax.stop_gradient(average)
  return sum(jnp.sum((p - a) ** 2) for p, a in
             zip(jax.tree.leaves(params), jax.tree.leaves(average)))


def clip_weights(params: PyTree, clip: float) -> PyTree:
  """Every parameter clipped to [-clip, clip] (Arjovsky et al. 2017, alg. 1)."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)


def consensus_gradients(losses: Callable[[PyTree], tuple[Array, Array, Any]],
                        params: dict[str, PyTree], gamma: float
                        ) -> tuple[dict[str, PyTree], dict[str, Array], Any]:
  """Consensus optimization (Mescheder et al. 2017, algorithm 2).

  `losses(params) -> (generator_loss, discriminator_loss, aux)` with params
  {"generator": ..., "discriminator": ...}. The joint gradient field is
  v = (∇_G L_G, ∇_D L_D); with L = ½‖v‖² each player descends its own loss
  plus γ L: the update direction is v + γ ∇L, both parts of ∇L taken through
  both players' parameters (a Hessian-vector product, ∇L = (∂v)ᵀ v).
  Returns (directions per player, {"consensus": L, "generator_loss": ...,
  "discriminator_loss": ...}, aux of the losses at params). The caller averages
  the directions over devices (`mean_over_devices`), as for any gradient.
  """

  def field(p):
    def both(p):
      loss_g, loss_d, aux = losses(p)
      return (loss_g, loss_d), aux

    (loss_g, loss_d), pullback, aux = jax.vjp(both, p, has_aux=True)
    one, zero = jnp.ones_like(loss_g), jnp.zeros_like(loss_g)
    grad_g = pullback((one, zero))[0]["generator"]
    grad_d = pullback((zero, one))[0]["discriminator"]
    # The field of the *global* batch, with gradients through the local part
    # only: after the caller's `mean_over_devices` the directions are exact.
    v = jax.tree.map(lambda g: g + jax.lax.stop_gradient(
        collectives.mean_over_devices(g) - g),
        {"generator": grad_g, "discriminator": grad_d})
    return v, (loss_g, loss_d, aux)

  def half_squared_norm(p):
    v, extra = field(p)
    return 0.5 * optax.tree.norm(v, squared=True), (v, extra)

  (consensus, (v, (loss_g, loss_d, aux))), grad_l = jax.value_and_grad(
      half_squared_norm, has_aux=True)(params)
  directions = jax.tree.map(lambda a, b: a + gamma * b, v, grad_l)
  metrics = {"consensus": consensus, "generator_loss": loss_g,
             "discriminator_loss": loss_d}
  return directions, metrics, aux
