"""GAN objectives as keyword-only pure functions of discriminator outputs.

Every function returns per-example values (the train step takes the mean); the
discriminator's and the generator's losses are both written to be *minimized*.
`real_*` and `fake_*` are [B] arrays: logits for the cross-entropy objectives,
unbounded scores for LSGAN, WGAN and hinge, energies for EBGAN and BEGAN,
variational-function outputs V for f-GAN.

  d = losses.minimax_discriminator(real=d_real, fake=d_fake)
  g = losses.non_saturating_generator(fake=d_fake)
  gp = losses.gradient_penalty(critic=lambda x: D(x), x=x_hat)   # [B]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from jaxgen.errors import ConfigError, choices

Array = jax.Array


def _same_shape(**arrays: Array) -> None:
  chex.assert_equal_shape(list(arrays.values()))
  chex.assert_rank(list(arrays.values()), 1)


# ------------------------------------------------------ cross-entropy games
def sigmoid_cross_entropy(*, logits: Array, targets: Array | float) -> Array:
  """-t log σ(l) - (1 - t) log(1 - σ(l)), stable for any logit: [B] -> [B]."""
  targets = jnp.broadcast_to(jnp.asarray(targets, logits.dtype), logits.shape)
  return targets * jax.nn.softplus(-logits) + (1.0 - targets) * jax.nn.softplus(logits)


def minimax_discriminator(*, real: Array, fake: Array,
                          real_target: float = 1.0) -> Array:
  """-log D(x) - log(1 - D(G(z))) (Goodfellow et al. 2014, eq. 1), D = σ(logit).

  `real_target` < 1 is one-sided label smoothing (Salimans et al. 2016): the
  real examples' cross-entropy target becomes real_target, the fakes' stays 0.
  """
  _same_shape(real=real, fake=fake)
  return (sigmoid_cross_entropy(logits=real, targets=real_target)
          + sigmoid_cross_entropy(logits=fake, targets=0.0))


def minimax_generator(*, fake: Array) -> Array:
  """log(1 - D(G(z))): the saturating generator loss of the minimax game."""
  chex.assert_rank(fake, 1)
  return -jax.nn.softplus(fake)


def non_saturating_generator(*, fake: Array) -> Array:
  """-log D(G(z)) (Goodfellow et al. 2014, section 3): strong early gradients."""
  chex.assert_rank(fake, 1)
  return jax.nn.softplus(-fake)


# ------------------------------------------------------------------- LSGAN
def lsgan_discriminator(*, real: Array, fake: Array, a: float = 0.0,
                        b: float = 1.0) -> Array:
  """½(D(x) - b)² + ½(D(G(z)) - a)² (Mao et al. 2017, eq. 2; a-b-c = 0-1-1)."""
  _same_shape(real=real, fake=fake)
  return 0.5 * (real - b) ** 2 + 0.5 * (fake - a) ** 2


def lsgan_generator(*, fake: Array, c: float = 1.0) -> Array:
  """½(D(G(z)) - c)² (Mao et al. 2017, eq. 2)."""
  chex.assert_rank(fake, 1)
  return 0.5 * (fake - c) ** 2


# -------------------------------------------------------- WGAN and hinge
def wasserstein_critic(*, real: Array, fake: Array) -> Array:
  """D(G(z)) - D(x): the negative of the Kantorovich-Rubinstein estimate."""
  _same_shape(real=real, fake=fake)
  return fake - real


def wasserstein_generator(*, fake: Array) -> Array:
  """-D(G(z)) (Arjovsky et al. 2017, algorithm 1); also hinge's generator loss."""
  chex.assert_rank(fake, 1)
  return -fake


def wasserstein_critic_drift(*, real: Array, fake: Array, drift: float) -> Array:
  """D(G(z)) - D(x) + ε_drift D(x)² (Karras et al. 2018, appendix A.1).

  The drift term keeps the critic's output near zero, so that it cannot drift
  far from the origin (WGAN-GP alone leaves its offset free).
  """
  _same_shape(real=real, fake=fake)
  return fake - real + drift * real * real


