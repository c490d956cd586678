"""Denoising diffusion (Ho et al. 2020): the `ddpm` method, and the shared builder.

Training draws t ~ U{0..T−1} and ε ~ N(0, I) per example, forms
x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε and regresses the network on ε, x_0 or v
(L_simple), optionally with the variational bound (L_vlb, or Nichol &
Dhariwal's hybrid L_simple + λ L_vlb with a learned variance); the objectives
are the pure functions of `losses`. An EMA of the denoiser's weights
(`jaxgen.core.optim.ema`: a copy of the initial weights with the usual decay warm-up; its state in
`model_state["ema"]`) is what `sample` and `evaluate` use. `evaluate` returns
the full variational bound over all T steps, per example, in bits per
dimension (converted by the shared `jaxgen.data.codec`).

  config = jaxgen.get_config("ddpm")                 # digits, U-Net, ε, linear β
  result = jaxgen.fit(config, workdir="runs/ddpm")
  x = result.method.sample(result.state, key, 16)              # DDIM, 50 steps
  x = result.method.sample(result.state, key, 16, sampler="ddpm", steps=1000,
                           progress=True)                      # ancestral, all T

Class-conditional models (`model.conditional` or classifier-free guidance)
take `labels=` (int [num]; −1 = no label; default 0, 1, 2, ... cycling over the
classes) and `guidance=` (the weight w or scale s; None = unguided; default
`model.guidance_scale`). With classifier-free guidance the network output is
(1 − w)·f(x, ∅) + w·f(x, y): w = 0 is the unconditional model and w = 1 the
conditional one, exactly (w = 1 + Ho & Salimans' w).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError, choices
from jaxgen.families.diffusion import losses, samplers, schedules
from jaxgen.families.diffusion import settings as settings_lib
from jaxgen.families.diffusion.settings import ModelSettings, default_config
from jaxgen.nn.denoiser import MLPDenoiser
from jaxgen.nn.unet import UNet, UNetClassifier

DEFAULT = "default"  # sample(guidance=DEFAULT): the config's guidance_scale


class Space(NamedTuple):
  """Where the diffusion runs: data scaled by a `Codec` (`ddpm`) or codes (`latent_diffusion`).

  encode(model_state, x, key) -> x_0 in model space; decode(model_state, y) ->
  data; init_state(x, key) -> extra model_state entries from the first batch;
  log_jacobian(model_state): log |d(model space)/d(reported units)| per
  dimension, counted in the continuous decoder term; levels: the discretized
  decoder's grid size (None: a density); units: what the bound measures.
  """

  shape: tuple[int, ...]
  encode: Callable[[dict, jax.Array, jax.Array], jax.Array]
  decode: Callable[[dict, jax.Array], jax.Array]
  init_state: Callable[[jax.Array, jax.Array], dict]
  log_jacobian: Callable[[dict], jax.Array | float]
  levels: int | None
  units: str


def data_space(codec: codec_lib.Codec, shape: tuple[int, ...]) -> Space:
  """The data themselves, mapped onto [-1, 1] by `codec`."""
  return Space(shape=tuple(shape), encode=lambda model_state, x, key: codec.encode(x),
               decode=lambda model_state, y: codec.decode(y),
               init_state=lambda x, key: {},
               log_jacobian=lambda model_state: codec.log_jacobian,
               levels=codec.levels if codec.discrete else None, units=codec.units)


class Denoiser(nn.Module):
  """The configured network on examples of `shape`: -> (output, variance output or None)."""

  architecture: str
  shape: tuple[int, ...]
  learned_variance: bool
  num_classes: int
  channels: int
  channel_mults: tuple[int, ...]
  num_res_blocks: int
  attention_resolutions: tuple[int, ...]
  heads: int
  groups: int
  hidden: int
  depth: int

  @nn.compact
  def __call__(self, x, t, labels=None):
    k = 2 if self.learned_variance else 1
    batch = x.shape[0]
    if self.architecture == "unet":
      c = self.shape[-1]
      out = UNet(out_channels=k * c, channels=self.channels,
                 channel_mults=self.channel_mults, num_res_blocks=self.num_res_blocks,
                 attention_resolutions=self.attention_resolutions, heads=self.heads,
                 groups=self.groups, num_classes=self.num_classes, name="unet")(x, t, labels)
      return out[..., :c], (out[..., c:] if self.learned_variance else None)
    d = math.prod(self.shape)
    out = MLPDenoiser(out_features=k * d, hidden=self.hidden, depth=self.depth,
                      num_classes=self.num_classes, name="mlp")(
                          x.reshape(batch, d), t, labels)
    output = out[:, :d].reshape(x.shape)
    return output, (out[:, d:].reshape(x.shape) if self.learned_variance else None)


class Classifier(nn.Module):
  """Noise-conditional classifier on examples of `shape`: -> logits [B, classes]."""

  architecture: str
  num_classes: int
  channels: int
  channel_mults: tuple[int, ...]
  attention_resolutions: tuple[int, ...]
  heads: int
  groups: int
  hidden: int
  depth: int

  @nn.compact
  def __call__(self, x, t):
    if self.architecture == "unet":
      return UNetClassifier(num_classes=self.num_classes, channels=self.channels,
                            channel_mults=self.channel_mults,
                            attention_resolutions=self.attention_resolutions,
                            heads=self.heads, groups=self.groups, name="unet")(x, t)
    return MLPDenoiser(out_features=self.num_classes, hidden=self.hidden,
                       depth=self.depth, name="mlp")(x.reshape(x.shape[0], -1), t)


def _net_settings(s: ModelSettings) -> dict[str, Any]:
  return dict(channels=s.channels, channel_mults=s.channel_mults,
              attention_resolutions=s.attention_resolutions, heads=s.heads,
              groups=s.norm_groups, hidden=s.hidden, depth=s.depth)


def make_denoiser(s: ModelSettings, shape: tuple[int, ...],
                  num_classes: int | None) -> Denoiser:
  """The network of the model settings, for examples of `shape`."""
  return Denoiser(architecture=s.architecture, shape=tuple(shape),
                  learned_variance=s.variance == "learned",
                  num_classes=int(num_classes or 0) if s.label_conditioned else 0,
                  num_res_blocks=s.num_res_blocks, **_net_settings(s))


def make_classifier(s: ModelSettings, num_classes: int) -> Classifier:
  """The noise-conditional classifier of the model settings."""
  return Classifier(s.architecture, int(num_classes), **_net_settings(s))


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
  """Everything `make` fixes: what the method's functions close over (never a config)."""

  name: str
  settings: ModelSettings
  schedule: schedules.Schedule
  space: Space
  denoiser: Denoiser
  classifier: Classifier | None
  tx: optax.GradientTransformation
  ema: optax.GradientTransformation
  num_classes: int  # 0 without labels; also the index of the "no label" embedding

  @property
  def timesteps(self) -> int:
    return self.schedule.num_timesteps

  @property
  def dims(self) -> int:
    return math.prod(self.space.shape)


def apply_denoiser(model: Model, params, x, t, labels):
  """The denoiser's (output, variance output) with labels where it takes them."""
  labels = labels if model.settings.label_conditioned else None
  return model.denoiser.apply({"params": params}, x, t, labels)


def averaged_params(model: Model, state: TrainState):
  """The denoiser's EMA weights (`core.optim.ema`: the initial weights before step 1)."""
  del model
  return state.model_state["ema"].ema


def init(model: Model, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Parameters, optimizer states and the zero EMA; the space's state from the batch."""
  keys = rng.split(key, "denoiser", "classifier", "codec", "base")
  model_state = dict(model.space.init_state(batch["x"], keys["codec"]))
  # Parameter shapes need only the shape of an example in model space.
  x0 = jnp.zeros((1,) + model.space.shape, jnp.float32)
  t = jnp.zeros((1,), jnp.int32)
  labels = jnp.zeros((1,), jnp.int32)
  # Non-partitionable threefry here only: XLA on CPU compiles flax's one
  # draw per parameter 2-3x faster so, and the values are as random.
  with jax.threefry_partitionable(False):
    params = {"denoiser": model.denoiser.init(keys["denoiser"], x0, t, labels)["params"]}
    if model.classifier is not None:
      params["classifier"] = model.classifier.init(keys["classifier"], x0, t)["params"]
  opt_state = {group: model.tx.init(p) for group, p in params.items()}
  model_state["ema"] = model.ema.init(params["denoiser"])
  return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                           model_state=model_state)


