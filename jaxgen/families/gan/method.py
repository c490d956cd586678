"""The generic two-player GAN method, and its conditional variants.

One `make` builds every GAN from four pieces, each its own module: the
resolved settings (settings.py), the objective's table entry
(objectives.py), the conditioning strategy (conditioning.py: plain, CGAN,
ACGAN, InfoGAN, semi-supervised) and the model_state updates (updates.py:
EMA, historical averaging, BEGAN's k_t). `players.Players` wires them into
networks and losses; step.py holds the train steps.

State: params {"generator", "discriminator"}; opt_state likewise; model_state
holds the EMA generator (an `optax.EmaState`), BatchNorm statistics of both
networks, BEGAN's k, the historical averages, VBN's reference inputs and the
SSGAN's labelled set.

  config = jaxgen.get_config("gan", "toy2d:ring8")
  config.model.objective = "wgan_gp"            # its published defaults follow
  result = jaxgen.fit(config)
  x = result.method.sample(result.state, jax.random.PRNGKey(0), 512)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgen import registry
from jaxgen.core import optim, precision, projection, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.gan import conditioning, objectives, settings, step, updates
from jaxgen.families.gan.players import Players

Array = jax.Array
Batch = dict[str, Array]


def make(config: ml_collections.ConfigDict, spec: Any, kind: str = "gan") -> Method:
  """The GAN method `kind` (one of settings.KINDS) for `config` on `spec`."""
  s = settings.resolve(config, spec, kind)
  objective = objectives.get(s.objective)
  image_output = len(spec.shape) == 3 or getattr(spec, "image_shape", None) is not None
  players = Players(
      s=s, objective=objective, condition=conditioning.STRATEGIES[kind](s),
      updates=updates.active(s, objective), shape=tuple(spec.shape),
      value_range=tuple(float(v) for v in spec.value_range),
      output="tanh" if image_output else "linear",
      compute_dtype=precision.compute_dtype(config))
  tx_g = optim.make(s.generator_optim, optim.schedule_horizon(config.train))
  tx_d = optim.make(s.discriminator_optim, optim.schedule_horizon(config.train) * s.n_critic)
  train_step = step.consensus_step if s.consensus else step.alternating_step
  protocol = {
      "estimator": "per test example i: the discriminator's loss on (x_i, G(z_i)) "
                   "without penalties, z_i fresh per example; networks in eval mode",
      "objective": s.objective + (f" ({s.hyperparameters['divergence']})"
                                  if "divergence" in s.hyperparameters else ""),
      "published_defaults": s.paper,
      "settings": s.to_json(),
      "units": "the objective's own (nats for cross-entropies); error is a "
               "fraction of test examples",
  }
  return Method(
      name=kind, init=functools.partial(init, players, tx_g, tx_d),
      train_step=functools.partial(train_step, players, tx_g, tx_d),
      sample=functools.partial(sample, players),
      evaluate=functools.partial(evaluate, players),
      decode=functools.partial(decode, players), eval_protocol=protocol,
      project=functools.partial(project, players))


def init(players: Players, tx_g, tx_d, key: Array, batch: Batch) -> TrainState:
  """Both networks' parameters, optimizer states and the model_state entries."""
  s = players.s
  keys = rng.split(key, "generator", "discriminator", "noise", "reference", "base",
                   "discriminator_noise", "dropout")
  inputs = jnp.zeros((2, players.input_dim))
  num_reference = s.reference_batch
  model_state: dict[str, Any] = {}
  if num_reference:
    model_state["reference_inputs"], _ = players.generator_inputs(keys["reference"],
                                                                  num_reference)
    inputs = jnp.concatenate([model_state["reference_inputs"], inputs])
  g_vars = players.generator_net().init(
      {"params": keys["generator"], "noise": keys["noise"]}, inputs, train=False,
      num_reference=num_reference)
  condition = players.condition.condition(jnp.zeros((2,), jnp.int32))
  d_vars = players.discriminator_net().init(
      {"params": keys["discriminator"], "noise": keys["discriminator_noise"],
       "dropout": keys["dropout"]}, batch["x"][:2], condition, train=False)
  params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
  if s.generator_norm == "batch":
    model_state["generator_batch_stats"] = g_vars["batch_stats"]
  if s.discriminator_norm == "batch":
    model_state["discriminator_batch_stats"] = d_vars["batch_stats"]
  model_state.update(players.condition.init_state(players.shape))
  for update in players.updates:
    model_state[update.name] = update.init(params)
  opt_state = {"generator": tx_g.init(params["generator"]),
               "discriminator": tx_d.init(params["discriminator"])}
  return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                           model_state=model_state)


def sampling_params(players: Players, state: TrainState):
  """The generator weights used for samples: the EMA (core.optim.ema), or the raw ones."""
  if players.s.sample_from == "generator":
    return state.params["generator"]
  return updates.ema_weights(state.model_state["ema_generator"], players.s.ema_decay,
                             state.params["generator"])


def _conditioning(players: Players, conditioning_kwargs: dict[str, Any],
                  extra: tuple[str, ...] = ()) -> None:
  unknown = set(conditioning_kwargs) - set(players.condition.names) - set(extra)
  if unknown:
    raise TypeError(f"unknown conditioning {sorted(unknown)} for method {players.s.kind!r}")


