"""Progressive growing of GANs (Karras et al. 2018): the method `pggan`.

G and D grow from 4x4 to the data's resolution (square images, padded to the
next power of two with the background value, e.g. MNIST 28 -> 32; samples
are cropped back). Stage s works at 4·2^s; each stage after the first fades
its new block in with α rising linearly over `model.fade_images` images, then
stabilises for `model.stable_images` (the last stage stabilises until the end
of training). During a fade the real images are blended the same way,
(1 - α) · upsample(downsample(x)) + α · x.

The stage is static and α is data. Each stage is one program, written for its
fixed resolution; `train_step` dispatches with `lax.switch` on the stage of
`state.step` (`Schedule`, a pure function of the step), so the engine jits it
once, each stage's program is compiled once with it, and a resumed run
continues mid-fade exactly. Every stage's parameters live in the state from
`init`; a stage updates only the layers it uses, with its own Adam state
(the optimizer restarts at each new resolution, as in Karras et al.'s code),
so the others stay untouched. Under `train.seeds` with the default
`seed_strategy='vmap'` the stage index is batched and `lax.switch` becomes a
select that runs every stage's program; `seed_strategy='loop'` runs one.

The loss is an entry of the objective table (`objectives.OBJECTIVES`), by
default `wgan_gp_drift` (WGAN-GP, λ = 10, ε_drift = 0.001, n_critic 1, Adam
1e-3, β = (0, 0.99)). The stabilisers are switches with their published
defaults: `model.equalized_lr`, `model.pixel_norm`, `model.minibatch_group`
(group size of the minibatch standard deviation; 0 turns it off). As in the
paper's code, the gradient penalty differentiates the sum of D's outputs over
the interpolates, which the minibatch feature couples within a group.

  config = jaxgen.get_config("pggan", "digits")          # 4x4 -> 8x8
  result = jaxgen.fit(config)
  x = result.method.sample(result.state, jax.random.PRNGKey(0), 64)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, projection, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.families.gan import losses
from jaxgen.families.gan.progressive_settings import Networks, build_networks, default_config
from jaxgen.nn import progressive as nets_lib

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]
Params = dict[str, Any]

KIND = "pggan"


def _pick(params: Params, names: tuple[str, ...]) -> Params:
  return {k: params[k] for k in names}


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The pggan method for `config` on image data described by `spec`."""
  nets = build_networks(config, spec)
  s = nets.s
  horizon = optim.schedule_horizon(config.train)
  tx_g = optim.make(s.generator_optim, horizon, "generator_optim")
  tx_d = optim.make(s.discriminator_optim, horizon * s.n_critic, "discriminator_optim")
  protocol = {
      "estimator": "per test example i, at the stage (and α) of the last step taken: "
                   "the discriminator's loss on (x_i, G(z_i)) without penalties, z_i "
                   "fresh per example; minibatch-stddev groups of consecutive examples",
      "objective": s.model.objective, "published_defaults": s.paper,
      "settings": s.to_json(), "units": "the objective's own",
  }
  return Method(
      name=KIND, init=functools.partial(init, nets, tx_g, tx_d),
      train_step=functools.partial(train_step, nets, tx_g, tx_d),
      sample=functools.partial(sample, nets), evaluate=functools.partial(evaluate, nets),
      decode=functools.partial(decode, nets), eval_protocol=protocol,
      project=functools.partial(project, nets))


def init(nets: Networks, tx_g, tx_d, key: Array, batch: Batch) -> TrainState:
  """Every stage's layers, one optimizer state per stage and player, G's EMA."""
  keys = rng.split(key, "generator", "discriminator", "base")
  params_g: Params = {}
  params_d: Params = {}
  z = jnp.zeros((2, nets.s.model.latent_dim))
  x = nets.pad(batch["x"][:2])
  for _ in range(nets.num_stages - 1):
    x = nets_lib.downsample(x)
  for stage in range(nets.num_stages):   # flax derives each layer's init from its name
    params_g.update(nets.generator.init(keys["generator"], z, stage=stage)["params"])
    params_d.update(nets.discriminator.init(keys["discriminator"], x, stage=stage)["params"])
    x = nets_lib.upsample(x)
  opt_state = {
      "generator": {f"stage{st}": tx_g.init(_pick(params_g, nets.generator_layers[st]))
                    for st in range(nets.num_stages)},
      "discriminator": {f"stage{st}": tx_d.init(_pick(params_d,
                                                      nets.discriminator_layers[st]))
                        for st in range(nets.num_stages)}}
  model_state = {}
  if nets.s.model.ema_decay:
    model_state["ema_generator"] = optim.ema(nets.s.model.ema_decay).init(params_g)
  return TrainState.create(key=keys["base"],
                           params={"generator": params_g, "discriminator": params_d},
                           opt_state=opt_state, model_state=model_state)