def _classifier_terms(model: Model, params, x_t, t, labels) -> dict[str, jax.Array]:
  """Cross-entropy and accuracy of the noise-conditional classifier (Dhariwal & Nichol)."""
  logits = model.classifier.apply({"params": params}, jax.lax.stop_gradient(x_t), t)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return {"classifier_loss": jnp.mean(loss),
          "classifier_accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def train_step(model: Model, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One step on the drawn t, ε (and dropped labels); updates the EMA."""
  s = model.settings
  keys = state.keys("time", "noise", "labels", "codec")
  x0 = model.space.encode(state.model_state, batch["x"], keys["codec"])
  size = x0.shape[0]
  t = rng.randint(keys["time"], (size,), 0, model.timesteps)
  noise = rng.normal(keys["noise"], x0.shape)
  true_labels = labels = batch.get("label")
  if s.label_conditioned and s.label_dropout > 0:
    drop = rng.bernoulli(keys["labels"], s.label_dropout, (size,))
    labels = jnp.where(drop, model.num_classes, labels)

  def loss_fn(params):
    loss, aux = losses.training_losses(
        model.schedule, objective=s.loss, prediction=s.prediction, variance=s.variance,
        hybrid_weight=s.hybrid_weight, levels=model.space.levels,
        network=lambda x_t, tt: apply_denoiser(model, params["denoiser"], x_t, tt, labels),
        x0=x0, t=t, noise=noise)
    metrics = {"loss": jnp.mean(loss), "simple": jnp.mean(aux["simple"])}
    if "vlb" in aux:
      metrics["vlb"] = jnp.mean(aux["vlb"])
    total = metrics["loss"]
    if model.classifier is not None:
      # Trained on the same noisy x_t, with the true labels (Dhariwal & Nichol).
      metrics.update(_classifier_terms(model, params["classifier"], aux["x_t"], t,
                                       true_labels))
      total = total + metrics["classifier_loss"]  # disjoint parameters
    return total, metrics

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = collectives.mean_over_devices(grads)
  params, opt_state = {}, {}
  for group in state.params:
    params[group], opt_state[group] = optim.apply_gradients(
        model.tx, grads[group], state.opt_state[group], state.params[group])
  _, ema = model.ema.update(params["denoiser"], state.model_state["ema"])
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            model_state={**state.model_state, "ema": ema})
  metrics["grad_norm"] = optax.tree.norm(grads["denoiser"])
  return new_state, metrics


def evaluate(model: Model, state: TrainState, batch: dict[str, jax.Array],
             key: jax.Array) -> dict[str, jax.Array]:
  """The whole bound per example, in bits/dim; `key` may be per-example keys."""
  s = model.settings
  keys = rng.split(key, "codec", "bound")
  x0 = model.space.encode(state.model_state, batch["x"], keys["codec"])
  labels = batch.get("label") if s.label_conditioned else None
  params = averaged_params(model, state)

  def reverse(x_t, t):
    output, frac = apply_denoiser(model, params, x_t, t, labels)
    return losses.reverse_mean_log_variance(
        model.schedule, prediction=s.prediction, variance=s.variance, output=output,
        frac=frac, x_t=x_t, t=t, clip=s.clip_denoised)

  terms = losses.bound_terms(model.schedule, model=reverse, x0=x0, key=keys["bound"],
                             levels=model.space.levels)
  bits = functools.partial(codec_lib.nats_to_bits_per_dim, dims=model.dims)
  # The change of units (model space -> reported units) belongs to the
  # decoder, the only term that is a density of x_0.
  decoder = bits(terms["decoder"],
                 log_jacobian=model.space.log_jacobian(state.model_state))
  prior, diffusion = bits(terms["prior"]), bits(terms["diffusion"])
  return {"nll_bound_bits_per_dim": prior + diffusion + decoder,
          "prior_bits_per_dim": prior, "diffusion_bits_per_dim": diffusion,
          "decoder_bits_per_dim": decoder}


def _denoise_plain(model: Model, params, x, t, cond):
  labels = cond["labels"]
  if labels is not None:
    labels = jnp.where(labels < 0, model.num_classes, labels)
  return apply_denoiser(model, params["denoiser"], x, t, labels)


