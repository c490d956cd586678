"""The VAE methods (`vae`, `cvae`, `iwae`): init, train_step, evaluate, sample.

`make(config, spec, variant)` resolves the config once into frozen
`Settings` (settings.py) and wires the networks (networks.py) to the pure
objectives (losses.py); the closures below read only the settings.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import distributions
from jaxgen.core import collectives, optim, precision, projection, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.vae import losses, settings as settings_lib
from jaxgen.families.vae.networks import ACTIVATIONS, Decoder, Encoder


def _networks(s: settings_lib.Settings) -> tuple[Encoder, Decoder]:
  m = s.model
  activation = ACTIVATIONS[m.activation]
  encoder = Encoder(m.architecture, m.latent_dim, m.hidden, m.channels, activation)
  decoder = Decoder(m.architecture, s.shape, 2 if s.learned_scale else 1,
                    m.hidden, m.channels, activation)
  return encoder, decoder


def _protocol(s: settings_lib.Settings) -> dict[str, str]:
  """How `evaluate`'s numbers were computed, saved beside them."""
  m = s.model
  estimator = ("ELBO with one reparameterised posterior sample per example and the "
               "closed-form Gaussian KL")
  if m.eval_importance_samples:
    estimator += (f"; log_likelihood = importance-weighted bound with K="
                  f"{m.eval_importance_samples} posterior samples (Burda et al. 2016)")
  likelihood = m.likelihood + (f" ({m.variance} scale)" if m.likelihood != "bernoulli"
                               else "")
  if s.likelihood_source != "config":
    likelihood += f"; chosen for {s.likelihood_source} data"
  protocol = {
      "estimator": estimator,
      "units": "nats per example (elbo, reconstruction, kl, log_likelihood, nll); "
               "bits per dimension for *_bits_per_dim = nats / (D ln 2)",
      "likelihood": likelihood,
      "objective": (f"importance-weighted bound, k={m.importance_samples}"
                    if s.variant == "iwae" else f"beta-ELBO, beta={m.beta}"
                    + (f", linear warm-up over {m.kl_warmup_steps} steps"
                       if m.kl_warmup_steps else "")),
  }
  if s.conditional:
    protocol["conditioning"] = "log p(x | label): labels one-hot into encoder and decoder"
  return protocol


def make(config: ml_collections.ConfigDict, spec: Any, variant: str = "vae") -> Method:
  """The VAE variant `variant` ('vae', 'cvae' or 'iwae') for `config` and `spec`."""
  s = settings_lib.resolve(config, spec, variant)
  tx = optim.make(config.optim, optim.schedule_horizon(config.train))
  return _build(s, tx, precision.compute_dtype(config))


