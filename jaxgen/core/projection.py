"""Projection onto a generator (Zhu et al. 2016, iGAN): find z with G(z) ≈ x.

A family whose method has a generator builds `Method.project` from this
module, given its `decode` (a pure function of codes):

  z, reconstructions, losses = method.project(state, images, key, steps=200,
                                              restarts=4)

`project` minimises, per image, the reconstruction loss

  L(z) = mean_pixels (G(z) - x)² + λ_f · mean_k (F(G(z))_k - F(x)_k)² + λ_p · mean_j z_j² / 2

(pixel MSE, an optional feature loss through a fixed network F — the digit
LeNet of `jaxgen.metrics.lenet` — and an optional prior term) with Adam
(optax), from `restarts` starting codes per image, and keeps the best final
code per image. The whole optimisation is one program: a `lax.scan` over the
steps around a `vmap` over the restarts; every code moves on its own (the
objective is a sum of per-image losses and Adam is elementwise), so an
image's result does not depend on the other images of the call.

Starting codes: restart r of image i draws z ~ N(0, I) from
`fold_in(fold_in(key, r), i)`, so the first r restarts of a call with more
restarts are the restarts of a call with r of them: more restarts are never
worse. With `init=` (an encoder's codes, `encoder_apply`), restart 0 starts
there instead; the others are unchanged.

The encoder of the initialisation, E(x) ≈ z, is trained on the generator's
own samples (z ~ p(z), x = G(z)) with the per-example loss `encoder_loss`;
the host loop that trains it is `jaxgen.train_encoder` (jaxgen/projection.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen.errors import ConfigError
from jaxgen.nn.mlp import MLP

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class ProjectionOptions:
  """How `project` optimises; checked once, at the boundary (`options`)."""

  steps: int = 200               # Adam steps per restart (0: the starting codes)
  restarts: int = 4              # starting codes per image; the best is kept
  learning_rate: float = 0.05    # Adam's step size, constant
  feature_weight: float = 0.0    # λ_f, the feature loss's weight (needs features=)
  prior_weight: float = 0.0      # λ_p, pulls z towards the prior's mode

  def __post_init__(self):
    if not isinstance(self.steps, int) or self.steps < 0:
      raise ConfigError(f"projection steps must be an integer >= 0, got {self.steps!r}")
    if not isinstance(self.restarts, int) or self.restarts < 1:
      raise ConfigError(f"projection restarts must be an integer >= 1, got "
                        f"{self.restarts!r}")
    if not self.learning_rate > 0:
      raise ConfigError(f"projection learning_rate must be > 0, got {self.learning_rate!r}")
    for name in ("feature_weight", "prior_weight"):
      if not getattr(self, name) >= 0:
        raise ConfigError(f"projection {name} must be >= 0, got {getattr(self, name)!r}")


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(ProjectionOptions))


def options(**values: Any) -> ProjectionOptions:
  """ProjectionOptions from keyword arguments; one-line error for unknown names."""
  unknown = sorted(set(values) - set(OPTION_NAMES))
  if unknown:
    raise ConfigError(f"unknown projection option(s) {unknown}; valid: {list(OPTION_NAMES)}")
  return ProjectionOptions(**values)


def reconstruction_loss(*, x: Array, reconstruction: Array, z: Array,
                        features_x: Array | None = None,
                        features_reconstruction: Array | None = None,
                        feature_weight: float = 0.0,
                        prior_weight: float = 0.0) -> dict[str, Array]:
  """Per-example projection loss and its terms, each [N].

  x, reconstruction: [N, ...]; z: [N, latent_dim]; features: [N, K] or None.
  total = pixel + feature_weight · feature + prior_weight · prior, where pixel
  is the mean squared error over the values of an example, feature the mean
  squared error over the K features and prior = mean_j z_j² / 2.
  """
  if x.shape != reconstruction.shape:
    raise ValueError(f"x {x.shape} and reconstruction {reconstruction.shape} differ")
  axes = tuple(range(1, x.ndim))
  terms = {"pixel": jnp.mean(jnp.square(reconstruction - x), axis=axes),
           "prior": 0.5 * jnp.mean(jnp.square(z), axis=-1)}
  total = terms["pixel"] + prior_weight * terms["prior"]
  if features_x is not None:
    terms["feature"] = jnp.mean(jnp.square(features_reconstruction - features_x), axis=-1)
    total = total + feature_weight * terms["feature"]
  terms["total"] = total
  return terms


def starting_codes(key: Array, restarts: int, num: int, latent_dim: int) -> Array:
  """z ~ N(0, I) [restarts, num, latent_dim]; restart r of image i from
  fold_in(fold_in(key, r), i), so no code depends on `restarts` or `num`."""
  def one(r, i):
    return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, r), i),
                             (latent_dim,))
  rows = jnp.arange(restarts)[:, None]
  cols = jnp.arange(num)[None, :]
  return jax.vmap(jax.vmap(one))(jnp.broadcast_to(rows, (restarts, num)),
                                 jnp.broadcast_to(cols, (restarts, num)))


def project(decode: Callable[[Array], Array], latent_dim: int, images: Array, key: Array,
            *, init: Array | None = None,
            features: Callable[[Array], Array] | None = None,
            **option_values: Any) -> tuple[Array, Array, dict[str, Array]]:
  """Codes whose decodings reconstruct `images`: (z [N, d], G(z) [N, ...], losses).

  decode: codes [M, d] -> images [M, ...] (pure; the trained generator).
  images: [N, ...] in the data range. init: [N, d] starting codes of restart 0
  (an encoder's). features: images [M, ...] -> [M, K] for the feature loss.
  option_values: `ProjectionOptions` fields (steps, restarts, learning_rate,
  feature_weight, prior_weight).

  losses (per image): "total", "pixel", "prior" (and "feature") [N] of the kept
  code; "per_restart" [restarts, N], each restart's final total; "curve"
  [steps + 1, N], the best total over restarts after t steps (what a call with
  steps=t reports, as the step size is constant); "history" [steps + 1,
  restarts, N], every restart's total after t steps (its first r restarts are
  what a call with restarts=r optimises).
  """
  opts = options(**option_values)
  if opts.feature_weight > 0 and features is None:
    raise ConfigError("feature_weight > 0 needs a feature network (features=)")
  images = jnp.asarray(images, jnp.float32)
  num = images.shape[0]
  z0 = starting_codes(key, opts.restarts, num, latent_dim)
  if init is not None:
    init = jnp.asarray(init, jnp.float32)
    if init.shape != (num, latent_dim):
      raise ConfigError(f"init codes must have shape {[num, latent_dim]}, got "
                        f"{list(init.shape)}")
    z0 = z0.at[0].set(init)
  features_x = None
  if features is not None:
    features_x = jax.lax.stop_gradient(features(images))

  def terms(z):                       # one restart: z [N, d] -> (terms, reconstruction)
    reconstruction = decode(z)
    return reconstruction_loss(
        x=images, reconstruction=reconstruction, z=z, features_x=features_x,
        features_reconstruction=None if features is None else features(reconstruction),
        feature_weight=opts.feature_weight, prior_weight=opts.prior_weight), reconstruction

  def objective(z):                   # [R, N, d] -> (sum of per-image totals, [R, N])
    totals = jax.vmap(lambda zr: terms(zr)[0]["total"])(z)
    return jnp.sum(totals), totals

  optimizer = optax.adam(opts.learning_rate)

  def step(carry, _):
    z, opt_state = carry
    (_, totals), grads = jax.value_and_grad(objective, has_aux=True)(z)
    updates, opt_state = optimizer.update(grads, opt_state, z)
    return (optax.apply_updates(z, updates), opt_state), totals

  (z, _), history = jax.lax.scan(step, (z0, optimizer.init(z0)), None, length=opts.steps)
  final, reconstructions = jax.vmap(terms)(z)          # each restart's final terms
  history = jnp.concatenate([history, final["total"][None]], axis=0)
  best = jnp.argmin(final["total"], axis=0)            # [N]

  def pick(a):                                         # [R, N, ...] -> [N, ...]
    return jnp.take_along_axis(a, best.reshape((1, num) + (1,) * (a.ndim - 2)), axis=0)[0]

  losses = {name: pick(value) for name, value in final.items()}
  losses["per_restart"] = final["total"]
  losses["curve"] = jnp.min(history, axis=1)
  losses["history"] = history
  return pick(z), pick(reconstructions), losses


# ----------------------------------------------------------- the encoder
class LatentEncoder(nn.Module):
  """E(x) ≈ z for the projection's initialisation: flattened x -> MLP -> [N, d]."""

  latent_dim: int
  hidden: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = x.reshape(x.shape[0], -1)
    return MLP(tuple(self.hidden) + (self.latent_dim,), activation=nn.relu)(x)


def encoder_loss(*, z: Array, z_hat: Array) -> Array:
  """Per-example ||E(G(z)) − z||² / d: [N, d] codes -> [N]."""
  return jnp.mean(jnp.square(z_hat - z), axis=-1)


def encoder_train_step(module: LatentEncoder, decode: Callable[[Array], Array],
                       optimizer: optax.GradientTransformation, params, opt_state,
                       key: Array, batch_size: int):
  """One step of E on fresh generator samples: (params, opt_state, loss)."""
  z = jax.random.normal(key, (batch_size, module.latent_dim))
  x = jax.lax.stop_gradient(decode(z))

  def loss_fn(p):
    return jnp.mean(encoder_loss(z=z, z_hat=module.apply({"params": p}, x)))

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss
