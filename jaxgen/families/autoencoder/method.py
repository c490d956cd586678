"""The autoencoder methods (`ae`, `dae`, `sae`): init, train_step, evaluate, sample.

`make(config, spec, variant)` resolves the config once into frozen
`Settings` (settings.py) and wires the networks (networks.py) to the pure
losses (losses.py); the closures below read only the settings.

Autoencoders have no prior; `sample` decodes codes drawn from a Gaussian fitted
to the training codes (running moments in `model_state`; Ghosh et al. 2020's
ex-post density estimation), which makes it a rough generator at best. A `dae`
can instead sample by its Markov chain (`model.sampler='chain'`, Bengio et al.
2013): corrupt, draw from the reconstruction distribution, repeat, in one
compiled loop; `model.walkback_steps` trains it with walk-back pairs.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import distributions
from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.families.autoencoder import losses, settings as settings_lib
from jaxgen.families.autoencoder.networks import (
    ACTIVATIONS,
    CODE_ACTIVATIONS,
    Decoder,
    Encoder,
)

# Running code moments for `sample`: an exponential average over recent steps.
CODE_MOMENT_DECAY = 0.99


def _protocol(s: settings_lib.Settings) -> dict[str, str]:
  """How `evaluate`'s numbers were computed, saved beside them."""
  m = s.model
  protocol = {
      "estimator": "deterministic: decoder output for the clean test input"
                   + ("; denoising_* for inputs corrupted with the evaluation key"
                      if s.variant == "dae" else ""),
      "units": "reconstruction_loss: the training loss per example (nats for "
               "bernoulli, summed squared error for mse); squared_error: summed "
               "over dimensions of the decoded data; mse = squared_error / D",
      "loss": m.loss,
  }
  if s.variant == "dae":
    protocol["corruption"] = (f"{m.corruption} (rate {m.corruption_rate})"
                              if m.corruption != "gaussian"
                              else f"gaussian (std {m.noise_std})")
  if s.variant == "dae" and m.walkback_steps:
    protocol["walkback"] = (f"up to {m.walkback_steps} extra pairs per example, "
                            f"continue probability {m.walkback_probability:g}")
  protocol["sampler"] = _sampler_protocol(s)
  if s.variant == "sae":
    protocol["sparsity"] = (f"kl, weight {m.kl_weight}, target {m.sparsity_target}"
                            if m.sparsity_penalty == "kl"
                            else f"l1, weight {m.l1_weight}")
  return protocol


def _sampler_protocol(s: settings_lib.Settings) -> str:
  """How `sample` draws (saved with evaluations such as mode coverage)."""
  m = s.model
  if m.sampler == "code_moments":
    return "decoded codes from N(mean, cov) of the running training-code moments"
  std = ("" if m.loss != "mse" else
         f", P(X | x~) = N(r(x~), {m.reconstruction_std:g}^2 I)" if m.reconstruction_std
         else ", P(X | x~) = N(r(x~), s^2 I), s^2 the running mean squared denoising error")
  return (f"dae Markov chain (Bengio et al. 2013): start {m.chain_start}, "
          f"{m.chain_burn_in} transitions of burn-in, then every {m.chain_thinning}; "
          f"{m.chain_count or 'one per sample'} chains; output {m.chain_output}" + std)


def updated_code_moments(moments: dict[str, jax.Array], code: jax.Array,
                         decay: float = CODE_MOMENT_DECAY) -> dict[str, jax.Array]:
  """The running mean and second moment of the codes, averaged over devices."""
  code_mean = collectives.mean_over_devices(jnp.mean(code, axis=0))
  second = collectives.mean_over_devices(code.T @ code / code.shape[0])
  return {
      "code_mean": decay * moments["code_mean"] + (1 - decay) * code_mean,
      "code_second_moment": (decay * moments["code_second_moment"]
                             + (1 - decay) * second)}


def make(config: ml_collections.ConfigDict, spec: Any, variant: str = "ae") -> Method:
  """The autoencoder variant `variant` ('ae', 'dae' or 'sae')."""
  s = settings_lib.resolve(config, spec, variant)
  return _build(s, optim.make(config.optim, optim.schedule_horizon(config.train)),
                precision.compute_dtype(config))