def hinge_discriminator(*, real: Array, fake: Array) -> Array:
  """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018)."""
  _same_shape(real=real, fake=fake)
  return jax.nn.relu(1.0 - real) + jax.nn.relu(1.0 + fake)


def hinge_generator(*, fake: Array) -> Array:
  """-D(G(z)) (Miyato et al. 2018, eq. 17)."""
  return wasserstein_generator(fake=fake)


# ---------------------------------------------------- energy-based games
def reconstruction_energy(*, x: Array, reconstruction: Array, power: float = 2.0) -> Array:
  """mean |x - D(x)|^power over an example's values: [B, ...] -> [B].

  power=2 is EBGAN's mean squared error (Zhao et al. 2017), power=1 BEGAN's
  L1 loss with η = 1 (Berthelot et al. 2017, eq. 1), both per value.
  """
  chex.assert_equal_shape([x, reconstruction])
  diff = jnp.abs(x - reconstruction).reshape(x.shape[0], -1)
  return jnp.mean(diff**power, axis=-1)


def ebgan_discriminator(*, real: Array, fake: Array,
                        margin: float) -> Array:
  """D(x) + max(0, m - D(G(z))) (Zhao et al. 2017, eq. 1)."""
  _same_shape(real=real, fake=fake)
  return real + jax.nn.relu(margin - fake)


def ebgan_generator(*, fake: Array) -> Array:
  """D(G(z)) (Zhao et al. 2017, eq. 2), before the pull-away term."""
  chex.assert_rank(fake, 1)
  return fake


def pull_away_term(*, codes: Array) -> Array:
  """Per example i: mean over j ≠ i of cos²(S_i, S_j) (Zhao et al. 2017, eq. 7).

  codes: [B, d] encoder outputs of a batch of generated samples. The mean of
  the result over the batch is f_PT(S) = Σ_{i≠j} cos² / (B (B - 1)). The term
  couples the examples of a batch (it measures their diversity).
  """
  chex.assert_rank(codes, 2)
  b = codes.shape[0]
  if b < 2:
    raise ValueError(f"pull_away_term needs at least two codes, got {b}")
  unit = codes * jax.lax.rsqrt(jnp.sum(codes * codes, -1, keepdims=True) + 1e-12)
  cos2 = (unit @ unit.T) ** 2
  return (jnp.sum(cos2, axis=1) - jnp.diagonal(cos2)) / (b - 1)


def began_discriminator(*, real: Array, fake: Array, k: Array | float) -> Array:
  """L(x) - k_t L(G(z)) (Berthelot et al. 2017, eq. 4); L the L1 energies."""
  _same_shape(real=real, fake=fake)
  return real - k * fake


def began_generator(*, fake: Array) -> Array:
  """L(G(z)) (Berthelot et al. 2017, eq. 4)."""
  chex.assert_rank(fake, 1)
  return fake


def began_controller(*, k: Array, real_loss: Array, fake_loss: Array, gamma: float,
                     lambda_k: float) -> tuple[Array, Array]:
  """(k_{t+1}, M_global) from batch means of L(x) and L(G(z)).

  k_{t+1} = clip(k_t + λ_k (γ L(x) - L(G(z))), 0, 1) (eq. 4) and the
  convergence measure M = L(x) + |γ L(x) - L(G(z))| (section 3.4.1).
  """
  balance = gamma * real_loss - fake_loss
  return jnp.clip(k + lambda_k * balance, 0.0, 1.0), real_loss + jnp.abs(balance)


# --------------------------------------------------------------- penalties
def input_gradients(critic: Callable[[Array], Array], x: Array) -> Array:
  """∂ critic(x)_i / ∂ x_i for every example i: [B, ...] -> [B, ...].

  Exact per-example gradients when the critic's output for example i depends
  on x_i alone (no batch normalization, minibatch features or other coupling
  in the critic); the step refuses such combinations.
  """
  return jax.grad(lambda x: jnp.sum(critic(x)))(x)


