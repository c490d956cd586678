"""Method.project of the generators (gan kinds, pggan, the vae family)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.errors import ConfigError

PROJECTABLE = ("gan", "cgan", "acgan", "infogan", "ssgan", "pggan", "vae", "cvae", "iwae")
# What the conditional kinds need held fixed while z moves.
CONDITIONING = {"cgan": "labels", "acgan": "labels", "infogan": "categorical",
                "cvae": "labels"}


def _method(name, data="digits", overrides=()):
  config = config_lib.get_config(name, data)
  config.data.batch_size = 8
  config_lib.apply_overrides(config, list(overrides))
  dataset = data_lib.from_config(config.data)
  method = registry.get(name).make(config, dataset.spec)
  batch = next(data_lib.train_iterator(dataset, batch_size=8, seed=0))
  return method, batch, dataset.spec


@pytest.mark.parametrize("name,overrides", [(n, ()) for n in PROJECTABLE] + [
    ("gan", ("model.architecture=style",))])
def test_project_traces_for_every_generator(name, overrides):
  method, batch, spec = _method(name, overrides=overrides)
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  kwargs = {CONDITIONING[name]: jnp.arange(3) % 10} if name in CONDITIONING else {}
  z, reconstructions, losses = jax.eval_shape(
      lambda s, x, k: method.project(s, x, k, steps=2, restarts=2, **kwargs),
      state, batch["x"][:3], jax.random.PRNGKey(1))
  assert reconstructions.shape == (3,) + tuple(spec.shape)
  assert z.shape[0] == 3 and losses["total"].shape == (3,)
  assert losses["per_restart"].shape == (2, 3) and losses["curve"].shape == (3, 3)


@pytest.mark.parametrize("name", ["pixelcnn", "gmm", "ddpm", "realnvp"])
def test_methods_without_a_generator_have_no_project(name):
  config = config_lib.get_config(name)
  method = registry.get(name).make(config, data_lib.from_config(config.data).spec)
  assert method.project is None


@pytest.mark.parametrize("name", ["cgan", "infogan"])
def test_conditional_projection_needs_its_conditioning(name):
  method, batch, _ = _method(name)
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  with pytest.raises(ConfigError, match=CONDITIONING[name]):
    method.project(state, batch["x"][:2], jax.random.PRNGKey(1), steps=1)


def test_gan_projection_recovers_a_generated_image():
  # An untrained MLP generator is still a generator: G(z0) is in its range.
  method, batch, _ = _method("gan", overrides=["model.architecture=mlp",
                                               "model.generator_hidden=(32,)",
                                               "model.discriminator_hidden=(32,)",
                                               "model.latent_dim=4"])
  state = method.init(jax.random.PRNGKey(0), batch)
  target = method.decode(state, jax.random.normal(jax.random.PRNGKey(5), (4, 4)))
  z, reconstructions, losses = jax.jit(
      lambda s, x, k: method.project(s, x, k, steps=300, restarts=2, learning_rate=0.1))(
          state, target, jax.random.PRNGKey(2))
  np.testing.assert_allclose(reconstructions, target, atol=0.02)
  np.testing.assert_allclose(method.decode(state, z), reconstructions, atol=1e-5)
  assert np.all(losses["pixel"] < 1e-4)
  np.testing.assert_array_equal(losses["total"], np.min(losses["per_restart"], axis=0))