def _build(s: settings_lib.Settings, tx: optax.GradientTransformation,
           compute_dtype: str = "float32") -> Method:
  """The method's functions, closing over frozen settings only.

  Longer than most functions: one closure per `Method` field, sharing the
  networks and the settings; each closure is short.
  """
  m = s.model
  encoder = precision.wrap(Encoder(m.architecture, m.code_dim, m.hidden, m.channels,
                                   ACTIVATIONS[m.activation],
                                   CODE_ACTIVATIONS[m.code_activation]), compute_dtype)
  decoder = precision.wrap(Decoder(m.architecture, s.shape, m.hidden, m.channels,
                                   ACTIVATIONS[m.activation]), compute_dtype)
  dims = math.prod(s.shape)
  sparse = s.variant == "sae"
  # The ML variance of a Gaussian P(X | x~) (dae, mse): tracked in model_state.
  tracks_noise = s.variant == "dae" and m.loss == "mse"

  def corrupt_batch(key: jax.Array, x: jax.Array) -> jax.Array:
    return losses.corrupt(key, x, kind=m.corruption, rate=m.corruption_rate,
                          noise_std=m.noise_std, low=s.low, high=s.high)

  def output_to_data(out: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(out) if m.loss == "bernoulli" else jnp.clip(out, s.low, s.high)

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
      return m.kl_weight * jnp.sum(losses.kl_sparsity_penalty(
          mean_activation=mean_activation, target=m.sparsity_target)), stats
    return m.l1_weight * jnp.mean(losses.l1_penalty(code=code)), stats

  def init(key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    keys = rng.split(key, "encoder", "decoder", "base")
    params = {
        "encoder": encoder.init(keys["encoder"], batch["x"][:1])["params"],
        "decoder": decoder.init(keys["decoder"], jnp.zeros((1, m.code_dim)))["params"],
    }
    # Running code moments for `sample`, starting from N(0, I).
    model_state = {"code_mean": jnp.zeros((m.code_dim,)),
                   "code_second_moment": jnp.eye(m.code_dim)}
    if tracks_noise:   # running mean of Σ (x − r(x~))² / D, from 1
      model_state["reconstruction_mse"] = jnp.ones(())
    return TrainState.create(key=keys["base"], params=params,
                             opt_state={"autoencoder": tx.init(params)},
                             model_state=model_state)

  def noise_std(state: TrainState) -> jax.Array | float:
    """The std of a Gaussian P(X | x~): the setting, or the running ML estimate."""
    if not tracks_noise or m.reconstruction_std > 0:
      return m.reconstruction_std or 1.0
    return jnp.sqrt(state.model_state["reconstruction_mse"])

  def draw_reconstruction(state: TrainState, key: jax.Array, x_tilde: jax.Array):
    """(x ~ P(X | x~), E[X | x~]) under the current parameters."""
    return losses.reconstruction_sample(key, output=apply(state.params, x_tilde)[1],
                                        kind=m.loss, std=noise_std(state))

  def training_inputs(state: TrainState, x: jax.Array):
    """Inputs [P, B, ...] for targets x and their weights [P, B] (P = 1 without walk-back)."""
    if s.variant != "dae":
      return x[None], jnp.ones((1, x.shape[0]), x.dtype)
    if not m.walkback_steps:   # the same key as before walk-back existed
      return corrupt_batch(state.keys("corruption")["corruption"], x)[None], jnp.ones(
          (1, x.shape[0]), x.dtype)
    return losses.walkback_inputs(
        state.keys("walkback")["walkback"], x, corrupt_fn=corrupt_batch,
        draw_fn=lambda k, xt: draw_reconstruction(state, k, xt)[0],
        steps=m.walkback_steps, probability=m.walkback_probability)

  def train_step(state: TrainState, batch: dict[str, jax.Array]
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    x = batch["x"]
    inputs, weights = training_inputs(state, x)       # [P, B, ...], [P, B]
    pairs, batch_size = inputs.shape[0], x.shape[0]
    # Walk-back: the mean loss over the pairs of the *global* batch; the count
    # is not a function of the parameters, so Σ w ℓ / count differentiates as is.
    count = collectives.mean_over_devices(jnp.mean(jnp.sum(weights, axis=0)))

    def loss_fn(params):
      code, out = apply(params, inputs.reshape((pairs * batch_size,) + x.shape[1:]))
      per_pair = losses.reconstruction_loss(
          x=jnp.broadcast_to(x, inputs.shape).reshape(out.shape), output=out,
          kind=m.loss).reshape(pairs, batch_size)
      reconstruction = jnp.mean(jnp.sum(weights * per_pair, axis=0)) / count
      first = code[:batch_size]    # codes of the clean examples' first corruption
      penalty, stats = penalty_terms(first)
      return reconstruction + penalty, (first, out[:batch_size], {
          "reconstruction": reconstruction, "penalty": penalty, **stats})

    (loss, (code, out, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    grads = collectives.mean_over_devices(grads)
    params, opt_state = optim.apply_gradients(tx, grads, state.opt_state["autoencoder"],
                                              state.params)
    model_state = updated_code_moments(state.model_state, jax.lax.stop_gradient(code))
    if tracks_noise:
      squared = collectives.mean_over_devices(jnp.mean(
          distributions.sum_per_example((x - jax.lax.stop_gradient(out)) ** 2))) / dims
      model_state["reconstruction_mse"] = (
          CODE_MOMENT_DECAY * state.model_state["reconstruction_mse"]
          + (1 - CODE_MOMENT_DECAY) * squared)
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state={"autoencoder": opt_state},
                              model_state=model_state)
    metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
    if not sparse:
      del metrics["penalty"]
    if m.walkback_steps:
      metrics["walkback_pairs"] = count
    return new_state, metrics

  def evaluate(state: TrainState, batch: dict[str, jax.Array],
               key: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction error of clean inputs (and of corrupted ones, dae).

    `key` (dae only) is one key or per-example keys [B] (`rng.index_keys`).
    """
    x = batch["x"]
    code, out = apply(state.params, x)
    squared = distributions.sum_per_example((x - output_to_data(out)) ** 2)
    result = {"reconstruction_loss": losses.reconstruction_loss(x=x, output=out,
                                                                kind=m.loss),
              "squared_error": squared,
              "mse": squared / dims,
              "mean_activation": jnp.mean(code, axis=-1),
              "code_l1": losses.l1_penalty(code=code)}
    if s.variant == "dae":
      _, noisy_out = apply(state.params, corrupt_batch(key, x))
      result["denoising_loss"] = losses.reconstruction_loss(x=x, output=noisy_out,
                                                            kind=m.loss)
      result["denoising_mse"] = distributions.sum_per_example(
          (x - output_to_data(noisy_out)) ** 2) / dims
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

  def code_moment_sample(state: TrainState, key: jax.Array, num: int) -> jax.Array:
    """Decodes codes from N(μ, Σ), the running moments of training codes."""
    mean = state.model_state["code_mean"]
    cov = state.model_state["code_second_moment"] - jnp.outer(mean, mean)
    cov = 0.5 * (cov + cov.T) + 1e-5 * jnp.eye(m.code_dim)
    z = jax.random.multivariate_normal(key, mean, cov, (num,), method="eigh")
    if m.code_activation == "sigmoid":
      z = jnp.clip(z, 0.0, 1.0)
    return decode(state, z)

  def chain_start(state: TrainState, key: jax.Array, num: int) -> jax.Array:
    if m.chain_start == "code_moments":
      return code_moment_sample(state, key, num)
    return jax.random.uniform(key, (num,) + s.shape, minval=s.low, maxval=s.high)

  def sample(state: TrainState, key: jax.Array, num: int) -> jax.Array:
    """`num` samples in data space, by the sampler `model.sampler` names."""
    if m.sampler == "code_moments":
      return code_moment_sample(state, key, num)
    return run_chain(
        key, num, start_fn=lambda k, n: chain_start(state, k, n),
        transition_fn=lambda k, x: losses.chain_transition(
            k, x, corrupt_fn=corrupt_batch, denoise_fn=lambda xt: apply(state.params, xt)[1],
            kind=m.loss, std=noise_std(state)),
        settings=m, low=s.low, high=s.high)

  return Method(name=s.variant, init=init, train_step=train_step, sample=sample,
                evaluate=evaluate, reconstruct=reconstruct, encode=encode,
                decode=decode, eval_protocol=_protocol(s))


def run_chain(key: jax.Array, num: int, *, start_fn, transition_fn,
              settings: settings_lib.ModelSettings, low: float, high: float) -> jax.Array:
  """`num` samples of the DAE chain: [num, ...] in the data's range.

  C = chain_count (0: num) chains start at `start_fn(keys["start"], C)`;
  transition t is `transition_fn(fold_in(keys["chain"], t), x) -> (x', mean)`
  with keys = rng.split(key, "start", "chain"). Chain c's sample j is its draw
  (or the mean, `chain_output`) after burn_in + j · thinning transitions; the
  samples are ordered chain by chain. One compiled loop (fori_loop inside scan).
  """
  chains = min(settings.chain_count or num, num)
  per_chain = -(-num // chains)
  keys = rng.split(key, "start", "chain")
  x = start_fn(keys["start"], chains)

  def step(t, carry):
    return transition_fn(jax.random.fold_in(keys["chain"], t), carry[0])

  carry = jax.lax.fori_loop(0, settings.chain_burn_in, step, (x, x))

  def keep(carry, j):
    start = settings.chain_burn_in + (j - 1) * settings.chain_thinning
    carry = jax.lax.fori_loop(start, start + settings.chain_thinning, step, carry)
    return carry, carry

  _, later = jax.lax.scan(keep, carry, jnp.arange(1, per_chain))
  index = 0 if settings.chain_output == "sample" else 1
  kept = jnp.concatenate([carry[index][None], later[index]])     # [per_chain, C, ...]
  samples = jnp.swapaxes(kept, 0, 1).reshape((chains * per_chain,) + x.shape[1:])
  return jnp.clip(samples[:num], low, high)


def make_ae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The plain autoencoder."""
  return make(config, spec, "ae")


def make_dae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The denoising autoencoder."""
  return make(config, spec, "dae")


def make_sae(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The sparse autoencoder."""
  return make(config, spec, "sae")