def _denoise_guided(model: Model, params, x, t, cond):
  # (1 − w) f(x, ∅) + w f(x, y): exact at w = 0 and w = 1 (0·a = 0, 1·a = a).
  w = cond["weight"]
  labels = jnp.where(cond["labels"] < 0, model.num_classes, cond["labels"])
  null = jnp.full_like(labels, model.num_classes)
  uncond = apply_denoiser(model, params["denoiser"], x, t, null)
  cond_out = apply_denoiser(model, params["denoiser"], x, t, labels)
  return tuple(None if u is None else (1.0 - w) * u + w * c
               for u, c in zip(uncond, cond_out))


def _classifier_grad(model: Model, params, x, t, cond):
  """∇_x log p_φ(y | x_t, t) per example; examples with label −1 get none."""
  labels = cond["labels"]

  def log_prob(x):
    logits = model.classifier.apply({"params": params["classifier"]}, x, t)
    chosen = jnp.take_along_axis(jax.nn.log_softmax(logits),
                                 jnp.maximum(labels, 0)[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(labels >= 0, chosen, 0.0))

  return jax.grad(log_prob)(x)


class Guides(NamedTuple):
  """The network functions the samplers call, made once per method.

  They are static arguments of the compiled sampling chunks, so they must be
  the same objects from call to call for the compilation cache to hit.
  """

  plain: samplers.Denoise
  guided: samplers.Denoise
  classifier_grad: samplers.ClassifierGrad


def _conditioning(model: Model, guides: Guides, num: int, labels: Any, guidance: Any):
  """(denoise, classifier_grad, scale, cond) for sample's label/guidance arguments."""
  s = model.settings
  needs_labels = s.label_conditioned or model.classifier is not None
  if labels is None and needs_labels:
    labels = jnp.arange(num, dtype=jnp.int32) % model.num_classes
  elif labels is not None:
    if not needs_labels:
      raise ConfigError(f"method {model.name!r} is not class-conditional; sample it "
                        "without labels (or train with model.conditional=True)")
    labels = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (num,))
  if isinstance(guidance, str):
    if guidance != DEFAULT:
      raise ConfigError(f"guidance must be a number, None or {DEFAULT!r}, got {guidance!r}")
    guidance = s.guidance_scale if s.guidance != "none" else None
  if guidance is not None and s.guidance == "none":
    raise ConfigError(f"guidance={guidance!r} needs a model trained with "
                      f"model.guidance={choices(settings_lib.GUIDANCE[1:])}")
  cond = {"labels": labels}
  if guidance is not None and s.guidance == "classifier_free":
    cond["weight"] = jnp.asarray(guidance, jnp.float32)
    return guides.guided, None, 0.0, cond
  if guidance is not None:
    return guides.plain, guides.classifier_grad, jnp.asarray(guidance, jnp.float32), cond
  return guides.plain, None, 0.0, cond


def sample(model: Model, guides: Guides, state: TrainState, key: jax.Array, num: int,
           labels: Any = None, guidance: Any = DEFAULT, sampler: str | None = None,
           steps: int | None = None, eta: float | None = None,
           progress: bool = False, snapshots: int = 0) -> jax.Array:
  """num samples in data space; see the module docstring for the arguments.

  `snapshots` = k > 0 returns the reverse chain instead, [k + 1, num, ...]:
  x_T, then the state after each of k near-equal runs of the plan's steps
  (the last is x_0, the samples themselves), each decoded to data space
  (clipped to the data range for images). The same keys draw the same noise,
  so the last entry equals `sample` without snapshots.
  """
  s = model.settings
  sampler = sampler or s.sampler
  settings_lib.check_sampler(sampler)
  steps = steps or s.sample_steps or model.timesteps
  plan = samplers.make_plan(model.schedule, steps)
  if not 0 <= snapshots <= plan.num_steps:
    raise ConfigError(f"snapshots must be 0 to the number of sampling steps "
                      f"({plan.num_steps}), got {snapshots}")
  denoise, grad_fn, scale, cond = _conditioning(model, guides, num, labels, guidance)
  keys = rng.split(key, "prior", "chain")
  x_T = jax.random.normal(keys["prior"], (num,) + model.space.shape)
  params = {"denoiser": averaged_params(model, state)}
  if model.classifier is not None:
    params["classifier"] = state.params["classifier"]
  how = samplers.Settings(sampler=sampler, prediction=s.prediction,
                          variance=s.variance, clip=s.clip_denoised)
  eta = s.eta if eta is None else eta
  if snapshots:
    chain = [model.space.decode(state.model_state, x_T)]
    y = x_T
    parts = np.array_split(np.arange(plan.num_steps), snapshots)
    for i, part in enumerate(parts):
      piece = jax.tree.map(lambda a, p=part: a[p[0]:p[-1] + 1], plan)
      # With `progress`, a bar per run of steps (eager calls only, as below).
      y = samplers.sample(denoise, params, cond, how, piece, y, keys["chain"], eta,
                          grad_fn, scale,
                          chunk_size=s.progress_chunk if progress else 0, progress=progress,
                          description=f"{model.name} {sampler} {steps} steps, "
                                      f"part {i + 1}/{snapshots}")
      chain.append(model.space.decode(state.model_state, y))
    return jnp.stack(chain)
  y = samplers.sample(denoise, params, cond, how, plan, x_T, keys["chain"],
                      eta, grad_fn, scale,
                      chunk_size=s.progress_chunk if progress else 0,
                      progress=progress, description=f"{model.name} {sampler} {steps} steps")
  return model.space.decode(state.model_state, y)


