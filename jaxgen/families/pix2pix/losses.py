"""pix2pix's objectives as per-example pure functions (Isola et al. 2017, eq. 1-4).

The discriminator outputs one logit per patch, [B, h, w(, 1)]; every loss
averages over patches (and pixels), never over the batch: the step does that.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

Array = jax.Array


def _per_example_mean(values: Array) -> Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def l1_loss(*, output: Array, target: Array) -> Array:
  """L_L1 = E ||y - G(x, z)||_1 (eq. 3), per example: the mean absolute error [B]."""
  chex.assert_equal_shape([output, target])
  return _per_example_mean(jnp.abs(output - target))


def discriminator_loss(*, real_logits: Array, fake_logits: Array) -> Array:
  """−(log D(x, y) + log(1 − D(x, G(x)))) / 2 per example, averaged over patches [B].

  Halved as in the paper ("we divide the objective by 2 while optimizing D").
  """
  chex.assert_equal_shape([real_logits, fake_logits])
  per_patch = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
  return 0.5 * _per_example_mean(per_patch)


def generator_adversarial_loss(*, fake_logits: Array) -> Array:
  """The non-saturating −log D(x, G(x)), averaged over patches, per example [B]."""
  return _per_example_mean(jax.nn.softplus(-fake_logits))


def generator_loss(*, fake_logits: Array | None, output: Array, target: Array,
                   l1_weight: float, adversarial_weight: float
                   ) -> tuple[Array, dict[str, Array]]:
  """adversarial_weight · L_cGAN + λ · L_L1 per example [B] (eq. 4), and its two terms.

  `fake_logits` may be None when adversarial_weight is 0 (the L1-only ablation).
  """
  l1 = l1_loss(output=output, target=target)
  if adversarial_weight:
    adversarial = generator_adversarial_loss(fake_logits=fake_logits)
  else:
    adversarial = jnp.zeros_like(l1)
  return adversarial_weight * adversarial + l1_weight * l1, {"l1": l1,
                                                             "adversarial": adversarial}
