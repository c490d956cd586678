"""A config file that registers `fragile`: its parameters turn NaN in the update
of step `model.nan_at` while every metric stays finite (a NaN at a checkpoint
step); `evaluate` returns NaN when `model.nan_eval`. For the fault-injection
suite (`jaxgen train fragile --config THIS`) and tests/engine/test_reliability.py."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

import jaxgen
from jaxgen import registry
from jaxgen.core.state import Method, TrainState


def _default_config(data):
  del data
  return ml_collections.ConfigDict({"model": {"nan_at": 5, "nan_eval": False}})


def _make(config, spec):
  del spec
  tx = optax.sgd(1.0)
  nan_at, nan_eval = config.model.nan_at, config.model.nan_eval

  def init(key, batch):
    del batch
    params = {"w": jax.random.normal(key, (2,))}
    return TrainState.create(key=key, params=params, opt_state={"w": tx.init(params)})

  def train_step(state, batch):
    step = state.step + 1
    w = jnp.where(step >= nan_at, jnp.nan, state.params["w"] + 0.01)
    loss = jnp.mean(batch["x"]) * 0 + 1.0
    return state.replace(step=step, params={"w": w}), {"loss": loss}

  def sample(state, key, num):
    return jax.random.normal(key, (num, 2)) + state.params["w"][0] * 0

  def evaluate(state, batch, keys):
    del keys
    value = jnp.sum(batch["x"], -1) * 0 + state.params["w"][0]
    return {"value": value * jnp.nan if nan_eval else value}

  return Method("fragile", init, train_step, sample, evaluate=evaluate)


def register() -> None:
  if "fragile" not in registry.methods():
    registry.register("fragile", family="test", description="test only",
                      default_config=_default_config, make=_make,
                      default_data="toy2d:ring8")


def get_config():
  register()
  return jaxgen.get_config("fragile")