def protocol(model: Model, extra: dict[str, Any] | None = None) -> dict[str, Any]:
  """How `evaluate`'s numbers are obtained, saved beside them."""
  s, levels = model.settings, model.space.levels
  return {
      "estimator": "the variational bound L_T + Σ_t L_{t−1} + L_0 over all "
                   f"T={model.timesteps} steps (Ho et al. 2020, eq. 5), one draw of "
                   "x_t per step and example, EMA weights",
      "units": model.space.units,
      "decoder": (f"discretized Gaussian on {levels} levels (Ho et al. eq. 13)"
                  if levels else "Gaussian density"),
      "conditioning": ("−log p(x | y) with the true labels" if s.label_conditioned
                       else "unconditional"),
      "schedule": s.schedule, "prediction": s.prediction, "variance": s.variance,
      "loss": s.loss,
      **(extra or {}),
  }


def build(config: ml_collections.ConfigDict, space: Space, num_classes: int | None,
          name: str, protocol_extra: dict[str, Any] | None = None,
          ignore: tuple[str, ...] = ()) -> Method:
  """The diffusion Method in `space`; resolves `config.model` once into settings."""
  s = settings_lib.resolve(config.model, space.shape, num_classes, ignore=ignore)
  model = Model(
      name=name, settings=s, schedule=schedules.get(s.schedule, s.timesteps),
      space=space, denoiser=precision.wrap(make_denoiser(s, space.shape, num_classes),
                                           precision.compute_dtype(config)),
      classifier=(precision.wrap(make_classifier(s, num_classes),
                                 precision.compute_dtype(config))
                  if s.guidance == "classifier" else None),
      tx=optim.make(config.optim, optim.schedule_horizon(config.train)),
      ema=optim.ema(s.ema_decay),
      num_classes=int(num_classes or 0))
  guides = Guides(plain=functools.partial(_denoise_plain, model),
                  guided=functools.partial(_denoise_guided, model),
                  classifier_grad=functools.partial(_classifier_grad, model))
  return Method(name=name, init=functools.partial(init, model),
                train_step=functools.partial(train_step, model),
                sample=functools.partial(sample, model, guides),
                evaluate=functools.partial(evaluate, model),
                eval_protocol=protocol(model, protocol_extra))


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `ddpm` method for `config` on data described by `spec`."""
  dequantized = bool(config.get("data", {}).get("dequantize", False))
  codec = codec_lib.from_spec(spec, dequantized=dequantized)
  return build(config, data_space(codec, spec.shape), spec.num_classes, "ddpm")


__all__ = ["Classifier", "Denoiser", "Model", "Space", "averaged_params", "build",
           "data_space", "default_config", "make", "make_classifier", "make_denoiser"]

registry.register(
    "ddpm", family="diffusion",
    description="denoising diffusion: U-Net/MLP, ε/x0/v, DDPM/DDIM, guidance, VLB",
    default_config=default_config, make=make)
