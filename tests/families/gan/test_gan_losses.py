"""GAN objectives against their formulas, optimal discriminators, f-GAN conjugates."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special

from jaxgen.errors import ConfigError
from jaxgen.families.gan import losses

REAL = np.array([-3.0, -0.5, 0.0, 0.7, 4.0], np.float32)
FAKE = np.array([2.0, -1.5, 0.3, -4.0, 0.0], np.float32)


def close(a, b, **kw):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=kw.get("rtol", 1e-5),
                             atol=kw.get("atol", 1e-6))


def test_cross_entropy_objectives_match_their_formulas():
  d_real, d_fake = 1 / (1 + np.exp(-REAL)), 1 / (1 + np.exp(-FAKE))
  close(losses.minimax_discriminator(real=REAL, fake=FAKE),
        -np.log(d_real) - np.log(1 - d_fake))
  close(losses.minimax_generator(fake=FAKE), np.log(1 - d_fake))
  close(losses.non_saturating_generator(fake=FAKE), -np.log(d_fake))
  # Smoothed real targets: -0.9 log D(x) - 0.1 log(1 - D(x)) - log(1 - D(G(z))).
  close(losses.minimax_discriminator(real=REAL, fake=FAKE, real_target=0.9),
        -0.9 * np.log(d_real) - 0.1 * np.log(1 - d_real) - np.log(1 - d_fake))
  # Stable far in the tails, where σ rounds to 0 or 1.
  big = np.array([-200.0, 200.0], np.float32)
  close(losses.minimax_discriminator(real=big, fake=-big), [400.0, 0.0])
  close(losses.non_saturating_generator(fake=big), [200.0, 0.0])


def test_score_objectives_match_their_formulas():
  close(losses.lsgan_discriminator(real=REAL, fake=FAKE),
        0.5 * (REAL - 1) ** 2 + 0.5 * FAKE**2)
  close(losses.lsgan_discriminator(real=REAL, fake=FAKE, a=-1, b=1),
        0.5 * (REAL - 1) ** 2 + 0.5 * (FAKE + 1) ** 2)
  close(losses.lsgan_generator(fake=FAKE), 0.5 * (FAKE - 1) ** 2)
  close(losses.wasserstein_critic(real=REAL, fake=FAKE), FAKE - REAL)
  close(losses.wasserstein_generator(fake=FAKE), -FAKE)
  close(losses.hinge_discriminator(real=REAL, fake=FAKE),
        np.maximum(0, 1 - REAL) + np.maximum(0, 1 + FAKE))
  close(losses.hinge_generator(fake=FAKE), -FAKE)


def test_energy_objectives_match_their_formulas():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
  recon = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
  mse = ((x - recon) ** 2).reshape(3, -1).mean(-1)
  l1 = np.abs(x - recon).reshape(3, -1).mean(-1)
  close(losses.reconstruction_energy(x=x, reconstruction=recon), mse)
  close(losses.reconstruction_energy(x=x, reconstruction=recon, power=1.0), l1)
  e_real, e_fake = np.abs(REAL), np.abs(FAKE)
  close(losses.ebgan_discriminator(real=e_real, fake=e_fake, margin=1.5),
        e_real + np.maximum(0, 1.5 - e_fake))
  close(losses.ebgan_generator(fake=e_fake), e_fake)
  close(losses.began_discriminator(real=e_real, fake=e_fake, k=0.3),
        e_real - 0.3 * e_fake)
  close(losses.began_generator(fake=e_fake), e_fake)
  k, m = losses.began_controller(k=jnp.float32(0.5), real_loss=jnp.float32(0.4),
                                 fake_loss=jnp.float32(0.1), gamma=0.5, lambda_k=0.1)
  close(k, 0.5 + 0.1 * (0.5 * 0.4 - 0.1))
  close(m, 0.4 + abs(0.5 * 0.4 - 0.1))
  k, _ = losses.began_controller(k=jnp.float32(0.999), real_loss=jnp.float32(10.0),
                                 fake_loss=jnp.float32(0.0), gamma=1.0, lambda_k=1.0)
  assert float(k) == 1.0  # clipped to [0, 1]


def test_pull_away_term_matches_the_double_sum():
  codes = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
  per_example = np.asarray(losses.pull_away_term(codes=codes))
  n = len(codes)
  unit = codes / np.linalg.norm(codes, axis=1, keepdims=True)
  expected = [sum((unit[i] @ unit[j]) ** 2 for j in range(n) if j != i) / (n - 1)
              for i in range(n)]
  close(per_example, expected)
  total = sum((unit[i] @ unit[j]) ** 2 for i in range(n) for j in range(n) if i != j)
  close(per_example.mean(), total / (n * (n - 1)))  # Zhao et al. eq. 7
  # Orthogonal codes are maximally spread: the term vanishes.
  close(losses.pull_away_term(codes=np.eye(3, dtype=np.float32)), np.zeros(3))


def critic_params(din):
  key = jax.random.PRNGKey(0)
  k1, k2 = jax.random.split(key)
  return {"w1": jax.random.normal(k1, (din, 6)), "w2": jax.random.normal(k2, (6,))}


def critic_fn(params, x):
  """A nonlinear per-example critic on [B, ...] inputs."""
  h = jnp.tanh(x.reshape(x.shape[0], -1) @ params["w1"])
  return h @ params["w2"] + 0.1 * jnp.sum(x.reshape(x.shape[0], -1) ** 3, -1)


def test_gradient_penalty_matches_a_manual_per_example_gradient():
  # Image-shaped points: the norm must run over H, W and C, not one axis.
  x = jax.random.normal(jax.random.PRNGKey(3), (4, 3, 2, 2))
  params = critic_params(12)
  critic = lambda p: critic_fn(params, p)  # noqa: E731
  penalty = losses.gradient_penalty(critic=critic, x=x)
  for i in range(4):
    g = np.asarray(jax.grad(lambda xi: critic_fn(params, xi[None])[0])(x[i]))
    assert g.shape == (3, 2, 2)
    close(penalty[i], (np.sqrt(np.sum(g**2)) - 1.0) ** 2, rtol=1e-4)
  r1 = losses.r1_penalty(critic=critic, x=x, gamma=10.0)
  for i in range(4):
    g = np.asarray(jax.grad(lambda xi: critic_fn(params, xi[None])[0])(x[i]))
    close(r1[i], 5.0 * np.sum(g**2), rtol=1e-4)


def test_interpolates_and_dragan_points():
  real = jnp.ones((3, 2, 2))
  fake = jnp.zeros((3, 2, 2))
  eps = jnp.array([0.0, 0.25, 1.0])
  out = losses.interpolates(real=real, fake=fake, eps=eps)
  close(out, np.broadcast_to(np.array([0.0, 0.25, 1.0])[:, None, None], (3, 2, 2)))
  u = jnp.full((3, 2, 2), 0.5)
  points = losses.dragan_points(real=real, std=jnp.float32(2.0), perturbation=u,
                                alpha=jnp.array([0.0, 0.5, 1.0]))
  # x + α · 0.5 · std · u = 1 + α · 0.5
  close(points, np.broadcast_to(np.array([1.0, 1.25, 1.5])[:, None, None], (3, 2, 2)))


# ------------------------------------------------------- optimal discriminators
P_DATA = np.array([0.5, 0.3, 0.15, 0.05])
P_MODEL = np.array([0.1, 0.2, 0.3, 0.4])


def fit_table(loss_of_logits, steps=3000, lr=0.05):
  """Minimizes a discriminator loss over a table of one output per support point.

  The 'data' are the support points with weights p_data (real) and p_model
  (fake) — the exact expectations of the discrete problem.
  """
  def expected(v):
    real, fake = loss_of_logits(v)
    return jnp.sum(P_DATA * real) + jnp.sum(P_MODEL * fake)

  tx = optax.adam(lr)
  v = jnp.zeros(4)

  def body(carry, _):
    v, opt = carry
    g = jax.grad(expected)(v)
    updates, opt = tx.update(g, opt)
    return (optax.apply_updates(v, updates), opt), None

  (v, _), _ = jax.lax.scan(body, (v, tx.init(v)), None, length=steps)
  return np.asarray(v)


def test_minimax_discriminator_reaches_d_star():
  def parts(v):
    return (losses.sigmoid_cross_entropy(logits=v, targets=1.0),
            losses.sigmoid_cross_entropy(logits=v, targets=0.0))

  # The per-example minimax loss is exactly the sum of the two parts.
  close(losses.minimax_discriminator(real=REAL, fake=REAL),
        sum(parts(jnp.asarray(REAL))))

  v = fit_table(parts)
  d_star = P_DATA / (P_DATA + P_MODEL)  # Goodfellow et al. 2014, prop. 1
  close(jax.nn.sigmoid(v), d_star, atol=2e-3)


def test_smoothed_discriminator_reaches_its_optimum():
  def parts(v):
    return (losses.sigmoid_cross_entropy(logits=v, targets=0.9),
            losses.sigmoid_cross_entropy(logits=v, targets=0.0))

  v = fit_table(parts)
  # Salimans et al. 2016, 3.4: D*(x) = α p_data / (p_data + p_model).
  close(jax.nn.sigmoid(v), 0.9 * P_DATA / (P_DATA + P_MODEL), atol=2e-3)


def test_lsgan_discriminator_reaches_its_optimum():
  def parts(v):
    return 0.5 * (v - 1.0) ** 2, 0.5 * (v + 1.0) ** 2

  close(losses.lsgan_discriminator(real=REAL, fake=REAL, a=-1.0, b=1.0),
        sum(parts(jnp.asarray(REAL))))

  v = fit_table(parts)
  # Mao et al. 2017, eq. 4: D* = (b p_d + a p_g) / (p_d + p_g).
  close(v, (P_DATA - P_MODEL) / (P_DATA + P_MODEL), atol=2e-3)


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "pearson", "squared_hellinger",
                                  "jensen_shannon", "gan", "jeffrey", "neyman"])
def test_fgan_critic_reaches_f_prime_of_the_density_ratio(name):
  div = losses.divergence(name)

  def parts(v):
    return -div.activation(v), div.conjugate_of_activation(v)

  close(losses.fgan_discriminator(real=REAL, fake=REAL, divergence=div),
        sum(parts(jnp.asarray(REAL))), rtol=1e-4, atol=1e-5)

  v = fit_table(parts, steps=4000)
  ratio = P_DATA / P_MODEL
  # Nowozin et al. 2016, section 2.2: T*(x) = f'(p(x) / q(x)), and the bound
  # E_P[T*] - E_Q[f*(T*)] equals D_f(P || Q) there.
  close(div.activation(v), div.f_prime(ratio), rtol=3e-3, atol=3e-3)
  bound = np.sum(P_DATA * div.activation(v)) - np.sum(P_MODEL * div.conjugate_of_activation(v))
  close(bound, np.sum(P_MODEL * div.f(ratio)), rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------- f-GAN algebra
ALL_DIVERGENCES = [("total_variation", None), ("kl", None), ("reverse_kl", None),
                   ("pearson", None), ("neyman", None), ("squared_hellinger", None),
                   ("jeffrey", None), ("jensen_shannon", None), ("gan", None),
                   ("alpha", 0.5), ("alpha", -1.0), ("alpha", 2.0), ("alpha", 3.5)]


@pytest.mark.parametrize("name,alpha", ALL_DIVERGENCES)
def test_conjugate_identity_and_activation_for_every_divergence(name, alpha):
  div = losses.divergence(name, alpha if alpha is not None else 0.5)
  u = jnp.array([0.05, 0.2, 0.5, 0.9, 1.3, 2.0, 4.0, 9.0], jnp.float64
                if jax.config.jax_enable_x64 else jnp.float32)
  # f(1) = 0, except for the "GAN" divergence of the table: D = 2 JS - log 4.
  assert abs(float(div.f(jnp.float32(1.0))) + (math.log(4) if name == "gan" else 0)) < 1e-6
  # f*(f'(u)) = u f'(u) - f(u): the sup of ut - f(u) is attained at t = f'(u).
  close(div.conjugate(div.f_prime(u)), u * div.f_prime(u) - div.f(u), rtol=1e-4, atol=1e-5)
  # f* is the sup: ut - f(u) <= f*(t) for any other u.
  t = div.f_prime(u)
  grid = jnp.linspace(1e-3, 20.0, 4001)[:, None]
  assert np.all(np.asarray(grid * t[None] - div.f(grid)) <= np.asarray(div.conjugate(t)) + 1e-4)
  # The stable composite equals f*(g_f(v)), and g_f maps ℝ into dom f*.
  v = jnp.linspace(-4.0, 4.0, 17)
  close(div.conjugate_of_activation(v), div.conjugate(div.activation(v)), rtol=1e-4,
        atol=1e-5)
  assert np.all(np.isfinite(np.asarray(div.conjugate_of_activation(jnp.linspace(-8, 8, 33)))))
  # Every f'(u) is reachable by the activation (it lies in its range).
  if name != "total_variation":
    lo, hi = div.activation(jnp.float32(-250.0)), div.activation(jnp.float32(250.0))
    assert np.all((np.asarray(t) >= float(lo) - 1e-5) & (np.asarray(t) <= float(hi) + 1e-5))


def test_alpha_one_half_is_twice_squared_hellinger():
  u = jnp.linspace(0.1, 5.0, 20)
  close(losses.divergence("alpha", 0.5).f(u),
        2 * losses.divergence("squared_hellinger").f(u), rtol=1e-5)


def test_gan_divergence_reproduces_the_minimax_discriminator():
  div = losses.divergence("gan")
  close(losses.fgan_discriminator(real=REAL, fake=FAKE, divergence=div),
        losses.minimax_discriminator(real=REAL, fake=FAKE), rtol=1e-5)
  close(losses.fgan_generator(fake=FAKE, divergence=div, fgan_generator="alternative"),
        losses.non_saturating_generator(fake=FAKE))
  close(losses.fgan_generator(fake=FAKE, divergence=div, fgan_generator="saddle"),
        losses.minimax_generator(fake=FAKE))


def test_wright_omega_matches_scipy_lambertw_and_has_its_derivative():
  a = np.array([-30.0, -5.0, -1.0, 0.0, 0.5, 1.0, 2.0, 10.0, 80.0, 300.0])
  expected = np.real(scipy.special.wrightomega(a))
  close(losses.wright_omega(jnp.asarray(a, jnp.float32)), expected, rtol=2e-6, atol=1e-30)
  close(losses.wright_omega(jnp.float32(2.0)), np.real(scipy.special.lambertw(np.exp(2.0))))
  grad = jax.vmap(jax.grad(losses.wright_omega))(jnp.asarray(a[1:-2], jnp.float32))
  close(grad, expected[1:-2] / (1 + expected[1:-2]), rtol=1e-5)


def test_bad_divergences_are_one_line_errors():
  with pytest.raises(ConfigError, match="model.divergence='chi'"):
    losses.divergence("chi")
  with pytest.raises(ConfigError, match="not 0 or 1"):
    losses.divergence("alpha", 1.0)
  with pytest.raises(ConfigError, match="fgan_generator"):
    losses.fgan_generator(fake=FAKE, divergence=losses.divergence("kl"), fgan_generator="x")


def test_softmax_cross_entropy_matches_the_formula():
  logits = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
  labels = np.array([1, 2])
  expected = -np.log(np.exp(logits[np.arange(2), labels]) / np.exp(logits).sum(1))
  close(losses.softmax_cross_entropy(logits=logits, labels=labels), expected)
  assert math.isclose(float(np.exp(-expected[1])), 1 / 3, rel_tol=1e-6)