def gradient_norm(gradients: Array) -> Array:
  """‖g_i‖₂ over all non-batch dimensions: [B, ...] -> [B] (finite slope at 0)."""
  squared = jnp.sum(gradients.reshape(gradients.shape[0], -1) ** 2, axis=-1)
  return jnp.sqrt(squared + 1e-12)


def gradient_penalty(*, critic: Callable[[Array], Array], x: Array,
                     target: float = 1.0) -> Array:
  """(‖∇_x D(x)‖₂ - target)² per example (Gulrajani et al. 2017, eq. 3).

  `x` holds the points where the gradient is taken (WGAN-GP: random
  interpolates of real and fake examples; DRAGAN: perturbed real examples).
  The norm runs over *all* non-batch dimensions of an example.
  """
  return (gradient_norm(input_gradients(critic, x)) - target) ** 2


def interpolates(*, real: Array, fake: Array, eps: Array) -> Array:
  """ε x + (1 - ε) x̃ with one ε ~ U[0, 1] per example (eps: [B])."""
  chex.assert_equal_shape([real, fake])
  eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def dragan_points(*, real: Array, std: Array, perturbation: Array,
                  alpha: Array) -> Array:
  """x + α (x_p - x) with x_p = x + 0.5 std(x) u, u ~ U[0, 1) per value.

  As in the DRAGAN reference code (Kodali et al. 2017): perturbations scaled
  by half the batch's standard deviation, the penalty taken at a random point
  (alpha: [B], U[0, 1)) between x and its perturbation.
  """
  chex.assert_equal_shape([real, perturbation])
  alpha = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
  return real + alpha * (0.5 * std * perturbation)


def r1_penalty(*, critic: Callable[[Array], Array], x: Array, gamma: float) -> Array:
  """γ/2 ‖∇_x D(x)‖² at real examples (Mescheder et al. 2018, eq. 9): [B]."""
  grads = input_gradients(critic, x)
  return 0.5 * gamma * jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


def softmax_cross_entropy(*, logits: Array, labels: Array) -> Array:
  """-log softmax(logits)[label]: logits [B, C], labels int [B] -> [B] (optax's)."""
  chex.assert_rank(logits, 2)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32))


# ------------------------------------------------------------------ f-GAN
def wright_omega(a: Array) -> Array:
  """ω(a) = W(e^a), the solution w of w + log w = a (Lambert W of e^a).

  Computed in log space so that e^a never overflows; Newton's method from a
  guess that is exact asymptotically on both sides. dω/da = ω / (1 + ω).
  """
  return _wright_omega(jnp.asarray(a, jnp.result_type(a, jnp.float32)))


@jax.custom_jvp
def _wright_omega(a: Array) -> Array:
  big = a > 1.0
  safe = jnp.where(big, a, 2.0)
  w = jnp.where(big, safe - jnp.log(safe), jnp.exp(jnp.minimum(a, 1.0)))
  for _ in range(8):  # quadratic convergence: 8 steps reach float precision
    w = w - (w + jnp.log(w) - a) * w / (1.0 + w)
    w = jnp.maximum(w, jnp.finfo(w.dtype).tiny)
  return w


@_wright_omega.defjvp
def _wright_omega_jvp(primals, tangents):
  (a,), (da,) = primals, tangents
  w = _wright_omega(a)
  return w, da * w / (1.0 + w)


class Divergence(NamedTuple):
  """One f-divergence of Nowozin et al. 2016 (tables 1 and 2).

  f: the generator function, f(1) = 0; f_prime: its derivative; activation:
  the output activation g_f that maps V ∈ ℝ into dom f*; conjugate: f*(t);
  conjugate_of_activation: f*(g_f(v)) in a numerically stable form. The
  optimal critic is T*(x) = f'(p(x) / q(x)).
  """

  name: str
  f: Callable[[Array], Array]
  f_prime: Callable[[Array], Array]
  activation: Callable[[Array], Array]
  conjugate: Callable[[Array], Array]
  conjugate_of_activation: Callable[[Array], Array]


