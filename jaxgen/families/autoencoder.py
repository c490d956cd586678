"""Deterministic autoencoders: plain (`ae`), denoising (`dae`) and sparse (`sae`).

An encoder maps x to a code h = f(x), a decoder maps it back; training
minimises a per-example reconstruction loss (squared error, or Bernoulli
cross-entropy for data in [0, 1]).

* `dae` (Vincent et al. 2008, 2010): the encoder sees a corrupted x̃, the loss
  compares the reconstruction with the clean x. Corruptions: additive Gaussian
  noise, masking (a fraction ν of inputs set to the background value) and
  salt-and-pepper (a fraction ν set to the minimum or maximum, half each),
  drawn fresh every step from the step's key, one draw per example.
* `sae`: an L1 penalty λ Σ_j |h_j| on the code, or the KL penalty
  β Σ_j KL(ρ || ρ̂_j) between a target activation ρ and each unit's mean
  activation ρ̂_j over the batch (Ng 2011, CS294A notes), with a sigmoid code.

Autoencoders have no prior; `sample` decodes codes drawn from a Gaussian fitted
to the training codes (running moments in `model_state`; Ghosh et al. 2020's
ex-post density estimation), which makes it a rough generator at best.

  config = jaxgen.get_config("dae")
  result = jaxgen.fit(config)
  codes = result.method.encode(result.state, x)
  images = result.method.reconstruct(result.state, {"x": x}, key)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import distributions
from jaxgen import nn as jnn
from jaxgen import registry
from jaxgen.core import collectives, optim, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError, choices

ARCHITECTURES = ("mlp", "conv")
LOSSES = ("bernoulli", "mse")
CORRUPTIONS = ("gaussian", "masking", "salt_pepper")
PENALTIES = ("kl", "l1")
CODE_ACTIVATIONS = {"linear": lambda h: h, "sigmoid": nn.sigmoid, "relu": nn.relu,
                    "tanh": jnp.tanh}
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "gelu": nn.gelu,
               "sigmoid": nn.sigmoid}
# Running code moments for `sample`: an exponential average over recent steps.
CODE_MOMENT_DECAY = 0.99


# ------------------------------------------------------------------ losses
def reconstruction_loss(*, x: jax.Array, output: jax.Array, kind: str) -> jax.Array:
  """Per-example loss of the decoder output: [B, ...] -> [B].

  'bernoulli': cross-entropy −log p(x | sigmoid(output)), x in [0, 1] (output
  holds logits); 'mse': the sum of squared errors Σ (x − output)².
  """
  chex.assert_equal_shape([x, output])
  if kind == "bernoulli":
    return -distributions.bernoulli_log_prob(x=x, logits=output)
  if kind == "mse":
    return distributions.sum_per_example((x - output) ** 2)
  raise ConfigError(f"reconstruction loss {kind!r} is not one of {choices(LOSSES)}")


def l1_penalty(*, code: jax.Array) -> jax.Array:
  """Σ_j |h_j| per example: [B, d] -> [B]."""
  return jnp.sum(jnp.abs(code), axis=-1)


def kl_sparsity_penalty(*, mean_activation: jax.Array, target: float) -> jax.Array:
  """KL(Bernoulli(ρ) || Bernoulli(ρ̂_j)) per unit: [d] -> [d].

  ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), Ng 2011 (CS294A notes, sec. 3).
  ρ̂ is clipped to [1e-6, 1 − 1e-6] so a dead or saturated unit stays finite.
  """
  if not 0.0 < target < 1.0:
    raise ConfigError(f"model.sparsity_target must lie in (0, 1), got {target}")
  rho_hat = jnp.clip(mean_activation, 1e-6, 1.0 - 1e-6)
  return (target * jnp.log(target / rho_hat)
          + (1.0 - target) * jnp.log((1.0 - target) / (1.0 - rho_hat)))


def corrupt(key: jax.Array, x: jax.Array, *, kind: str, rate: float = 0.25,
            noise_std: float = 0.5, low: float = 0.0, high: float = 1.0) -> jax.Array:
  """A corrupted copy x̃ of x: [B, ...] -> [B, ...], one independent draw per example.

  'gaussian': x + noise_std·ε; 'masking': each value with probability `rate`
  set to `low` (the background); 'salt_pepper': each value with probability
  `rate` set to `low` or `high`, each with probability ½ (Vincent et al. 2010,
  sec. 4.2). Noise comes from `jaxgen.core.rng`, so it does not depend on
  how the batch is spread over devices.
  """
  if kind == "gaussian":
    return x + noise_std * rng.normal(key, x.shape, x.dtype)
  if kind == "masking":
    return jnp.where(rng.bernoulli(key, rate, x.shape), jnp.asarray(low, x.dtype), x)
  if kind == "salt_pepper":
    u = rng.uniform(key, x.shape)
    # u < rate/2: pepper (low); rate/2 <= u < rate: salt (high); else unchanged.
    noisy = jnp.where(u < 0.5 * rate, low, high).astype(x.dtype)
    return jnp.where(u < rate, noisy, x)
  raise ConfigError(f"model.corruption={kind!r} is not one of {choices(CORRUPTIONS)}")


# ------------------------------------------------------------------ modules
class Encoder(nn.Module):
  """x: [B, *shape] -> code [B, code_dim]."""

  architecture: str
  code_dim: int
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array]
  code_activation: Callable[[jax.Array], jax.Array]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.architecture == "conv":
      # Strided convolutions down, then a Dense to the code.
      h = jnn.ConvEncoder(features=self.code_dim, channels=tuple(self.channels),
                          activation=self.activation)(x)
    else:
      h = jnn.MLP(tuple(self.hidden) + (self.code_dim,),
                  activation=self.activation)(x.reshape(x.shape[0], -1))
    return self.code_activation(h)


class Decoder(nn.Module):
  """code [B, code_dim] -> output [B, *shape] (logits or values)."""

  architecture: str
  output_shape: tuple[int, ...]
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array]

  @nn.compact
  def __call__(self, code: jax.Array) -> jax.Array:
    if self.architecture == "conv":
      # Learned upsampling with PhaseConvTranspose (fast on CPU; jaxgen.nn).
      return jnn.ConvDecoder(output_shape=tuple(self.output_shape),
                             channels=tuple(reversed(self.channels)),
                             activation=self.activation)(code)
    size = math.prod(self.output_shape)
    out = jnn.MLP(tuple(reversed(self.hidden)) + (size,), activation=self.activation)(code)
    return out.reshape((code.shape[0],) + tuple(self.output_shape))


# ------------------------------------------------------------------ configs
def _base_config(data: str, method: str) -> ml_collections.ConfigDict:
  vectors = data.startswith("toy2d:")
  return ml_collections.ConfigDict(dict(
      model=dict(
          architecture="mlp",     # "mlp" or "conv"
          code_dim=2 if vectors else 32,
          hidden=(256, 128),      # mlp widths; the decoder mirrors them
          channels=(32, 64),      # conv widths, one stride-2 level each
          activation="relu",
          # The code's nonlinearity; the KL sparsity penalty needs "sigmoid".
          code_activation="sigmoid" if method == "sae" else "linear",
          # "bernoulli" (cross-entropy; data in [0, 1]) or "mse" (squared error)
          loss="mse" if vectors else "bernoulli",
          # dae (Vincent et al. 2010): "gaussian", "masking" or "salt_pepper"
          corruption="masking",
          corruption_rate=0.25,   # masking / salt_pepper: share of inputs corrupted
          noise_std=0.5,          # gaussian: standard deviation of the added noise
          # sae: "kl" (Ng 2011: ρ = 0.05, β = 3) or "l1" (weight λ)
          sparsity_penalty="kl",
          sparsity_target=0.05,   # ρ
          kl_weight=3.0,          # β
          # λ: no canonical value; 0.1 keeps ~6 of 32 relu units busy on
          # digits with the cross-entropy loss (mean activation ~0.2).
          l1_weight=0.1,
      ),
      optim=optim.default_config("adam", 1e-3),
      data=dict(binarize="none"),
      train=dict(steps=3000, eval_every=500, sample_every=1000),
  ))


def default_config_ae(data: str = "digits") -> ml_collections.ConfigDict:
  """The plain autoencoder's defaults."""
  return _base_config(data, "ae")