# ---------------------------------------------------------------- the step
def discriminator_loss(nets: Networks, stage: int, alpha: Array, params_d: Params,
                       x: Array, fake: Array, eps: Array) -> tuple[Array, Metrics]:
  """The discriminator's scalar loss at `stage` (objective + its gradient penalty)."""
  real_score = nets.discriminate(params_d, x, stage, alpha)
  fake_score = nets.discriminate(params_d, fake, stage, alpha)
  loss = nets.objective.discriminator_loss(real_score, fake_score, nets.loss_values())
  metrics = {"score_real": jnp.mean(real_score), "score_fake": jnp.mean(fake_score)}
  if nets.objective.penalty == "interpolates":   # WGAN-GP: x̂ = εx + (1 - ε)x̃
    penalty = losses.gradient_penalty(
        critic=lambda points: nets.discriminate(params_d, points, stage, alpha),
        x=losses.interpolates(real=x, fake=fake, eps=eps))
    loss = loss + nets.s.hyperparameters["penalty_weight"] * penalty
    metrics["gradient_penalty"] = jnp.mean(penalty)
  metrics["discriminator_loss"] = jnp.mean(loss)
  return jnp.mean(loss), metrics


def generator_loss(nets: Networks, stage: int, alpha: Array, params_g: Params,
                   params_d: Params, z: Array) -> tuple[Array, Metrics]:
  """The generator's scalar loss at `stage` against the (updated) discriminator."""
  score = nets.discriminate(params_d, nets.generate(params_g, z, stage, alpha), stage, alpha)
  loss = jnp.mean(nets.objective.generator_loss(score, nets.loss_values()))
  return loss, {"generator_loss": loss}


def _critic_update(nets: Networks, tx: optax.GradientTransformation, stage: int,
                   alpha: Array, params_d: Params, opt_d, params_g: Params, x: Array,
                   key: Array):
  keys = rng.split(key, "z", "eps")
  n = x.shape[0]
  z = rng.normal(keys["z"], (n, nets.s.model.latent_dim))
  fake = jax.lax.stop_gradient(nets.generate(params_g, z, stage, alpha))
  eps = rng.uniform(keys["eps"], (n,))
  (_, metrics), grads = jax.value_and_grad(
      functools.partial(discriminator_loss, nets, stage, alpha), has_aux=True)(
          params_d, x, fake, eps)
  grads = collectives.mean_over_devices(grads)
  params_d, opt_d = optim.apply_gradients(tx, grads, opt_d, params_d)
  return params_d, opt_d, {**metrics, "discriminator_grad_norm": optax.tree.norm(grads)}


def stage_step(nets: Networks, tx_g: optax.GradientTransformation,
               tx_d: optax.GradientTransformation, stage: int, state: TrainState,
               batch: Batch) -> tuple[TrainState, Metrics]:
  """One step of `stage` (static): n_critic D updates, one G update, G's EMA."""
  alpha = nets.s.schedule.alpha(state.step, stage)
  keys = state.keys("critic", "generator")
  x = nets.reals(batch["x"], stage, alpha)
  name = f"stage{stage}"
  params_g = _pick(state.params["generator"], nets.generator_layers[stage])
  params_d = _pick(state.params["discriminator"], nets.discriminator_layers[stage])
  opt_d = state.opt_state["discriminator"][name]
  per_update = []
  for i in range(nets.s.n_critic):   # static: a Python loop (see step.py)
    params_d, opt_d, metrics_i = _critic_update(nets, tx_d, stage, alpha, params_d, opt_d,
                                                params_g, x,
                                                jax.random.fold_in(keys["critic"], i))
    per_update.append(metrics_i)
  metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *per_update)
  z = rng.normal(keys["generator"], (x.shape[0], nets.s.model.latent_dim))
  (_, g_metrics), grads = jax.value_and_grad(
      functools.partial(generator_loss, nets, stage, alpha), has_aux=True)(
          params_g, params_d, z)
  grads = collectives.mean_over_devices(grads)
  params_g, opt_g = optim.apply_gradients(tx_g, grads, state.opt_state["generator"][name],
                                          params_g)
  params = {"generator": {**state.params["generator"], **params_g},
            "discriminator": {**state.params["discriminator"], **params_d}}
  model_state = dict(state.model_state)
  if "ema_generator" in model_state:
    _, model_state["ema_generator"] = optim.ema(nets.s.model.ema_decay).update(
        params["generator"], model_state["ema_generator"])
  opt_state = {"generator": {**state.opt_state["generator"], name: opt_g},
               "discriminator": {**state.opt_state["discriminator"], name: opt_d}}
  metrics = {**metrics, **g_metrics, "generator_grad_norm": optax.tree.norm(grads),
             "loss": metrics["discriminator_loss"], "alpha": alpha,
             "stage": jnp.asarray(stage, jnp.float32)}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       model_state=model_state), metrics


