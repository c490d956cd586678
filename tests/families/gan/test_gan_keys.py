"""Keys: no stream reuses a key, evaluation works with per-example keys, no
hidden fixed key, and no loop around the critic's convolutions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.core import rng
from jaxgen.families.gan import networks
from jaxgen.families.gan.players import Players
from tests.families.gan.test_gan_method import example, make, spec_of, tiny


def distinct(keys):
  rows = [tuple(np.asarray(jax.random.key_data(k) if jax.dtypes.issubdtype(
      k.dtype, jax.dtypes.prng_key) else k).ravel()) for k in keys]
  return len(set(rows)) == len(rows)


def test_every_discriminator_pass_of_a_step_gets_its_own_key(monkeypatch):
  # Input noise and dropout make D random: the real, fake, penalty and R1
  # passes must each draw their own noise (the penalty pass used to reuse the
  # real pass's key).
  config = tiny(overrides=["model.objective=wgan_gp", "model.n_critic=1",
                           "model.discriminator_input_noise=0.1",
                           "model.discriminator_dropout=0.2", "tricks.r1_gamma=1.0"])
  method = make(config)
  batch = {"x": jax.random.normal(jax.random.PRNGKey(1), (16, 2))}
  state = method.init(jax.random.PRNGKey(0), batch)
  recorded = []
  original = Players.discriminate

  def spy(self, params, stats, x, condition, *, train, key):
    if train and key is not None:
      recorded.append(key)
    return original(self, params, stats, x, condition, train=train, key=key)

  monkeypatch.setattr(Players, "discriminate", spy)

  def keys_of_a_step(state, batch):
    recorded.clear()
    method.train_step(state, batch)
    return list(recorded)

  keys = jax.jit(keys_of_a_step)(state, batch)
  # D: real, fake, gradient penalty, R1; G: fake.
  assert len(keys) == 5 and distinct(keys)


def test_init_gives_every_random_stream_its_own_key(monkeypatch):
  config = tiny(overrides=["model.discriminator_input_noise=0.1",
                           "model.discriminator_dropout=0.2"])
  method = make(config)
  seen = []
  for cls in (networks.Generator, networks.Discriminator):
    original = cls.init

    def spy(self, rngs, *args, _original=original, **kwargs):
      seen.extend(rngs.values())
      return _original(self, rngs, *args, **kwargs)

    monkeypatch.setattr(cls, "init", spy)
  method.init(jax.random.PRNGKey(0), {"x": jnp.zeros((4, 2))})
  # G: params, noise; D: params, noise, dropout.
  assert len(seen) == 5 and distinct(seen)


def test_decode_needs_an_explicit_key_for_the_style_generators_noise():
  # The raw generator, whose weights the test edits (the EMA is a copy of the
  # initial ones until the first step).
  config = tiny("gan", "digits", ["model.architecture=style", "model.sample_from=generator"])
  method = make(config)
  state = method.init(jax.random.PRNGKey(0), example(spec_of(config)))
  # Turn the noise on (its strength starts at zero) so that keys matter.
  state = state.replace(params={**state.params, "generator": jax.tree_util.tree_map_with_path(
      lambda path, p: jnp.ones_like(p) if "strength" in jax.tree_util.keystr(path) else p,
      state.params["generator"])})
  z = jnp.zeros((2, config.model.latent_dim))
  with pytest.raises(TypeError, match="noise_key"):
    method.decode(state, z)
  a = method.decode(state, z, noise_key=jax.random.PRNGKey(1))
  b = method.decode(state, z, noise_key=jax.random.PRNGKey(2))
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(a, method.decode(state, z, noise_key=jax.random.PRNGKey(1)))


@pytest.mark.parametrize("method_name,data,overrides", [
    ("gan", "toy2d:ring8", []),
    ("infogan", "digits", []),
    ("cgan", "digits", ["model.architecture=style", "model.generator_norm=none"]),
])
def test_evaluate_with_per_example_keys_does_not_depend_on_the_batching(
    method_name, data, overrides):
  config = tiny(method_name, data, overrides)
  method = make(config)
  spec = spec_of(config)
  batch = example(spec)
  batch["x"] = jax.random.normal(jax.random.PRNGKey(4), batch["x"].shape)
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  state, _ = jax.jit(method.train_step)(state, batch)
  evaluate = jax.jit(method.evaluate)
  key = jax.random.PRNGKey(9)
  whole = evaluate(state, batch, rng.index_keys(key, jnp.arange(16)))
  halves = [evaluate(state, jax.tree.map(lambda a: a[lo:lo + 8], batch),
                     rng.index_keys(key, jnp.arange(lo, lo + 8))) for lo in (0, 8)]
  for name, values in whole.items():
    np.testing.assert_allclose(values, np.concatenate([h[name] for h in halves]),
                               rtol=1e-5, atol=1e-6, err_msg=name)
  # Different examples get different noise.
  assert np.unique(np.asarray(whole["score_fake"])).size > 1


def loop_primitives(jaxpr):
  """Names of the loop primitives anywhere in `jaxpr` (nested jaxprs included)."""
  found = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("scan", "while"):
      found.add(eqn.primitive.name)
    for param in eqn.params.values():
      for p in param if isinstance(param, (tuple, list)) else (param,):
        inner = getattr(p, "jaxpr", p)
        if hasattr(inner, "eqns"):
          found |= loop_primitives(inner)
  return found


@pytest.mark.parametrize("overrides", [["model.n_critic=1"],
                                       ["model.objective=wgan_gp", "model.n_critic=3"]])
def test_the_critic_updates_are_unrolled_not_a_loop(overrides):
  # A lax.scan around the DCGAN critic made its strided-conv weight gradients
  # ~45x slower on XLA:CPU; the static n_critic is a Python loop.
  config = tiny("gan", "digits", overrides)
  method = make(config)
  batch = example(spec_of(config))
  state = jax.eval_shape(method.init, jax.random.PRNGKey(0), batch)
  jaxpr = jax.make_jaxpr(method.train_step)(state, batch)
  assert not loop_primitives(jaxpr.jaxpr)