LOG2 = math.log(2.0)


def _alpha_divergence(alpha: float) -> Divergence:
  """The α-divergence, α ∉ {0, 1} (Nowozin et al. 2016, table 6)."""
  if alpha in (0.0, 1.0) or not math.isfinite(alpha):
    raise ConfigError(f"model.alpha must be finite and not 0 or 1 (the limits are "
                      f"KL divergences), got {alpha}")
  a = alpha
  power = a / (a - 1.0)

  def f(u):
    return (u**a - 1.0 - a * (u - 1.0)) / (a * (a - 1.0))

  def f_prime(u):
    return (u ** (a - 1.0) - 1.0) / (a - 1.0)

  def conjugate(t):
    # f*(t) = sup_u ut - f(u); below t = -1/(α-1) (α > 1) the sup is at u = 0.
    base = t * (a - 1.0) + 1.0
    if a > 1.0:
      base = jnp.maximum(base, 0.0)
    return base**power / a - 1.0 / a

  if a < 1.0:
    def activation(v):
      return 1.0 / (1.0 - a) - jax.nn.softplus(-v)

    def conjugate_of_activation(v):
      # t(α - 1) + 1 = (1 - α) softplus(-v) > 0.
      return ((1.0 - a) * jax.nn.softplus(-v)) ** power / a - 1.0 / a
  else:
    def activation(v):
      return v

    conjugate_of_activation = conjugate
  return Divergence(f"alpha({alpha:g})", f, f_prime, activation, conjugate,
                    conjugate_of_activation)


def _jeffrey_conjugate(t):
  w = wright_omega(1.0 - t)  # W(e^{1 - t})
  return w + 1.0 / w + t - 2.0


_DIVERGENCES = {
    "total_variation": Divergence(
        "total_variation",
        f=lambda u: 0.5 * jnp.abs(u - 1.0),
        f_prime=lambda u: 0.5 * jnp.sign(u - 1.0),
        activation=lambda v: 0.5 * jnp.tanh(v),
        conjugate=lambda t: t,
        conjugate_of_activation=lambda v: 0.5 * jnp.tanh(v)),
    "kl": Divergence(
        "kl",
        f=lambda u: u * jnp.log(u),
        f_prime=lambda u: 1.0 + jnp.log(u),
        activation=lambda v: v,
        conjugate=lambda t: jnp.exp(t - 1.0),
        conjugate_of_activation=lambda v: jnp.exp(v - 1.0)),
    "reverse_kl": Divergence(
        "reverse_kl",
        f=lambda u: -jnp.log(u),
        f_prime=lambda u: -1.0 / u,
        activation=lambda v: -jnp.exp(-v),
        conjugate=lambda t: -1.0 - jnp.log(-t),
        conjugate_of_activation=lambda v: v - 1.0),
    "pearson": Divergence(
        "pearson",
        f=lambda u: (u - 1.0) ** 2,
        f_prime=lambda u: 2.0 * (u - 1.0),
        activation=lambda v: v,
        conjugate=lambda t: 0.25 * t * t + t,
        conjugate_of_activation=lambda v: 0.25 * v * v + v),
    "neyman": Divergence(
        "neyman",
        f=lambda u: (1.0 - u) ** 2 / u,
        f_prime=lambda u: 1.0 - 1.0 / (u * u),
        activation=lambda v: 1.0 - jnp.exp(-v),
        conjugate=lambda t: 2.0 - 2.0 * jnp.sqrt(1.0 - t),
        conjugate_of_activation=lambda v: 2.0 - 2.0 * jnp.exp(-0.5 * v)),
    "squared_hellinger": Divergence(
        "squared_hellinger",
        f=lambda u: (jnp.sqrt(u) - 1.0) ** 2,
        f_prime=lambda u: 1.0 - 1.0 / jnp.sqrt(u),
        activation=lambda v: 1.0 - jnp.exp(-v),
        conjugate=lambda t: t / (1.0 - t),
        conjugate_of_activation=lambda v: jnp.expm1(v)),
    "jeffrey": Divergence(
        "jeffrey",
        f=lambda u: (u - 1.0) * jnp.log(u),
        f_prime=lambda u: jnp.log(u) + 1.0 - 1.0 / u,
        activation=lambda v: v,
        conjugate=_jeffrey_conjugate,
        conjugate_of_activation=_jeffrey_conjugate),
    "jensen_shannon": Divergence(
        "jensen_shannon",
        f=lambda u: -(u + 1.0) * jnp.log((1.0 + u) / 2.0) + u * jnp.log(u),
        f_prime=lambda u: jnp.log(2.0 * u / (1.0 + u)),
        activation=lambda v: LOG2 - jax.nn.softplus(-v),
        conjugate=lambda t: -jnp.log(2.0 - jnp.exp(t)),
        conjugate_of_activation=lambda v: jax.nn.softplus(v) - LOG2),
    "gan": Divergence(
        "gan",
        f=lambda u: u * jnp.log(u) - (u + 1.0) * jnp.log(u + 1.0),
        f_prime=lambda u: jnp.log(u / (u + 1.0)),
        activation=lambda v: -jax.nn.softplus(-v),
        conjugate=lambda t: -jnp.log1p(-jnp.exp(t)),
        conjugate_of_activation=lambda v: jax.nn.softplus(v)),
}
DIVERGENCES = tuple(_DIVERGENCES) + ("alpha",)
FGAN_GENERATOR = ("saddle", "alternative")