def train_step(nets: Networks, tx_g, tx_d, state: TrainState, batch: Batch
               ) -> tuple[TrainState, Metrics]:
  """The step of the stage `Schedule.stage_array(state.step)`, by `lax.switch`."""
  branches = [functools.partial(stage_step, nets, tx_g, tx_d, stage)
              for stage in range(nets.num_stages)]
  return jax.lax.switch(nets.s.schedule.stage_array(state.step), branches, state, batch)


# ------------------------------------------------------- sampling, evaluation
def _shown_step(state: TrainState) -> Array:
  """The step whose stage and α the current weights were trained at."""
  return jnp.maximum(state.step - 1, 0)


def sampling_params(nets: Networks, state: TrainState) -> Params:
  """G's EMA weights (`core.optim.ema`), or the raw ones (`model.sample_from`)."""
  if nets.s.model.sample_from == "generator":
    return state.params["generator"]
  return state.model_state["ema_generator"].ema


def decode(nets: Networks, state: TrainState, z: Array) -> Array:
  """Samples for noise z: [N, latent_dim], at the current stage, in data space."""
  step = _shown_step(state)
  params = sampling_params(nets, state)

  def at(stage, params, z, step):
    x = nets.generate(params, z, stage, nets.s.schedule.alpha(step, stage))
    return nets.to_data(x, stage)

  return jax.lax.switch(nets.s.schedule.stage_array(step),
                        [functools.partial(at, st) for st in range(nets.num_stages)],
                        params, z, step)


def sample(nets: Networks, state: TrainState, key: Array, num: int) -> Array:
  """num samples at the current stage (upsampled to the data's size, cropped)."""
  return decode(nets, state, rng.normal(key, (num, nets.s.model.latent_dim)))


def project(nets: Networks, state: TrainState, images: Array, key: Array,
            **options) -> tuple[Array, Array, dict[str, Array]]:
  """Codes z whose samples (current stage, data size) reconstruct `images`
  (core.projection; options: steps, restarts, learning_rate, ...)."""
  return projection.project(functools.partial(decode, nets, state),
                            nets.s.model.latent_dim, images, key, **options)


def evaluate(nets: Networks, state: TrainState, batch: Batch, key: Array
             ) -> dict[str, Array]:
  """Per-example held-out discriminator loss and scores, at the current stage."""
  step = _shown_step(state)
  keys = rng.split(key, "z", "other")
  z = rng.normal(keys["z"], (batch["x"].shape[0], nets.s.model.latent_dim))

  def at(stage, params, x, z, step):
    alpha = nets.s.schedule.alpha(step, stage)
    fake = nets.generate(params["generator"], z, stage, alpha)
    real = nets.discriminate(params["discriminator"], nets.reals(x, stage, alpha), stage,
                             alpha)
    fakes = nets.discriminate(params["discriminator"], fake, stage, alpha)
    loss = nets.objective.discriminator_loss(real, fakes, nets.loss_values())
    return {"discriminator_loss": loss, "score_real": real, "score_fake": fakes}

  return jax.lax.switch(nets.s.schedule.stage_array(step),
                        [functools.partial(at, st) for st in range(nets.num_stages)],
                        state.params, batch["x"], z, step)


registry.register(
    KIND, family="gan",
    description="progressive growing of GANs (Karras et al. 2018): G and D grow 4x4 -> "
                "data size with faded-in blocks; equalized lr, pixel norm, minibatch "
                "stddev, WGAN-GP + drift",
    default_config=default_config, make=make, default_data="digits")