def default_config_dae(data: str = "digits") -> ml_collections.ConfigDict:
  """The denoising autoencoder's defaults: masking noise, ν = 0.25 (Vincent et al. 2010)."""
  return _base_config(data, "dae")


def default_config_sae(data: str = "digits") -> ml_collections.ConfigDict:
  """The sparse autoencoder's defaults: sigmoid code, KL penalty ρ = 0.05, β = 3."""
  return _base_config(data, "sae")


def check_config(config: ml_collections.ConfigDict, spec: Any, variant: str) -> None:
  """One-line errors for settings that do not exist or do not fit the data."""
  m = config.model
  for key, valid in (("architecture", ARCHITECTURES), ("loss", LOSSES),
                     ("activation", tuple(ACTIVATIONS)),
                     ("code_activation", tuple(CODE_ACTIVATIONS)),
                     ("corruption", CORRUPTIONS), ("sparsity_penalty", PENALTIES)):
    if m[key] not in valid:
      raise ConfigError(f"model.{key}={m[key]!r} is not one of {choices(valid)}")
  if m.code_dim < 1:
    raise ConfigError(f"model.code_dim must be at least 1, got {m.code_dim}")
  if not m.hidden:
    raise ConfigError("model.hidden needs at least one width, e.g. (256, 128)")
  if variant == "dae":
    if m.corruption == "gaussian" and m.noise_std <= 0:
      raise ConfigError(f"model.noise_std must be positive, got {m.noise_std}")
    if m.corruption != "gaussian" and not 0.0 < m.corruption_rate < 1.0:
      raise ConfigError(f"model.corruption_rate must lie in (0, 1), got "
                        f"{m.corruption_rate}")
  if variant == "sae":
    for key in ("kl_weight", "l1_weight"):
      if m[key] < 0:
        raise ConfigError(f"model.{key} must be non-negative, got {m[key]}")
    if m.sparsity_penalty == "kl":
      if m.code_activation != "sigmoid":
        raise ConfigError(
            f"model.sparsity_penalty='kl' treats code units as firing rates in "
            f"(0, 1); set model.code_activation='sigmoid' (got "
            f"{m.code_activation!r}) or use model.sparsity_penalty='l1'")
      if not 0.0 < m.sparsity_target < 1.0:
        raise ConfigError(f"model.sparsity_target must lie in (0, 1), got "
                          f"{m.sparsity_target}")
  if m.architecture == "conv":
    if len(spec.shape) != 3:
      raise ConfigError(
          f"model.architecture='conv' needs image data [H, W, C]; dataset "
          f"{spec.name!r} gives examples of shape {tuple(spec.shape)}; use "
          f"model.architecture='mlp'")
    jnn.check_image_shape(spec.shape, len(m.channels))
  lo, hi = spec.value_range
  if m.loss == "bernoulli" and (lo < 0 or hi > 1):
    raise ConfigError(
        f"model.loss='bernoulli' needs data in [0, 1]; dataset {spec.name!r} is in "
        f"[{lo:g}, {hi:g}]; use model.loss='mse' or data.scale='unit'")