def _build(s: settings_lib.Settings, tx: optax.GradientTransformation,
           compute_dtype: str = "float32") -> Method:
  """The method's functions, closing over frozen settings only.

  Longer than most functions: one closure per `Method` field, sharing the
  networks and the settings; each closure is short.
  """
  m = s.model
  encoder, decoder = (precision.wrap(net, compute_dtype) for net in _networks(s))
  dims = math.prod(s.shape)

  def condition_of(labels: jax.Array | None, num: int) -> jax.Array | None:
    """One-hot labels for the cvae (None otherwise); default labels cycle 0..C-1."""
    if not s.conditional:
      return None
    if labels is None:
      labels = jnp.arange(num) % s.num_classes
    return jax.nn.one_hot(jnp.asarray(labels).reshape(num), s.num_classes)

  def batch_condition(batch: dict[str, jax.Array]) -> jax.Array | None:
    return jax.nn.one_hot(batch["label"], s.num_classes) if s.conditional else None

  def likelihood_params(out: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(logits or location, log_scale) from the decoder output."""
    if s.learned_scale:
      return out[..., 0], jnp.log(m.min_scale + jax.nn.softplus(out[..., 1]))
    return out[..., 0], jnp.full_like(out[..., 0], math.log(m.scale))

  def log_likelihood(x: jax.Array, out: jax.Array) -> jax.Array:
    location, log_scale = likelihood_params(out)
    return losses.log_likelihood(x=x, location=location, log_scale=log_scale,
                                 kind=m.likelihood, levels=s.levels, low=s.low,
                                 high=s.high)

  def mean_of(out: jax.Array) -> jax.Array:
    """The decoder's image: Bernoulli means; otherwise the location, clipped."""
    location, _ = likelihood_params(out)
    if m.likelihood == "bernoulli":
      return jax.nn.sigmoid(location)
    return jnp.clip(location, s.low, s.high)

  def posterior(params, x: jax.Array, condition: jax.Array | None):
    return encoder.apply({"params": params["encoder"]}, x, condition)

  def decoder_out(params, z: jax.Array, condition: jax.Array | None) -> jax.Array:
    return decoder.apply({"params": params["decoder"]}, z, condition)

  def elbo_terms(params, x: jax.Array, eps: jax.Array,
                 condition: jax.Array | None) -> dict[str, jax.Array]:
    """Per-example reconstruction log-likelihood, KL and ELBO (nats)."""
    mean, logvar = posterior(params, x, condition)
    z = losses.reparameterize(mean=mean, logvar=logvar, eps=eps)
    return losses.elbo_terms(
        reconstruction=log_likelihood(x, decoder_out(params, z, condition)),
        kl=losses.kl_divergence(mean=mean, logvar=logvar))

  def log_weights_fn(params, x: jax.Array, condition: jax.Array | None):
    """eps [C, B, d] -> log p(x, z) − log q(z|x) [C, B], the encoder run once."""
    mean, logvar = posterior(params, x, condition)

    def one(eps: jax.Array) -> jax.Array:
      z = losses.reparameterize(mean=mean, logvar=logvar, eps=eps)
      return losses.log_importance_weight(
          log_likelihood=log_likelihood(x, decoder_out(params, z, condition)),
          z=z, eps=eps, logvar=logvar)

    return jax.vmap(one)

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

  def iwae_loss(params, x, eps, condition):
    """-mean IWAE bound over eps [k, B, d], and diagnostics."""
    log_w = log_weights_fn(params, x, condition)(eps)  # [k, B]
    bound = losses.iwae_bound(log_weights=log_w)
    aux = {"iwae_bound": jnp.mean(bound), "elbo": jnp.mean(log_w),
           "log_weight_std": jnp.mean(jnp.std(log_w, axis=0))}
    return -jnp.mean(bound), aux

  def elbo_loss(params, x, eps, condition, beta):
    """The batch mean of the negative β-ELBO, and its terms."""
    terms = elbo_terms(params, x, eps, condition)
    loss = jnp.mean(losses.beta_elbo_loss(reconstruction=terms["reconstruction"],
                                          kl=terms["kl"], beta=beta))
    return loss, {k: jnp.mean(v) for k, v in terms.items()}

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    x = batch["x"]
    condition = batch_condition(batch)
    keys = state.keys("posterior")
    if s.variant == "iwae":
      # [B, k, d] drawn per example, then samples first for log_weights_fn.
      eps = jnp.swapaxes(rng.normal(keys["posterior"], (x.shape[0],
                                                        m.importance_samples,
                                                        m.latent_dim)), 0, 1)
      loss_fn = lambda params: iwae_loss(params, x, eps, condition)  # noqa: E731
    else:
      beta = losses.kl_weight(step=state.step, beta=m.beta,
                              warmup_steps=m.kl_warmup_steps)
      eps = rng.normal(keys["posterior"], (x.shape[0], m.latent_dim))
      loss_fn = lambda params: elbo_loss(params, x, eps, condition, beta)  # noqa: E731
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = collectives.mean_over_devices(grads)
    params, opt_state = optim.apply_gradients(tx, grads, state.opt_state["vae"],
                                              state.params)
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state={"vae": opt_state})
    metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
    if s.variant != "iwae":
      metrics["beta"] = beta
    return new_state, metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array],
               key: jax.Array) -> dict[str, jax.Array]:
    """Per-example ELBO terms (and log p(x) by importance sampling).

    `key` is one key or per-example keys [B] (`rng.index_keys`): with the
    latter, an example's numbers do not depend on the batch it is in.
    """
    x = batch["x"]
    condition = batch_condition(batch)
    keys = rng.split(key, "elbo", "importance")
    eps = rng.normal(keys["elbo"], (x.shape[0], m.latent_dim))
    terms = elbo_terms(state.params, x, eps, condition)
    out = {**terms, "nll_bound_bits_per_dim": -terms["elbo"] / (dims * math.log(2.0))}
    if m.eval_importance_samples:
      log_px = losses.importance_weighted_bound(
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
    if s.conditional and labels is None:
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
    if labels is not None and not s.conditional:
      raise ConfigError(f"method {s.variant!r} is unconditional; labels= needs method "
                        f"'cvae'")
    keys = rng.split(key, "prior", "likelihood")
    z = jax.random.normal(keys["prior"], (num, m.latent_dim))
    out = decoder_out(state.params, z, condition_of(labels, num))
    if m.sample_mode == "mean":
      return mean_of(out)
    return draw(keys["likelihood"], out)

  def draw(key: jax.Array, out: jax.Array) -> jax.Array:
    """One draw of the likelihood given the decoder output."""
    location, log_scale = likelihood_params(out)
    if m.likelihood == "bernoulli":
      return jax.random.bernoulli(key, jax.nn.sigmoid(location)).astype(jnp.float32)
    if m.likelihood == "discretized_logistic":
      return distributions.discretized_logistic_sample(
          key, mean=location, log_scale=log_scale, levels=s.levels, low=s.low,
          high=s.high)
    return location + jnp.exp(log_scale) * jax.random.normal(key, location.shape)

  def reconstruct(state: TrainState, batch: dict[str, jax.Array],
                  key: jax.Array) -> jax.Array:
    condition = batch_condition(batch)
    mean, _ = posterior(state.params, batch["x"], condition)
    return mean_of(decoder_out(state.params, mean, condition))

  def project(state: TrainState, images: jax.Array, key: jax.Array,
              labels: jax.Array | None = None, **options):
    """Codes whose decoder means reconstruct `images` (core.projection); cvae: labels=."""
    if s.conditional and labels is None:
      raise ConfigError("projecting onto the cvae's decoder needs labels= (one per image)")
    return projection.project(lambda z: decode(state, z, labels), m.latent_dim, images,
                              key, **options)

  return Method(name=s.variant, init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, reconstruct=reconstruct, encode=encode,
                decode=decode, eval_protocol=_protocol(s), project=project)


def make_vae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The VAE (β-VAE with optional KL warm-up) for `config` on data described by `spec`."""
  return make(config, spec, "vae")


def make_cvae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The conditional VAE: one-hot labels into encoder and decoder."""
  return make(config, spec, "cvae")


def make_iwae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The importance-weighted autoencoder, trained on the k-sample bound."""
  return make(config, spec, "iwae")
