"""The objective table: each entry's losses against closed forms, adding an
objective is one entry, and every key is typed before anything runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import config as config_lib
from jaxgen.core import rng
from jaxgen.errors import ConfigError
from jaxgen.families.gan import losses, objectives
from tests.families.gan.test_gan_method import make, spec_of, tiny

REAL = np.array([-3.0, -0.5, 0.0, 0.7, 4.0], np.float32)
FAKE = np.array([2.0, -1.5, 0.3, -4.0, 0.0], np.float32)


def softplus(v):
  return np.logaddexp(0.0, v)


# name -> (D loss, G loss) at the published hyperparameters, from the papers.
CLOSED_FORMS = {
    "non_saturating": (lambda r, f: softplus(-r) + softplus(f), lambda f: softplus(-f)),
    "minimax": (lambda r, f: softplus(-r) + softplus(f), lambda f: -softplus(f)),
    "dragan": (lambda r, f: softplus(-r) + softplus(f), lambda f: softplus(-f)),
    "lsgan": (lambda r, f: 0.5 * (r - 1) ** 2 + 0.5 * f**2, lambda f: 0.5 * (f - 1) ** 2),
    "wgan": (lambda r, f: f - r, lambda f: -f),
    "wgan_gp": (lambda r, f: f - r, lambda f: -f),
    "wgan_gp_drift": (lambda r, f: f - r + 0.001 * r**2, lambda f: -f),   # Karras et al.
    "hinge": (lambda r, f: np.maximum(0, 1 - r) + np.maximum(0, 1 + f), lambda f: -f),
    "ebgan": (lambda r, f: r + np.maximum(0, 1.0 - f), lambda f: f),       # m = 1
    "began": (lambda r, f: r - 0.25 * f, lambda f: f),                       # k = 0.25
    # The default divergence 'gan' with the 'alternative' generator.
    "fgan": (lambda r, f: softplus(-r) + softplus(f), lambda f: softplus(-f)),
}


def published_values(objective):
  values = {name: h.default for name, h in objective.hyperparameters.items()}
  return {**values, "real_target": 1.0, "k": 0.25}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_every_table_entry_computes_its_papers_losses(name):
  objective = objectives.OBJECTIVES[name]
  values = published_values(objective)
  d, g = CLOSED_FORMS[name]
  np.testing.assert_allclose(objective.discriminator_loss(REAL, FAKE, values), d(REAL, FAKE),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(objective.generator_loss(FAKE, values), g(FAKE), rtol=1e-5,
                             atol=1e-6)


def test_the_table_covers_every_objective_and_reads_only_declared_values():
  assert set(CLOSED_FORMS) == set(objectives.OBJECTIVES)
  for name, objective in objectives.OBJECTIVES.items():
    # Only the declared names reach the losses: the others may be missing.
    values = {k: v for k, v in published_values(objective).items()
              if k in objective.discriminator_arguments + objective.generator_arguments}
    objective.discriminator_loss(REAL, FAKE, values)
    objective.generator_loss(FAKE, values)
    assert objective.optim["learning_rate"] > 0 and objective.n_critic >= 1, name


def test_a_bad_entry_is_refused_when_it_is_written():
  with pytest.raises(ValueError, match="neither a hyperparameter"):
    objectives.Objective(discriminator=losses.hinge_discriminator,
                         generator=losses.hinge_generator, output="score", paper="",
                         optim=objectives.adam(1e-4, 0.5), discriminator_arguments=("m",))
  with pytest.raises(ValueError, match="output"):
    objectives.Objective(discriminator=losses.hinge_discriminator,
                         generator=losses.hinge_generator, output="logits", paper="",
                         optim=objectives.adam(1e-4, 0.5))


# ------------------------------------------------- adding an objective
def margin_hinge_discriminator(*, real, fake, hinge_margin):
  """max(0, m - D(x)) + max(0, m + D(G(z))): hinge with a margin m."""
  return jax.nn.relu(hinge_margin - real) + jax.nn.relu(hinge_margin + fake)


@pytest.fixture
def margin_hinge(monkeypatch):
  """A new objective with a hyperparameter: one function and one table entry."""
  monkeypatch.setitem(objectives.OBJECTIVES, "margin_hinge", objectives.Objective(
      discriminator=margin_hinge_discriminator, generator=losses.hinge_generator,
      output="score", paper="a test", optim=objectives.adam(2e-4, 0.0, 0.9), n_critic=2,
      hyperparameters={"hinge_margin": objectives.Hyperparameter(1.0, minimum=0.0)},
      discriminator_arguments=("hinge_margin",)))


def test_a_registered_objective_trains_and_reads_its_hyperparameter(margin_hinge):
  method = make(tiny(overrides=["model.objective=margin_hinge", "model.hinge_margin=0.5"]))
  assert method.eval_protocol["settings"]["hinge_margin"] == 0.5
  assert method.eval_protocol["settings"]["n_critic"] == 2
  batch = {"x": jax.random.normal(jax.random.PRNGKey(1), (16, 2))}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  for _ in range(2):
    state, metrics = step(state, batch)
  assert int(state.step) == 2 and np.isfinite(float(metrics["loss"]))
  out = method.evaluate(state, batch, rng.index_keys(jax.random.PRNGKey(2), jnp.arange(16)))
  np.testing.assert_allclose(
      out["discriminator_loss"],
      np.maximum(0, 0.5 - out["score_real"]) + np.maximum(0, 0.5 + out["score_fake"]),
      rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overrides,fragment", [
    (["model.objective=margin_hinge", "model.hinge_margin=abc"],
     "model.hinge_margin must be a number"),
    (["model.objective=margin_hinge", "model.hinge_margin=-1.0"],
     "model.hinge_margin must be >= 0.0"),
    (["model.hinge_margin=0.5"], "model.hinge_margin applies to objective 'margin_hinge'"),
])
def test_a_registered_objectives_hyperparameter_is_typed(margin_hinge, overrides, fragment):
  with pytest.raises(ConfigError) as info:
    make(tiny(overrides=overrides))
  assert fragment in str(info.value) and "\n" not in str(info.value)


# -------------------------------------------------- every key typed
@pytest.mark.parametrize("overrides,fragment", [
    (["generator_optim.learning_rate=abc"], "generator_optim.learning_rate must be a number"),
    (["generator_optim.b1=abc"], "generator_optim.b1 must be a number"),
    (["generator_optim.warmup_steps=abc"], "generator_optim.warmup_steps must be an integer"),
    (["generator_optim.learning_rate=-0.001"], "generator_optim.learning_rate must be > 0"),
    (["discriminator_optim.grad_clip_norm=-1.0"], "grad_clip_norm must be >= 0"),
    (["discriminator_optim.b2=1.0"], "discriminator_optim.b2 must be < 1"),
    (["discriminator_optim.schedule=steps"], "discriminator_optim.schedule 'steps'"),
    (["model.objective=wgan_gp", "model.penalty_weight=xyz"],
     "model.penalty_weight must be a number"),
    (["model.objective=fgan", "model.divergence=alpha", "model.alpha=abc"],
     "model.alpha must be a number"),
    (["model.objective=ebgan", "model.pull_away_weight=abc"],
     "model.pull_away_weight must be a number"),
    (["model.objective=ebgan", "model.margin=abc"], "model.margin must be a number"),
    (["model.objective=wgan", "model.clip=abc"], "model.clip must be a number"),
    (["model.objective=wgan", "model.clip=0.0"], "model.clip must be > 0"),
    (["model.objective=began", "model.began_gamma=abc"], "model.began_gamma must be a number"),
    (["model.objective=began", "model.began_gamma=1.5"], "model.began_gamma must be <= 1"),
    (["model.objective=fgan", "model.fgan_generator=both"], "model.fgan_generator 'both'"),
    (["model.n_critic=0"], "model.n_critic must be >= 1"),
    (["model.n_critic=abc"], "model.n_critic must be an integer"),
    (["model.generator_norm=group"], "model.generator_norm 'group'"),
    (["model.ema_decay=1.0"], "model.ema_decay must be < 1"),
    (["model.discriminator_dropout=1.0"], "model.discriminator_dropout must be < 1"),
    (["model.latent_dim=0"], "model.latent_dim must be >= 1"),
    (["tricks.label_smoothing=1.5"], "tricks.label_smoothing must be < 1"),
    (["tricks.r1_gamma=-1.0"], "tricks.r1_gamma must be >= 0"),
])
def test_every_key_is_typed_and_range_checked_in_make(overrides, fragment):
  config = tiny()
  config_lib.apply_overrides(config, overrides)  # None defaults accept anything here
  with pytest.raises(ConfigError) as info:
    make(config)
  assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_the_settings_cover_every_model_key_of_every_method():
  # An unknown key in a config file (a typo) is refused, not ignored.
  config = tiny()
  config.model.unlock()
  config.model.penalty_wieght = 3.0
  with pytest.raises(ConfigError, match="unknown key model.penalty_wieght"):
    make(config)
  for method in ("cgan", "acgan", "infogan", "ssgan"):
    make(tiny(method, "digits"))  # every default key is declared
  assert spec_of(tiny()).shape == (2,)