def sample(players: Players, state: TrainState, key: Array, num: int,
           **conditioning_kwargs) -> Array:
  """num samples; conditional methods take labels= (default: 0, 1, ..., cycling)
  or InfoGAN's categorical= / continuous= (default: cycling / U(-1, 1))."""
  _conditioning(players, conditioning_kwargs)
  keys = rng.split(key, "inputs", "noise")
  given = players.condition.defaults(num, conditioning_kwargs, decode=False)
  inputs, _ = players.generator_inputs(keys["inputs"], num, given)
  x, _ = players.generate(sampling_params(players, state),
                          state.model_state.get("generator_batch_stats"), inputs,
                          state.model_state, train=False, key=keys["noise"])
  return x


def decode(players: Players, state: TrainState, z: Array, **conditioning_kwargs) -> Array:
  """Samples for noise z: [N, latent_dim] (+ labels= / categorical=, continuous=).

  Without conditioning, labels and categorical codes cycle through 0, 1, ...
  and continuous codes are 0. The style generator's per-layer noise needs
  `noise_key=` (there is no hidden default key).
  """
  _conditioning(players, conditioning_kwargs, extra=("noise_key",))
  key = conditioning_kwargs.pop("noise_key", None)
  if key is None and players.generator_noise:
    raise TypeError("decode with the style generator's per-layer noise needs "
                    "noise_key= (or model.style_noise=False)")
  info = players.condition.defaults(z.shape[0], conditioning_kwargs, decode=True)
  inputs = jnp.concatenate([z, *players.condition.encode(info)], axis=-1)
  x, _ = players.generate(sampling_params(players, state),
                          state.model_state.get("generator_batch_stats"), inputs,
                          state.model_state, train=False, key=key)
  return x


def project(players: Players, state: TrainState, images: Array, key: Array,
            **options) -> tuple[Array, Array, dict[str, Array]]:
  """Codes z [N, latent_dim] whose samples reconstruct `images` (core.projection).

  Conditional kinds project onto the generator of given classes/codes: cgan and
  acgan need `labels=` [N], infogan `categorical=` [N] (continuous codes 0 unless
  given); the conditioning is held fixed, only z moves. The style generator's
  per-layer noise is drawn once from `key` (or `noise_key=`) and held fixed.
  """
  names = players.condition.names
  conditioning = {k: options.pop(k) for k in list(options) if k in names}
  if names and names[0] not in conditioning:
    raise ConfigError(f"projecting onto the {players.s.kind} generator needs "
                      f"{names[0]}= (one per image), held fixed while z is optimised")
  keys = rng.split(key, "restarts", "noise")
  if players.generator_noise:
    conditioning["noise_key"] = options.pop("noise_key", keys["noise"])
  return projection.project(lambda z: decode(players, state, z, **conditioning),
                            players.s.latent_dim, images, keys["restarts"], **options)


def evaluate(players: Players, state: TrainState, batch: Batch, key: Array
             ) -> dict[str, Array]:
  """Per-example held-out discriminator loss and scores (+ classifier error).

  `key` is one key or per-example keys ([batch], from the examples' global
  indices): each example's z is drawn from its own key then, so the values do
  not depend on the batching.
  """
  x, labels = batch["x"], batch.get("label")
  ms = state.model_state
  keys = rng.split(key, "fake", "other")
  fake, info, _ = players.fakes(state.params["generator"], ms, keys["fake"], x.shape[0],
                                train=False)
  params_d, stats_d = state.params["discriminator"], ms.get("discriminator_batch_stats")
  out_real, _ = players.discriminate(params_d, stats_d, x, players.condition.condition(labels),
                                     train=False, key=None)
  out_fake, _ = players.discriminate(params_d, stats_d, fake,
                                     players.condition.condition(info.get("labels")),
                                     train=False, key=None)
  real, fakes = players.score(out_real, x), players.score(out_fake, fake)
  loss = players.objective.discriminator_loss(real, fakes, players.loss_values(ms))
  return {"discriminator_loss": loss, "score_real": real, "score_fake": fakes,
          **players.condition.evaluate(out_real, out_fake, labels, info)}

def _default(kind: str):
  def default_config(data: str = "digits") -> ml_collections.ConfigDict:
    return settings.default_config(kind, data)
  default_config.__doc__ = f"Defaults of {kind!r} on dataset `data` (see settings.py)."
  return default_config


def _make(kind: str):
  def make_kind(config: ml_collections.ConfigDict, spec: Any) -> Method:
    return make(config, spec, kind)
  make_kind.__doc__ = f"The {kind!r} method for `config` on data described by `spec`."
  return make_kind


DESCRIPTIONS = {
    "gan": ("GAN; model.objective = " + settings.objectives_help()
            + "; mlp/dcgan/style nets; tricks.*", "toy2d:ring8"),
    "cgan": ("conditional GAN (Mirza & Osindero 2014): labels into both networks; "
             "any model.objective", "digits"),
    "acgan": ("auxiliary-classifier GAN (Odena et al. 2017): D also classifies real "
              "and generated examples", "digits"),
    "infogan": ("InfoGAN (Chen et al. 2016): categorical + continuous codes, Q head "
                "on the discriminator's trunk", "digits"),
    "ssgan": ("semi-supervised GAN (Salimans et al. 2016): C+1 outputs, "
              "model.labels_per_class labels, feature matching", "digits"),
}
for _kind, (_description, _data) in DESCRIPTIONS.items():
  registry.register(_kind, family="gan", description=_description,
                    default_config=_default(_kind), make=_make(_kind), default_data=_data)