def divergence(name: str, alpha: float = 0.5) -> Divergence:
  """The f-divergence `name` (one of DIVERGENCES); `alpha` for 'alpha'."""
  if name == "alpha":
    return _alpha_divergence(float(alpha))
  if name not in _DIVERGENCES:
    raise ConfigError(f"model.divergence={name!r} is not one of {choices(DIVERGENCES)}")
  return _DIVERGENCES[name]


def _as_divergence(value: str | Divergence, alpha: float) -> Divergence:
  """A Divergence given itself or its name (resolved at trace time: plain Python)."""
  return value if isinstance(value, Divergence) else divergence(value, alpha)


def fgan_discriminator(*, real: Array, fake: Array, divergence: str | Divergence,
                       alpha: float = 0.5) -> Array:
  """-(g_f(V(x)) - f*(g_f(V(G(z))))): minus the variational bound F (eq. 6).

  `divergence`: a `Divergence` or its name in DIVERGENCES (`alpha` for 'alpha').
  """
  _same_shape(real=real, fake=fake)
  div = _as_divergence(divergence, alpha)
  return div.conjugate_of_activation(fake) - div.activation(real)


def fgan_generator(*, fake: Array, divergence: str | Divergence, alpha: float = 0.5,
                   fgan_generator: str = "saddle") -> Array:
  """The generator's part of F, to minimize.

  fgan_generator='saddle': -f*(g_f(V(G(z)))), the saddle-point objective F
  itself; 'alternative': -g_f(V(G(z))), the non-saturating variant Nowozin
  et al. 2016 (section 3.2) propose for faster training, as Goodfellow et al.
  did. (The keyword is named after its config key, `model.fgan_generator`.)
  """
  chex.assert_rank(fake, 1)
  div = _as_divergence(divergence, alpha)
  if fgan_generator == "saddle":
    return -div.conjugate_of_activation(fake)
  if fgan_generator == "alternative":
    return -div.activation(fake)
  raise ConfigError(f"model.fgan_generator={fgan_generator!r} is not one of "
                    f"{choices(FGAN_GENERATOR)}")
