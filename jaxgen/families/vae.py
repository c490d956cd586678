"""Variational autoencoders: VAE, β-VAE, conditional VAE and IWAE.

Encoder q(z|x) = N(mean(x), diag(exp(logvar(x)))), prior p(z) = N(0, I), decoder
p(x|z) Bernoulli, Gaussian (fixed or learned scale) or discretized logistic.

* `vae` (Kingma & Welling 2014): maximises E_q[log p(x|z)] − β·KL(q(z|x) || p(z))
  with the reparameterisation trick and the closed-form KL; β = 1 is the ELBO,
  β > 1 the β-VAE (Higgins et al. 2017); `kl_warmup_steps` ramps β linearly
  from 0 (Bowman et al. 2016; Sønderby et al. 2016).
* `cvae` (Sohn et al. 2015): the label, one-hot, enters encoder and decoder;
  `sample(state, key, num, labels=...)` draws chosen digits.
* `iwae` (Burda et al. 2016): maximises the importance-weighted bound
  L_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i|x)] with k = `importance_samples`.

Every variant can evaluate log p(x) with K importance samples
(`model.eval_importance_samples`, K up to thousands, in chunks of bounded
memory); `importance_weighted_bound` is the reusable pure function.

  config = jaxgen.get_config("vae")            # digits, MLP, Bernoulli
  result = jaxgen.fit(config, workdir="runs/vae")
  images = result.method.sample(result.state, jax.random.PRNGKey(0), 16)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

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
LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic")
VARIANCES = ("fixed", "learned")
SAMPLE_MODES = ("mean", "sample")
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "softplus": nn.softplus,
               "elu": nn.elu, "gelu": nn.gelu}


def default_config(data: str = "digits") -> ml_collections.ConfigDict:
  """Defaults for a small VAE: on images a Bernoulli decoder over dynamically
  binarised pixels (as in Burda et al. 2016), on 2-D toy data a Gaussian one.

  On 8x8 digits the default trains in well under a minute on two CPU cores.
  """
  vectors = data.startswith("toy2d:")
  return ml_collections.ConfigDict(dict(
      model=dict(
          architecture="mlp",     # "mlp" or "conv"
          latent_dim=8,
          hidden=(256, 128),      # mlp widths; the decoder mirrors them
          channels=(32, 64),      # conv widths, one stride-2 level each
          activation="relu",      # relu, tanh (Burda et al. 2016), softplus, elu, gelu
          # "bernoulli", "gaussian" or "discretized_logistic" (data with levels)
          likelihood="gaussian" if vectors else "bernoulli",
          variance="fixed",       # gaussian / logistic: "fixed" (scale below) or "learned"
          scale=0.05 if vectors else 0.1,  # fixed standard deviation (logistic: scale)
          min_scale=0.01,         # learned: lower bound on the scale
          beta=1.0,               # KL weight (Higgins et al. 2017); 1 = ELBO
          kl_warmup_steps=0,      # >0: β ramps linearly from 0 over these steps
          importance_samples=5,   # iwae: k in the training bound (Burda et al.: 5, 50)
          eval_importance_samples=0,  # >0: evaluate log p(x) with this many samples
          eval_chunk_size=100,    # importance samples per chunk in evaluation
          sample_mode="mean",     # sample(): decoder mean or a likelihood draw
      ),
      optim=optim.default_config("adam", 1e-3),
      # A proper likelihood for the Bernoulli decoder: binary data, a fresh
      # binarisation each time an image is drawn.
      data=dict(binarize="none" if vectors else "dynamic"),
      train=dict(steps=3000, eval_every=500, sample_every=1000),
  ))


class Encoder(nn.Module):
  """x: [B, *shape] (+ condition [B, C]) -> (mean, logvar): [B, latent_dim] each."""

  architecture: str
  latent_dim: int
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array]:
    if self.architecture == "conv":
      if condition is not None:  # one constant plane per class
        planes = jnp.broadcast_to(condition[:, None, None, :],
                                  x.shape[:3] + condition.shape[-1:])
        x = jnp.concatenate([x, planes.astype(x.dtype)], axis=-1)
      h = self.activation(jnn.ConvEncoder(
          features=self.hidden[-1], channels=tuple(self.channels),
          activation=self.activation)(x))
    else:
      h = x.reshape(x.shape[0], -1)
      if condition is not None:
        h = jnp.concatenate([h, condition.astype(h.dtype)], axis=-1)
      h = jnn.MLP(tuple(self.hidden), activation=self.activation,
                  activate_final=True)(h)
    stats = nn.Dense(2 * self.latent_dim, name="posterior")(h)
    mean, logvar = jnp.split(stats, 2, axis=-1)
    return mean, logvar


class Decoder(nn.Module):
  """z: [B, latent_dim] (+ condition [B, C]) -> likelihood parameters [B, *shape, outputs]."""

  architecture: str
  output_shape: tuple[int, ...]
  outputs: int  # parameters per data value: 1 (logits or mean) or 2 (+ scale)
  hidden: Sequence[int]
  channels: Sequence[int]
  activation: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, z: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    if condition is not None:
      z = jnp.concatenate([z, condition.astype(z.dtype)], axis=-1)
    if self.architecture == "conv":
      height, width, channels = self.output_shape
      out = jnn.ConvDecoder(output_shape=(height, width, channels * self.outputs),
                            channels=tuple(reversed(self.channels)),
                            activation=self.activation)(z)
      return out.reshape(out.shape[:-1] + (channels, self.outputs))
    size = math.prod(self.output_shape) * self.outputs
    out = jnn.MLP(tuple(reversed(self.hidden)) + (size,), activation=self.activation)(z)
    return out.reshape((z.shape[0],) + tuple(self.output_shape) + (self.outputs,))


def importance_weighted_bound(log_weights: Callable[[jax.Array], jax.Array],
                              key: jax.Array, *, batch_size: int, latent_dim: int,
                              num_samples: int, chunk_size: int = 100) -> jax.Array:
  """log (1/K) Σ_{j<K} exp(log_weights(ε_j)) per example, in chunks: -> [B].

  Burda et al. 2016, eq. 8, with w_j = p(x, z_j) / q(z_j | x) and z_j the
  reparameterised sample of ε_j ~ N(0, I). `log_weights(eps)` maps
  eps: [C, B, latent_dim] to [C, B]. Sample j of example i is drawn from
  `fold_in(example_key_i, j)` (`importance_noise`), so the estimate does not
  depend on `chunk_size` or the device count, and the first k samples of a
  K-sample estimate are those of the k-sample one. Chunks run in a `lax.scan`
  with a running log-sum-exp: memory grows with `chunk_size`, not K. K = 1 is
  the one-sample ELBO estimate; the bound's expectation rises with K to log p(x).
  """
  if num_samples < 1 or chunk_size < 1:
    raise ConfigError(f"importance sampling needs num_samples and chunk_size >= 1, "
                      f"got {num_samples} and {chunk_size}")
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)

  example_keys = rng.example_keys(key, batch_size)

  def body(carry, chunk):
    running_max, running_sum = carry
    indices = chunk * chunk_size + jnp.arange(chunk_size)
    eps = _noise(example_keys, indices, latent_dim)
    log_w = log_weights(eps)
    # The last chunk may run past K; its extra samples weigh nothing.
    log_w = jnp.where((indices < num_samples)[:, None], log_w, -jnp.inf)
    new_max = jnp.maximum(running_max, jnp.max(log_w, axis=0))
    running_sum = (running_sum * jnp.exp(running_max - new_max)
                   + jnp.sum(jnp.exp(log_w - new_max), axis=0))
    return (new_max, running_sum), None

  init = (jnp.full((batch_size,), -jnp.inf), jnp.zeros((batch_size,)))
  (running_max, running_sum), _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
  return running_max + jnp.log(running_sum) - math.log(num_samples)


def _noise(example_keys: jax.Array, indices: jax.Array, latent_dim: int) -> jax.Array:
  """eps[c, i] ~ N(0, I) from fold_in(example_keys[i], indices[c]): [C, B, latent_dim]."""
  def one(j: jax.Array) -> jax.Array:
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, j),
                                                (latent_dim,)))(example_keys)
  return jax.vmap(one)(indices)


def importance_noise(key: jax.Array, *, batch_size: int, latent_dim: int,
                     indices: jax.Array) -> jax.Array:
  """The noise `importance_weighted_bound` uses for samples `indices`: [C, B, d]."""
  return _noise(rng.example_keys(key, batch_size), jnp.asarray(indices), latent_dim)


def check_config(config: ml_collections.ConfigDict, spec: Any,
                 variant: str = "vae") -> None:
  """One-line errors for settings that do not exist or do not fit the data."""
  m = config.model
  for key, valid in (("architecture", ARCHITECTURES), ("likelihood", LIKELIHOODS),
                     ("variance", VARIANCES), ("sample_mode", SAMPLE_MODES),
                     ("activation", tuple(ACTIVATIONS))):
    if m[key] not in valid:
      raise ConfigError(f"model.{key}={m[key]!r} is not one of {choices(valid)}")
  if m.latent_dim < 1:
    raise ConfigError(f"model.latent_dim must be at least 1, got {m.latent_dim}")
  if not m.hidden:
    raise ConfigError("model.hidden needs at least one width, e.g. (256, 128)")
  if m.beta < 0:
    raise ConfigError(f"model.beta must be non-negative, got {m.beta}")
  if m.kl_warmup_steps < 0:
    raise ConfigError(f"model.kl_warmup_steps must be >= 0 (0 = off), got "
                      f"{m.kl_warmup_steps}")
  if m.eval_importance_samples < 0 or m.eval_chunk_size < 1:
    raise ConfigError(f"model.eval_importance_samples must be >= 0 (0 = off) and "
                      f"model.eval_chunk_size >= 1, got {m.eval_importance_samples} "
                      f"and {m.eval_chunk_size}")
  if variant == "iwae":
    if m.importance_samples < 1:
      raise ConfigError(f"model.importance_samples must be at least 1, got "
                        f"{m.importance_samples}")
    if m.beta != 1.0 or m.kl_warmup_steps:
      raise ConfigError("method 'iwae' trains the importance-weighted bound, which "
                        "has no KL weight; set model.beta=1.0 and "
                        "model.kl_warmup_steps=0, or use method 'vae'")
  if variant == "cvae" and not spec.num_classes:
    raise ConfigError(f"method 'cvae' needs labelled data; dataset {spec.name!r} "
                      f"has no labels (data.labels=True and a labelled dataset)")
  if m.architecture == "conv":
    if len(spec.shape) != 3:
      raise ConfigError(
          f"model.architecture='conv' needs image data [H, W, C]; dataset "
          f"{spec.name!r} gives examples of shape {tuple(spec.shape)}; use "
          f"model.architecture='mlp'")
    jnn.check_image_shape(spec.shape, len(m.channels))
  lo, hi = spec.value_range
  if m.likelihood == "bernoulli" and (lo < 0 or hi > 1):
    raise ConfigError(
        f"model.likelihood='bernoulli' needs data in [0, 1]; dataset {spec.name!r} "
        f"is in [{lo:g}, {hi:g}]; use model.likelihood='gaussian' or data.scale='unit'")
  if m.likelihood in ("gaussian", "discretized_logistic") and m.scale <= 0:
    raise ConfigError(f"model.scale must be positive, got {m.scale}")
  if m.likelihood == "discretized_logistic":
    if spec.levels is None or spec.binary or config.data.get("dequantize", False):
      raise ConfigError(
          f"model.likelihood='discretized_logistic' needs data on a grid of levels; "
          f"dataset {spec.name!r} is "
          + ("binarized" if spec.binary else "dequantized"
             if config.data.get("dequantize", False) else "continuous")
          + "; use data.binarize='none', data.dequantize=False, or another likelihood")


def _make(config: ml_collections.ConfigDict, spec: Any, variant: str) -> Method:
  """The VAE variant `variant` ('vae', 'cvae' or 'iwae') for `config` and `spec`."""
  check_config(config, spec, variant)
  m = config.model
  shape = tuple(spec.shape)
  conditional = variant == "cvae"
  num_classes = spec.num_classes if conditional else 0
  learned_scale = m.likelihood != "bernoulli" and m.variance == "learned"
  activation = ACTIVATIONS[m.activation]
  encoder = Encoder(m.architecture, m.latent_dim, tuple(m.hidden), tuple(m.channels),
                    activation)
  decoder = Decoder(m.architecture, shape, 2 if learned_scale else 1,
                    tuple(m.hidden), tuple(m.channels), activation)
  tx = optim.make(config.optim, config.train.steps)
  lo, hi = spec.value_range
  levels = spec.levels

  def condition_of(labels: jax.Array | None, num: int) -> jax.Array | None:
    """One-hot labels for the cvae (None otherwise); default labels cycle 0..C-1."""
    if not conditional:
      return None
    if labels is None:
      labels = jnp.arange(num) % num_classes
    return jax.nn.one_hot(jnp.asarray(labels).reshape(num), num_classes)

  def likelihood_params(out: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(logits or location, log_scale) from the decoder output."""
    if learned_scale:
      raw = out[..., 1]
      return out[..., 0], jnp.log(m.min_scale + jax.nn.softplus(raw))
    return out[..., 0], jnp.full_like(out[..., 0], math.log(m.scale))

  def log_likelihood(x: jax.Array, out: jax.Array) -> jax.Array:
    location, log_scale = likelihood_params(out)
    if m.likelihood == "bernoulli":
      return distributions.bernoulli_log_prob(x=x, logits=location)
    if m.likelihood == "discretized_logistic":
      return distributions.discretized_logistic_log_prob(
          x=x, mean=location, log_scale=log_scale, levels=levels, low=lo, high=hi)
    return distributions.gaussian_log_prob(x=x, mean=location, log_scale=log_scale)

  def mean_of(out: jax.Array) -> jax.Array:
    """The decoder's image: Bernoulli means; otherwise the location, clipped."""
    location, _ = likelihood_params(out)
    if m.likelihood == "bernoulli":
      return jax.nn.sigmoid(location)
    return jnp.clip(location, lo, hi)

  def posterior(params, x: jax.Array, condition: jax.Array | None):
    return encoder.apply({"params": params["encoder"]}, x, condition)

  def decoder_out(params, z: jax.Array, condition: jax.Array | None) -> jax.Array:
    return decoder.apply({"params": params["decoder"]}, z, condition)

  def elbo_terms(params, x: jax.Array, eps: jax.Array,
                 condition: jax.Array | None) -> dict[str, jax.Array]:
    """Per-example reconstruction log-likelihood, KL and ELBO (nats)."""
    mean, logvar = posterior(params, x, condition)
    z = mean + jnp.exp(0.5 * logvar) * eps  # reparameterisation
    reconstruction = log_likelihood(x, decoder_out(params, z, condition))
    kl = distributions.gaussian_kl(mean=mean, logvar=logvar)
    return {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}

  def log_weights_fn(params, x: jax.Array, condition: jax.Array | None):
    """eps [C, B, d] -> log p(x, z) − log q(z|x) [C, B], the encoder run once."""
    mean, logvar = posterior(params, x, condition)

    def one(eps: jax.Array) -> jax.Array:
      z = mean + jnp.exp(0.5 * logvar) * eps
      log_q = distributions.standard_normal_log_prob(eps) - 0.5 * jnp.sum(logvar, -1)
      return (log_likelihood(x, decoder_out(params, z, condition))
              + distributions.standard_normal_log_prob(z) - log_q)

    return jax.vmap(one)

  def beta_at(step: jax.Array) -> jax.Array:
    if not m.kl_warmup_steps:
      return jnp.asarray(m.beta, jnp.float32)
    ramp = jnp.minimum(1.0, step.astype(jnp.float32) / m.kl_warmup_steps)
    return m.beta * ramp

  def init(key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    keys = rng.split(key, "encoder", "decoder", "base")
    x = batch["x"][:1]
    condition = condition_of(None, 1)
    params = {
        "encoder": encoder.init(keys["encoder"], x, condition)["params"],
        "decoder": decoder.init(keys["decoder"], jnp.zeros((1, m.latent_dim)),
                                condition)["params"],
    }
    return TrainState.create(key=keys["base"], params=params,
                             opt_state={"vae": tx.init(params)})

  def batch_condition(batch: dict[str, jax.Array]) -> jax.Array | None:
    if not conditional:
      return None
    return jax.nn.one_hot(batch["label"], num_classes)

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    x = batch["x"]
    condition = batch_condition(batch)
    keys = state.keys("posterior")
    beta = beta_at(state.step)

    if variant == "iwae":
      k = m.importance_samples
      # [B, k, d] drawn per example, then samples first for log_weights_fn.
      eps = jnp.swapaxes(rng.normal(keys["posterior"], (x.shape[0], k, m.latent_dim)),
                         0, 1)

      def loss_fn(params):
        log_w = log_weights_fn(params, x, condition)(eps)  # [k, B]
        bound = distributions.log_mean_exp(log_w, axis=0)
        aux = {"iwae_bound": jnp.mean(bound), "elbo": jnp.mean(log_w),
               "log_weight_std": jnp.mean(jnp.std(log_w, axis=0))}
        return -jnp.mean(bound), aux
    else:
      eps = rng.normal(keys["posterior"], (x.shape[0], m.latent_dim))

      def loss_fn(params):
        terms = elbo_terms(params, x, eps, condition)
        loss = jnp.mean(beta * terms["kl"] - terms["reconstruction"])
        return loss, {k: jnp.mean(v) for k, v in terms.items()}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = collectives.mean_over_devices(grads)
    updates, opt_state = tx.update(grads, state.opt_state["vae"], state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state={"vae": opt_state})
    metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
    if variant != "iwae":
      metrics["beta"] = beta
    return new_state, metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array],
               key: jax.Array) -> dict[str, jax.Array]:
    x = batch["x"]
    condition = batch_condition(batch)
    keys = rng.split(key, "elbo", "importance")
    eps = rng.normal(keys["elbo"], (x.shape[0], m.latent_dim))
    terms = elbo_terms(state.params, x, eps, condition)
    dims = math.prod(shape)
    out = {**terms, "nll_bound_bits_per_dim": -terms["elbo"] / (dims * math.log(2.0))}
    if m.eval_importance_samples:
      log_px = importance_weighted_bound(
          log_weights_fn(state.params, x, condition), keys["importance"],
          batch_size=x.shape[0], latent_dim=m.latent_dim,
          num_samples=m.eval_importance_samples, chunk_size=m.eval_chunk_size)
      out["log_likelihood"] = log_px
      out["nll"] = -log_px
      out["nll_bits_per_dim"] = -log_px / (dims * math.log(2.0))
    return out

  def encode(state: TrainState, x: jax.Array, key: jax.Array | None = None,
             labels: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Posterior (mean, logvar) of x; `key` is unused (the encoder is deterministic).

    The cvae needs the `labels` of x.
    """
    del key
    if conditional and labels is None:
      raise ConfigError("the cvae encodes (x, label) pairs; pass labels=[N] to encode")
    return posterior(state.params, x, condition_of(labels, x.shape[0]))

  def decode(state: TrainState, z: jax.Array, labels: jax.Array | None = None
             ) -> jax.Array:
    """The decoder's mean image for codes z: [N, latent_dim] -> [N, *shape].

    cvae: `labels` [N] (default: cycling 0, 1, ..., C−1).
    """
    return mean_of(decoder_out(state.params, z, condition_of(labels, z.shape[0])))

  def sample(state: TrainState, key: jax.Array, num: int,
             labels: jax.Array | None = None) -> jax.Array:
    """Draws num examples; cvae: of classes `labels` [num] (default cycling 0..C−1)."""
    if labels is not None and not conditional:
      raise ConfigError(f"method {variant!r} is unconditional; labels= needs method 'cvae'")
    keys = rng.split(key, "prior", "likelihood")
    z = jax.random.normal(keys["prior"], (num, m.latent_dim))
    out = decoder_out(state.params, z, condition_of(labels, num))
    if m.sample_mode == "mean":
      return mean_of(out)
    location, log_scale = likelihood_params(out)
    if m.likelihood == "bernoulli":
      return jax.random.bernoulli(keys["likelihood"], jax.nn.sigmoid(location)
                                  ).astype(jnp.float32)
    if m.likelihood == "discretized_logistic":
      return distributions.discretized_logistic_sample(
          keys["likelihood"], mean=location, log_scale=log_scale, levels=levels,
          low=lo, high=hi)
    noise = jax.random.normal(keys["likelihood"], location.shape)
    return location + jnp.exp(log_scale) * noise

  def reconstruct(state: TrainState, batch: dict[str, jax.Array],
                  key: jax.Array) -> jax.Array:
    condition = batch_condition(batch)
    mean, _ = posterior(state.params, batch["x"], condition)
    return mean_of(decoder_out(state.params, mean, condition))

  estimator = ("ELBO with one reparameterised posterior sample per example and the "
               "closed-form Gaussian KL")
  if m.eval_importance_samples:
    estimator += (f"; log_likelihood = importance-weighted bound with K="
                  f"{m.eval_importance_samples} posterior samples (Burda et al. 2016)")
  protocol = {
      "estimator": estimator,
      "units": "nats per example (elbo, reconstruction, kl, log_likelihood, nll); "
               "bits per dimension for *_bits_per_dim = nats / (D ln 2)",
      "likelihood": m.likelihood + (f" ({m.variance} scale)"
                                    if m.likelihood != "bernoulli" else ""),
      "objective": (f"importance-weighted bound, k={m.importance_samples}"
                    if variant == "iwae" else f"beta-ELBO, beta={m.beta}"
                    + (f", linear warm-up over {m.kl_warmup_steps} steps"
                       if m.kl_warmup_steps else "")),
  }
  if conditional:
    protocol["conditioning"] = "log p(x | label): labels one-hot into encoder and decoder"
  return Method(name=variant, init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, reconstruct=reconstruct, encode=encode,
                decode=decode, eval_protocol=protocol)


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The VAE (β-VAE with optional KL warm-up) for `config` on data described by `spec`."""
  return _make(config, spec, "vae")


def make_cvae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The conditional VAE: one-hot labels into encoder and decoder."""
  return _make(config, spec, "cvae")


def make_iwae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The importance-weighted autoencoder, trained on the k-sample bound."""
  return _make(config, spec, "iwae")


registry.register(
    "vae", family="vae",
    description="variational autoencoder (β, KL warm-up): MLP or conv; Bernoulli, "
                "Gaussian or discretized-logistic decoder",
    default_config=default_config, make=make)
registry.register(
    "cvae", family="vae",
    description="conditional VAE: labels into encoder and decoder; sample(labels=...)",
    default_config=default_config, make=make_cvae)
registry.register(
    "iwae", family="vae",
    description="importance-weighted autoencoder: trains the k-sample bound "
                "(Burda et al. 2016)",
    default_config=default_config, make=make_iwae)
