"""Every registered method honours the contract and traces under jax.jit.

A refactor that silently loses `jit` (or makes a step untraceable) fails here.
Tracing only (`.lower`), no compilation, so the whole registry costs seconds.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng
from jaxgen.core.state import INIT_DATA, Method, TrainState

# Methods that need an artefact of another run (e.g. a trained autoencoder)
# before `make` can succeed; their own tests cover them end to end.
NEEDS_PREREQUISITE = {"latent_diffusion"}

METHODS = sorted(name for name, entry in registry.methods().items()
                 if entry.family != "test" and name not in NEEDS_PREREQUISITE)


def test_registry_is_not_empty():
  assert "vae" in METHODS


@pytest.mark.parametrize("name", METHODS)
def test_method_traces_under_jit(name):
  config = config_lib.get_config(name)
  config.data.batch_size = 8
  dataset = data_lib.from_config(config.data)
  method = registry.get(name).make(config, dataset.spec)
  assert isinstance(method, Method) and method.name
  batch = next(data_lib.train_iterator(dataset, batch_size=8, seed=0))
  key = jax.random.PRNGKey(0)
  state = jax.eval_shape(method.init, key, batch)
  assert isinstance(state, TrainState)
  assert method.init_data in INIT_DATA
  if method.init_data == "split":
    # Resume and `load` build the abstract state from a batch of batch_size
    # rows; the state of a whole-split init must not depend on the rows.
    more = next(data_lib.train_iterator(dataset, batch_size=16, seed=0))
    assert jax.eval_shape(method.init, key, more) == state
  assert state.step.shape == () and set(state.params)
  new_state, metrics = jax.eval_shape(method.train_step, state, batch)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert "loss" in metrics and all(m.shape == () for m in metrics.values())
  jax.jit(method.train_step).lower(state, batch)
  if method.sample is None:   # only a discriminative model may have no p(x)
    assert name == "logistic_regression"
  else:
    samples = jax.eval_shape(lambda s, k: method.sample(s, k, 3), state, key)
    assert samples.shape == (3,) + tuple(dataset.spec.shape)
  if method.evaluate is not None:
    # The runner hands evaluate one key per example, from its global index.
    eval_batch = next(iter(data_lib.eval_batches(dataset, split="test", batch_size=8)))
    eval_keys = rng.index_keys(key, jnp.arange(8))
    values = jax.eval_shape(method.evaluate, state, eval_batch, eval_keys)
    assert values and all(v.shape == (8,) for v in values.values()), values
    jax.jit(method.evaluate).lower(state, eval_batch, eval_keys)
  if method.reconstruct is not None:
    out = jax.eval_shape(method.reconstruct, state, batch, key)
    assert out.shape == batch["x"].shape
  assert np.all(np.asarray(dataset.spec.shape) > 0)