# ------------------------------------------------------------------ method
def _make(config: ml_collections.ConfigDict, spec: Any, variant: str) -> Method:
  """The autoencoder variant `variant` ('ae', 'dae' or 'sae')."""
  check_config(config, spec, variant)
  m = config.model
  shape = tuple(spec.shape)
  encoder = Encoder(m.architecture, m.code_dim, tuple(m.hidden), tuple(m.channels),
                    ACTIVATIONS[m.activation], CODE_ACTIVATIONS[m.code_activation])
  decoder = Decoder(m.architecture, shape, tuple(m.hidden), tuple(m.channels),
                    ACTIVATIONS[m.activation])
  tx = optim.make(config.optim, config.train.steps)
  lo, hi = (float(v) for v in spec.value_range)
  sparse = variant == "sae"

  def corrupt_batch(key: jax.Array, x: jax.Array) -> jax.Array:
    return corrupt(key, x, kind=m.corruption, rate=m.corruption_rate,
                   noise_std=m.noise_std, low=lo, high=hi)

  def output_to_data(out: jax.Array) -> jax.Array:
    if m.loss == "bernoulli":
      return jax.nn.sigmoid(out)
    return jnp.clip(out, lo, hi)

  def apply(params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    code = encoder.apply({"params": params["encoder"]}, x)
    return code, decoder.apply({"params": params["decoder"]}, code)

  def penalty_terms(code: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The batch's sparsity penalty (a scalar) and the achieved activations."""
    # ρ̂ is a batch statistic that feeds the update: averaged over devices.
    mean_activation = collectives.mean_over_devices(jnp.mean(code, axis=0))
    stats = {"mean_activation": jnp.mean(mean_activation),
             "mean_activation_min": jnp.min(mean_activation),
             "mean_activation_max": jnp.max(mean_activation)}
    if not sparse:
      return jnp.zeros(()), stats
    if m.sparsity_penalty == "kl":
      return m.kl_weight * jnp.sum(kl_sparsity_penalty(
          mean_activation=mean_activation, target=m.sparsity_target)), stats
    return m.l1_weight * jnp.mean(l1_penalty(code=code)), stats

  def init(key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    keys = rng.split(key, "encoder", "decoder", "base")
    x = batch["x"][:1]
    params = {
        "encoder": encoder.init(keys["encoder"], x)["params"],
        "decoder": decoder.init(keys["decoder"], jnp.zeros((1, m.code_dim)))["params"],
    }
    # Running code moments for `sample`, starting from N(0, I).
    model_state = {"code_mean": jnp.zeros((m.code_dim,)),
                   "code_second_moment": jnp.eye(m.code_dim)}
    return TrainState.create(key=keys["base"], params=params,
                             opt_state={"autoencoder": tx.init(params)},
                             model_state=model_state)

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    x = batch["x"]
    keys = state.keys("corruption")
    x_in = corrupt_batch(keys["corruption"], x) if variant == "dae" else x

    def loss_fn(params):
      code, out = apply(params, x_in)
      reconstruction = jnp.mean(reconstruction_loss(x=x, output=out, kind=m.loss))
      penalty, stats = penalty_terms(code)
      return reconstruction + penalty, (code, {"reconstruction": reconstruction,
                                               "penalty": penalty, **stats})

    (loss, (code, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = collectives.mean_over_devices(grads)
    updates, opt_state = tx.update(grads, state.opt_state["autoencoder"], state.params)
    params = optax.apply_updates(state.params, updates)
    code = jax.lax.stop_gradient(code)
    code_mean = collectives.mean_over_devices(jnp.mean(code, axis=0))
    second = collectives.mean_over_devices(code.T @ code / code.shape[0])
    decay = CODE_MOMENT_DECAY
    model_state = {
        "code_mean": decay * state.model_state["code_mean"] + (1 - decay) * code_mean,
        "code_second_moment": (decay * state.model_state["code_second_moment"]
                               + (1 - decay) * second)}
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state={"autoencoder": opt_state},
                              model_state=model_state)
    metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
    if not sparse:
      del metrics["penalty"]
    return new_state, metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array],
               key: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction error of clean inputs (and of corrupted ones, dae)."""
    x = batch["x"]
    code, out = apply(state.params, x)
    squared = distributions.sum_per_example((x - output_to_data(out)) ** 2)
    result = {"reconstruction_loss": reconstruction_loss(x=x, output=out, kind=m.loss),
              "squared_error": squared,
              "mse": squared / math.prod(shape),
              "mean_activation": jnp.mean(code, axis=-1),
              "code_l1": l1_penalty(code=code)}
    if variant == "dae":
      _, noisy_out = apply(state.params, corrupt_batch(key, x))
      result["denoising_loss"] = reconstruction_loss(x=x, output=noisy_out, kind=m.loss)
      result["denoising_mse"] = distributions.sum_per_example(
          (x - output_to_data(noisy_out)) ** 2) / math.prod(shape)
    return result

  def encode(state: TrainState, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """The code of x: [N, *shape] -> [N, code_dim]; `key` is unused."""
    del key
    return encoder.apply({"params": state.params["encoder"]}, x)

  def decode(state: TrainState, code: jax.Array) -> jax.Array:
    """Decoded images in data space: [N, code_dim] -> [N, *shape]."""
    return output_to_data(decoder.apply({"params": state.params["decoder"]}, code))

  def reconstruct(state: TrainState, batch: dict[str, jax.Array],
                  key: jax.Array | None = None) -> jax.Array:
    """decode(encode(x)) of the inputs as given (pass corrupted x to denoise)."""
    return decode(state, encode(state, batch["x"]))

  def sample(state: TrainState, key: jax.Array, num: int) -> jax.Array:
    """Decodes codes from N(μ, Σ), the running moments of training codes."""
    mean = state.model_state["code_mean"]
    cov = state.model_state["code_second_moment"] - jnp.outer(mean, mean)
    cov = 0.5 * (cov + cov.T) + 1e-5 * jnp.eye(m.code_dim)
    z = jax.random.multivariate_normal(key, mean, cov, (num,), method="eigh")
    if m.code_activation == "sigmoid":
      z = jnp.clip(z, 0.0, 1.0)
    return decode(state, z)

  protocol = {
      "estimator": "deterministic: decoder output for the clean test input"
                   + ("; denoising_* for inputs corrupted with the evaluation key"
                      if variant == "dae" else ""),
      "units": "reconstruction_loss: the training loss per example (nats for "
               "bernoulli, summed squared error for mse); squared_error: summed "
               "over dimensions of the decoded data; mse = squared_error / D",
      "loss": m.loss,
  }
  if variant == "dae":
    protocol["corruption"] = (f"{m.corruption} (rate {m.corruption_rate})"
                              if m.corruption != "gaussian"
                              else f"gaussian (std {m.noise_std})")
  if sparse:
    protocol["sparsity"] = (f"kl, weight {m.kl_weight}, target {m.sparsity_target}"
                            if m.sparsity_penalty == "kl"
                            else f"l1, weight {m.l1_weight}")
  return Method(name=variant, init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, reconstruct=reconstruct, encode=encode,
                decode=decode, eval_protocol=protocol)


def make_ae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The plain autoencoder."""
  return _make(config, spec, "ae")


def make_dae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The denoising autoencoder."""
  return _make(config, spec, "dae")


def make_sae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The sparse autoencoder."""
  return _make(config, spec, "sae")


registry.register(
    "ae", family="autoencoder",
    description="autoencoder: MLP or conv, squared error or cross-entropy",
    default_config=default_config_ae, make=make_ae)
registry.register(
    "dae", family="autoencoder",
    description="denoising autoencoder: gaussian, masking or salt-and-pepper corruption",
    default_config=default_config_dae, make=make_dae)
registry.register(
    "sae", family="autoencoder",
    description="sparse autoencoder: KL (target activation) or L1 penalty on the code",
    default_config=default_config_sae, make=make_sae)
