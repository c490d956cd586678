"""Denoising diffusion (Ho et al. 2020): the `ddpm` and `latent_diffusion` methods.

Training draws t ~ U{0..T−1} and ε ~ N(0, I) per example, forms
x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε and regresses the network on ε, x_0 or v
(L_simple), optionally with the variational bound (L_vlb, or Nichol &
Dhariwal's hybrid L_simple + λ L_vlb with a learned variance). EMA weights,
kept in `model_state["ema"]`, are what `sample` and `evaluate` use.
`evaluate` returns the full variational bound over all T steps, per example,
in bits per dimension.

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

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError, choices
from jaxgen.families.diffusion import losses, samplers, schedules
from jaxgen.nn.denoiser import MLPDenoiser
from jaxgen.nn.unet import UNet, UNetClassifier, check_unet_shape

ARCHITECTURES = ("unet", "mlp")
LOSSES = ("simple", "vlb", "hybrid")
GUIDANCE = ("none", "classifier_free", "classifier")
LATENT_SAMPLES = ("mean", "sample")
DEFAULT = "default"  # sample(guidance=DEFAULT): the config's guidance_scale


def model_config(vectors: bool) -> dict[str, Any]:
  """The `model` section shared by `ddpm` and `latent_diffusion`."""
  return dict(
      timesteps=1000,          # T (Ho et al. 2020)
      schedule="linear",       # "linear" β 1e-4..0.02 (Ho et al.), "cosine" (Nichol & Dhariwal)
      prediction="epsilon",    # "epsilon" (Ho et al.), "x0" or "v" (Salimans & Ho 2022)
      loss="simple",           # "simple" (Ho et al. eq. 14), "vlb" or "hybrid" (Nichol & Dhariwal)
      hybrid_weight=0.001,     # λ of L_simple + λ L_vlb (Nichol & Dhariwal 2021)
      variance="fixed_small",  # σ²_t: "fixed_small" β̃_t, "fixed_large" β_t or "learned"
      architecture="mlp" if vectors else "unet",
      channels=32,             # U-Net base width (Ho et al.: 128 on CIFAR-10)
      channel_mults=(1, 2),    # one resolution per entry, halving each time
      num_res_blocks=2,        # per resolution (Ho et al.: 2)
      attention_resolutions=(4,),  # feature-map sizes with self-attention (Ho et al.: 16 at 32x32)
      heads=1,
      norm_groups=8,           # GroupNorm groups (Ho et al.: 32 at width 128)
      hidden=256,              # MLP denoiser width
      depth=3,                 # MLP denoiser residual blocks
      ema_decay=0.999,         # Ho et al.: 0.9999 over 800k steps; shorter runs need less
      conditional=False,       # condition on data labels (class embedding)
      label_dropout=0.1,       # p_uncond: labels replaced by "no label" (Ho & Salimans 2022)
      guidance="none",         # "classifier_free" (Ho & Salimans), "classifier" (Dhariwal & Nichol)
      guidance_scale=2.0,      # default w (classifier-free) or s (classifier) when sampling
      sampler="ddim",          # default sampler for sample(): "ddim" or "ddpm" (ancestral)
      sample_steps=50,         # default sampling steps; 0 = all T
      eta=0.0,                 # DDIM η: 0 deterministic, 1 = ancestral-like (Song et al. 2021)
      clip_denoised=not vectors,  # clip x̂_0 to the data range while sampling and evaluating
      progress_chunk=50,       # sample(progress=True): steps per compiled chunk of the loop
  )


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """DDPM defaults: a small U-Net on images, the MLP denoiser on 2-D toy data.

  On 8x8 digits the default (4,000 steps) trains in about ten minutes on two
  CPU cores; images are scaled to [-1, 1] as in Ho et al.
  """
  vectors = data.startswith("toy2d:")
  sections = dict(
      model=model_config(vectors),
      # Ho et al. used 2e-4 with batch 128 on CIFAR-10 and clipped gradients
      # at norm 1; these small models train faster at 1e-3.
      optim=optim.default_config("adam", 1e-3, grad_clip_norm=1.0),
      train=dict(steps=4000, eval_every=0, sample_every=1000),
  )
  if not vectors:
    sections["data"] = dict(scale="symmetric")
  return ml_collections.ConfigDict(sections)


class Codec(NamedTuple):
  """How data enter and leave the diffusion's space (identity-like for `ddpm`).

  encode(model_state, x, key) -> x_0 in model space; decode(model_state, y) ->
  data; init_state(x, key) -> extra model_state entries from the first batch;
  log_det(model_state): log |d(model space)/d(reported units)| per dimension,
  added to continuous likelihoods; levels: the discretized decoder's grid size
  (None: continuous); units: what the bound measures, for the protocol.
  """

  shape: tuple[int, ...]
  encode: Callable[[dict, jax.Array, jax.Array], jax.Array]
  decode: Callable[[dict, jax.Array], jax.Array]
  init_state: Callable[[jax.Array, jax.Array], dict]
  log_det: Callable[[dict], jax.Array | float]
  levels: int | None
  units: str


def check_model_config(m: ml_collections.ConfigDict, shape: tuple[int, ...],
                       num_classes: int | None) -> None:
  """One-line errors for settings that do not exist or do not fit the data."""
  for key, valid in (("schedule", schedules.SCHEDULES),
                     ("prediction", schedules.PREDICTIONS), ("loss", LOSSES),
                     ("variance", schedules.VARIANCES), ("architecture", ARCHITECTURES),
                     ("guidance", GUIDANCE), ("sampler", samplers.SAMPLERS)):
    if m[key] not in valid:
      raise ConfigError(f"model.{key}={m[key]!r} is not one of {choices(valid)}")
  if m.timesteps < 1:
    raise ConfigError(f"model.timesteps must be at least 1, got {m.timesteps}")
  if not 0 <= m.sample_steps <= m.timesteps:
    raise ConfigError(f"model.sample_steps must be 0 (all) to model.timesteps="
                      f"{m.timesteps}, got {m.sample_steps}")
  if m.variance == "learned" and m.loss == "simple":
    raise ConfigError("model.variance='learned' is only trained by the bound; use "
                      "model.loss='hybrid' or 'vlb'")
  if not 0.0 <= m.ema_decay < 1.0:
    raise ConfigError(f"model.ema_decay must be in [0, 1), got {m.ema_decay}")
  if not 0.0 <= m.label_dropout < 1.0:
    raise ConfigError(f"model.label_dropout must be in [0, 1), got {m.label_dropout}")
  if m.eta < 0:
    raise ConfigError(f"model.eta must be non-negative, got {m.eta}")
  if m.hybrid_weight < 0:
    raise ConfigError(f"model.hybrid_weight must be non-negative, got {m.hybrid_weight}")
  if m.progress_chunk < 1:
    raise ConfigError(f"model.progress_chunk must be at least 1, got {m.progress_chunk}")
  if (m.conditional or m.guidance != "none") and not num_classes:
    what = "model.conditional=True" if m.conditional else f"model.guidance={m.guidance!r}"
    raise ConfigError(f"{what} needs labelled data; this dataset has no labels "
                      f"(or data.labels=False)")
  if m.guidance == "classifier_free" and m.label_dropout <= 0:
    raise ConfigError("model.guidance='classifier_free' needs model.label_dropout > 0 "
                      "to train the unconditional model")
  if m.architecture == "unet":
    if not m.channel_mults or m.channels < 1 or m.num_res_blocks < 1:
      raise ConfigError("model.channel_mults needs at least one entry and "
                        "model.channels, model.num_res_blocks must be positive")
    check_unet_shape(shape, len(m.channel_mults))
    if (m.channels * min(m.channel_mults)) % m.heads:
      raise ConfigError(f"model.heads={m.heads} must divide every U-Net width")
  elif m.hidden < 1 or m.depth < 0:
    raise ConfigError("model.hidden must be positive and model.depth non-negative")


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


def _net_settings(m: ml_collections.ConfigDict) -> dict[str, Any]:
  return dict(channels=int(m.channels), channel_mults=tuple(m.channel_mults),
              attention_resolutions=tuple(m.attention_resolutions), heads=int(m.heads),
              groups=int(m.norm_groups), hidden=int(m.hidden), depth=int(m.depth))


def is_conditional(m: ml_collections.ConfigDict) -> bool:
  """Whether the denoiser takes labels (conditional, or classifier-free guidance)."""
  return bool(m.conditional or m.guidance == "classifier_free")


def make_denoiser(m: ml_collections.ConfigDict, shape: tuple[int, ...],
                  num_classes: int | None) -> Denoiser:
  """The network of a `model` config section, for examples of `shape`."""
  return Denoiser(architecture=m.architecture, shape=tuple(shape),
                  learned_variance=m.variance == "learned",
                  num_classes=int(num_classes or 0) if is_conditional(m) else 0,
                  num_res_blocks=int(m.num_res_blocks), **_net_settings(m))


def make_classifier(m: ml_collections.ConfigDict, num_classes: int) -> Classifier:
  """The noise-conditional classifier of a `model` config section."""
  return Classifier(m.architecture, int(num_classes), **_net_settings(m))


def build(config: ml_collections.ConfigDict, codec: Codec, num_classes: int | None,
          name: str, protocol_extra: dict[str, Any] | None = None) -> Method:
  """The diffusion Method for data that `codec` maps into its model space."""
  m = config.model
  shape = codec.shape
  check_model_config(m, shape, num_classes)
  T = int(m.timesteps)
  schedule = schedules.get(m.schedule, T)
  conditional = is_conditional(m)
  null_label = int(num_classes or 0)
  dims = math.prod(shape)
  denoiser = make_denoiser(m, shape, num_classes)
  use_classifier = m.guidance == "classifier"
  classifier = make_classifier(m, num_classes) if use_classifier else None
  tx = optim.make(config.optim, config.train.steps)
  clip = bool(m.clip_denoised)

  def apply_denoiser(params, x, t, labels):
    return denoiser.apply({"params": params}, x, t, labels if conditional else None)

  def p_mean_log_variance(params, x_t, t, labels, clip_x0: bool, stop_mean: bool = False):
    """μ_θ, log σ²_θ of p(x_{t−1} | x_t) (and the raw output)."""
    output, frac = apply_denoiser(params, x_t, t, labels)
    mean_output = jax.lax.stop_gradient(output) if stop_mean else output
    x0_hat, _ = schedules.predict_x0_and_eps(schedule, prediction=m.prediction,
                                             output=mean_output, x_t=x_t, t=t)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
    mean = losses.model_mean(schedule, x0_hat=x0_hat, x_t=x_t, t=t)
    log_variance = schedules.model_log_variance(schedule, variance=m.variance, t=t,
                                                shape=x_t.shape, frac=frac)
    return mean, log_variance, output

  def loss_terms(params, x0, t, noise, labels) -> dict[str, jax.Array]:
    """Per-example training losses for given draws of t and ε."""
    x_t = schedules.q_sample(schedule, x0=x0, t=t, noise=noise)
    target = schedules.training_target(schedule, prediction=m.prediction, x0=x0,
                                       noise=noise, t=t)
    terms = {}
    if m.loss == "vlb" or m.loss == "hybrid":
      # The hybrid loss trains only the variance through L_vlb (Nichol & Dhariwal
      # section 3.1); in bits per dimension, × T so that E_t estimates the sum.
      mean, log_variance, output = p_mean_log_variance(
          params, x_t, t, labels, clip_x0=False, stop_mean=m.loss == "hybrid")
      vb = losses.vlb_term(schedule, x0=x0, x_t=x_t, t=t, model_mean=mean,
                           model_log_variance=log_variance, levels=codec.levels)
      terms["vlb"] = T * vb / (dims * math.log(2.0))
    else:
      output, _ = apply_denoiser(params, x_t, t, labels)
    terms["simple"] = losses.simple_loss(prediction=output, target=target)
    if m.loss == "simple":
      terms["loss"] = terms["simple"]
    elif m.loss == "vlb":
      terms["loss"] = terms["vlb"]
    else:
      terms["loss"] = terms["simple"] + m.hybrid_weight * terms["vlb"]
    terms["x_t"] = x_t
    return terms

  def init(key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    keys = rng.split(key, "denoiser", "classifier", "codec", "base")
    model_state = dict(codec.init_state(batch["x"], keys["codec"]))
    x0 = codec.encode(model_state, batch["x"][:1], keys["codec"])
    t = jnp.zeros((1,), jnp.int32)
    labels = jnp.zeros((1,), jnp.int32)
    # Non-partitionable threefry here only: XLA on CPU compiles flax's one
    # draw per parameter 2-3x faster so, and the values are as random.
    with jax.threefry_partitionable(False):
      params = {"denoiser": denoiser.init(keys["denoiser"], x0, t, labels)["params"]}
      if use_classifier:
        params["classifier"] = classifier.init(keys["classifier"], x0, t)["params"]
    opt_state = {group: tx.init(p) for group, p in params.items()}
    # A real copy: the engine donates the state, and aliases cannot be donated twice.
    model_state["ema"] = jax.tree.map(jnp.copy, params["denoiser"])
    return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                             model_state=model_state)

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    keys = state.keys("time", "noise", "labels", "codec")
    x0 = codec.encode(state.model_state, batch["x"], keys["codec"])
    size = x0.shape[0]
    t = rng.randint(keys["time"], (size,), 0, T)
    noise = rng.normal(keys["noise"], x0.shape)
    labels = batch.get("label")
    true_labels = labels
    if conditional and m.label_dropout > 0:
      drop = rng.bernoulli(keys["labels"], m.label_dropout, (size,))
      labels = jnp.where(drop, null_label, labels)

    def loss_fn(params):
      terms = loss_terms(params["denoiser"], x0, t, noise, labels)
      loss = jnp.mean(terms["loss"])
      metrics = {"loss": loss, "simple": jnp.mean(terms["simple"])}
      if "vlb" in terms:
        metrics["vlb"] = jnp.mean(terms["vlb"])
      total = loss
      if use_classifier:
        # Trained on the same noisy x_t, with the true labels (Dhariwal & Nichol).
        logits = classifier.apply({"params": params["classifier"]},
                                  jax.lax.stop_gradient(terms["x_t"]), t)
        classifier_loss = jnp.mean(losses.classifier_loss(logits=logits,
                                                          labels=true_labels))
        metrics["classifier_loss"] = classifier_loss
        metrics["classifier_accuracy"] = jnp.mean(jnp.argmax(logits, -1) == true_labels)
        total = total + classifier_loss  # disjoint parameters: separate gradients
      return total, metrics

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = collectives.mean_over_devices(grads)
    params, opt_state = {}, {}
    for group in state.params:
      updates, opt_state[group] = tx.update(grads[group], state.opt_state[group],
                                            state.params[group])
      params[group] = optax.apply_updates(state.params[group], updates)
    # EMA with the usual warm-up min(decay, (1 + n)/(10 + n)), so short runs
    # are not dominated by the initial weights.
    step = state.step.astype(jnp.float32)
    decay = jnp.minimum(m.ema_decay, (1.0 + step) / (10.0 + step))
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                       state.model_state["ema"], params["denoiser"])
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state={**state.model_state, "ema": ema})
    metrics["grad_norm"] = optax.tree.norm(grads["denoiser"])
    return new_state, metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array],
               key: jax.Array) -> dict[str, jax.Array]:
    keys = rng.split(key, "codec", "bound")
    x0 = codec.encode(state.model_state, batch["x"], keys["codec"])
    labels = batch.get("label") if conditional else None
    params = state.model_state["ema"]

    def model(x_t, t):
      mean, log_variance, _ = p_mean_log_variance(params, x_t, t, labels, clip_x0=clip)
      return mean, log_variance

    terms = losses.bound_terms(schedule, model=model, x0=x0, key=keys["bound"],
                               levels=codec.levels)
    bits = dims * math.log(2.0)
    # The change of units (model space -> reported units) belongs to the
    # decoder, the only term that is a density of x_0.
    log_det = codec.log_det(state.model_state)
    decoder = terms["decoder"] / bits - log_det / math.log(2.0)
    prior, diffusion = terms["prior"] / bits, terms["diffusion"] / bits
    return {"nll_bound_bits_per_dim": prior + diffusion + decoder,
            "prior_bits_per_dim": prior, "diffusion_bits_per_dim": diffusion,
            "decoder_bits_per_dim": decoder}

  def denoise_plain(params, x, t, cond):
    labels = cond["labels"]
    if labels is not None:
      labels = jnp.where(labels < 0, null_label, labels)
    return apply_denoiser(params["denoiser"], x, t, labels)

  def denoise_guided(params, x, t, cond):
    # (1 − w) f(x, ∅) + w f(x, y): exact at w = 0 and w = 1 (0·a = 0, 1·a = a).
    w = cond["weight"]
    labels = jnp.where(cond["labels"] < 0, null_label, cond["labels"])
    uncond = apply_denoiser(params["denoiser"], x, t, jnp.full_like(labels, null_label))
    cond_out = apply_denoiser(params["denoiser"], x, t, labels)
    return tuple(None if u is None else (1.0 - w) * u + w * c
                 for u, c in zip(uncond, cond_out))

  def classifier_grad(params, x, t, cond):
    """∇_x log p_φ(y | x_t, t) per example; examples with label −1 get none."""
    labels = cond["labels"]

    def log_prob(x):
      logits = classifier.apply({"params": params["classifier"]}, x, t)
      chosen = jnp.take_along_axis(jax.nn.log_softmax(logits),
                                   jnp.maximum(labels, 0)[:, None], axis=-1)[:, 0]
      return jnp.sum(jnp.where(labels >= 0, chosen, 0.0))

    return jax.grad(log_prob)(x)

  def sample(state: TrainState, key: jax.Array, num: int, labels: Any = None,
             guidance: Any = DEFAULT, sampler: str | None = None,
             steps: int | None = None, eta: float | None = None,
             progress: bool = False) -> jax.Array:
    """num samples in data space; see the module docstring for the arguments."""
    sampler = sampler or m.sampler
    if sampler not in samplers.SAMPLERS:
      raise ConfigError(f"sampler {sampler!r} is not one of {choices(samplers.SAMPLERS)}")
    steps = steps or m.sample_steps or T
    plan = samplers.make_plan(schedule, steps)
    needs_labels = conditional or use_classifier
    if labels is None and needs_labels:
      labels = jnp.arange(num, dtype=jnp.int32) % null_label
    elif labels is not None:
      if not needs_labels:
        raise ConfigError(f"method {name!r} is not class-conditional; sample it "
                          "without labels (or train with model.conditional=True)")
      labels = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (num,))
    if isinstance(guidance, str):
      if guidance != DEFAULT:
        raise ConfigError(f"guidance must be a number, None or {DEFAULT!r}, got {guidance!r}")
      guidance = m.guidance_scale if m.guidance != "none" else None
    if guidance is not None and m.guidance == "none":
      raise ConfigError(f"guidance={guidance!r} needs a model trained with "
                        f"model.guidance={choices(GUIDANCE[1:])}")
    denoise, grad_fn, scale = denoise_plain, None, 0.0
    cond = {"labels": labels}
    if guidance is not None and m.guidance == "classifier_free":
      denoise = denoise_guided
      cond["weight"] = jnp.asarray(guidance, jnp.float32)
    elif guidance is not None:
      grad_fn, scale = classifier_grad, jnp.asarray(guidance, jnp.float32)
    keys = rng.split(key, "prior", "chain")
    x_T = jax.random.normal(keys["prior"], (num,) + shape)
    params = {"denoiser": state.model_state["ema"]}
    if use_classifier:
      params["classifier"] = state.params["classifier"]
    settings = samplers.Settings(sampler=sampler, prediction=m.prediction,
                                 variance=m.variance, clip=clip)
    y = samplers.sample(denoise, params, cond, settings, plan, x_T, keys["chain"],
                        m.eta if eta is None else eta, grad_fn, scale,
                        chunk_size=m.progress_chunk if progress else 0,
                        progress=progress, description=f"{name} {sampler} {steps} steps")
    return codec.decode(state.model_state, y)

  protocol = {
      "estimator": "the variational bound L_T + Σ_t L_{t−1} + L_0 over all "
                   f"T={T} steps (Ho et al. 2020, eq. 5), one draw of x_t per "
                   "step and example, EMA weights",
      "units": codec.units,
      "decoder": (f"discretized Gaussian on {codec.levels} levels (Ho et al. eq. 13)"
                  if codec.levels else "Gaussian density"),
      "conditioning": "−log p(x | y) with the true labels" if conditional else "unconditional",
      "schedule": m.schedule, "prediction": m.prediction, "variance": m.variance,
      "loss": m.loss,
      **(protocol_extra or {}),
  }
  return Method(name=name, init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, eval_protocol=protocol)


def data_codec(config: ml_collections.ConfigDict, spec: Any) -> Codec:
  """Maps data affinely from spec.value_range onto [-1, 1]."""
  shape = tuple(int(d) for d in spec.shape)
  lo, hi = (float(v) for v in spec.value_range)
  if not hi > lo:
    raise ConfigError(f"dataset {spec.name!r} has an empty value range [{lo:g}, {hi:g}]")
  dequantized = bool(config.data.get("dequantize", False))
  if spec.binary:
    levels = 2
  elif dequantized:
    levels = None
  else:
    levels = int(spec.levels) if spec.levels else None
  bounded = spec.is_image or levels is not None
  if levels is not None:
    log_det, units = 0.0, (f"bits per dimension of the {levels}-level discrete data "
                           "(a bound on −log P(x) / (D ln 2))")
  elif dequantized:
    # Bits per dimension of the integer grid, as for dequantized images
    # (Theis et al. 2016): x in [0, levels) units.
    log_det = math.log(2.0 / spec.levels)
    units = "bits per dimension of the dequantized data in integer units (0..levels)"
  else:
    log_det = math.log(2.0 / (hi - lo))
    units = "bits per dimension of the density of x in the data's units"

  def encode(model_state, x, key):
    del model_state, key
    return 2.0 * (x - lo) / (hi - lo) - 1.0

  def decode(model_state, y):
    del model_state
    x = lo + (y + 1.0) * (0.5 * (hi - lo))
    return jnp.clip(x, lo, hi) if bounded else x

  return Codec(shape=shape, encode=encode, decode=decode,
               init_state=lambda x, key: {}, log_det=lambda model_state: log_det,
               levels=levels, units=units)


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The `ddpm` method for `config` on data described by `spec`."""
  return build(config, data_codec(config, spec), spec.num_classes, "ddpm")


registry.register(
    "ddpm", family="diffusion",
    description="denoising diffusion: U-Net/MLP, ε/x0/v, DDPM/DDIM, guidance, VLB",
    default_config=default_config, make=make)
