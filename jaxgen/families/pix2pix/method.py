"""pix2pix (Isola et al. 2017): paired image-to-image translation as a conditional GAN.

G, a U-Net with skip connections, maps a source image to its target; its
only noise is dropout, active in training and (as in the paper) at test time.
D, a PatchGAN, scores (source, image) pairs patch by patch. One step updates D
on real pairs (source, x) against (source, G(source)), then G on
adversarial_weight · L_cGAN + λ · L_L1 against the updated D, with the same
dropout mask (one forward pass in the paper's code). `model.adversarial_weight=0`
is the L1-only generator of the paper's ablation (D is then never updated).

Data: paired batches {"x": target, "source": input} (jaxgen.data: data.pair =
'edges' | 'masked', an npz with a `source` array, or pairs:<dir>,<dir>).

State: params and opt_state {"generator", "discriminator"}; model_state holds
`default_sources` (the first `model.default_sources` sources of the first
training batch, what `sample` translates when given no source=) and, with
model.norm='batch', both networks' batch statistics.

  config = jaxgen.get_config("pix2pix", "digits")       # edges -> digit
  result = jaxgen.fit(config)
  y = result.method.sample(result.state, key, 8, source=sources)  # [8, 8, 8, 1]
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.gan import two_player
from jaxgen.families.pix2pix import losses, networks
from jaxgen.families.pix2pix import settings as settings_lib
from jaxgen.metrics import lenet
from jaxgen.nn.lenet import prepare

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]

KIND = "pix2pix"
# The shipped digit classifiers (jaxgen.metrics.lenet), by image shape.
CLASSIFIERS = {(8, 8, 1): "digits", (28, 28, 1): "mnist"}


class Nets(NamedTuple):
  """The resolved settings, the data's geometry and the networks' builders."""

  s: settings_lib.Settings
  shape: tuple[int, ...]
  source_shape: tuple[int, ...]
  value_range: tuple[float, float]
  compute_dtype: str
  classifier: Any   # lenet.LeNetParams or None

  def generator(self):
    return precision.wrap(networks.UNetGenerator(
        channels=self.s.generator_channels, out_channels=self.shape[-1], norm=self.s.norm,
        dropout=self.s.dropout, dropout_layers=self.s.dropout_layers,
        axis_name=collectives.current_pmap_axis()), self.compute_dtype)

  def discriminator(self):
    return precision.wrap(networks.PatchDiscriminator(
        channels=self.s.discriminator_channels, kernel=self.s.discriminator_kernel,
        norm=self.s.norm, axis_name=collectives.current_pmap_axis()), self.compute_dtype)

  def to_unit(self, x: Array) -> Array:
    """Data in value_range -> [-1, 1], where tanh outputs and the L1 of the paper live."""
    low, high = self.value_range
    return 2.0 * (x - low) / (high - low) - 1.0

  def to_data(self, y: Array) -> Array:
    low, high = self.value_range
    return low + (high - low) * (y + 1.0) / 2.0

  def generate(self, params, stats, source: Array, *, train: bool, key: Array | None
               ) -> tuple[Array, Any]:
    """G(source) in data space, and G's updated batch statistics (or None)."""
    variables = {"params": params} | ({"batch_stats": stats} if stats is not None else {})
    mutable = ["batch_stats"] if train and stats is not None else False
    out = self.generator().apply(variables, self.to_unit(source), train=train,
                                 dropout_key=key, mutable=mutable)
    out, updates = out if mutable else (out, {})
    return self.to_data(out), updates.get("batch_stats", stats)

  def discriminate(self, params, stats, source: Array, image: Array, *, train: bool
                   ) -> tuple[Array, Any]:
    """Patch logits of (source, image), and D's updated batch statistics (or None)."""
    variables = {"params": params} | ({"batch_stats": stats} if stats is not None else {})
    mutable = ["batch_stats"] if train and stats is not None else False
    out = self.discriminator().apply(variables, self.to_unit(source), self.to_unit(image),
                                     train=train, mutable=mutable)
    out, updates = out if mutable else (out, {})
    return out, updates.get("batch_stats", stats)


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The pix2pix method for `config` on paired image data described by `spec`."""
  s = settings_lib.resolve(config, spec)
  classifier = None
  if spec.num_classes == 10 and tuple(spec.shape) in CLASSIFIERS:
    classifier = lenet.load(CLASSIFIERS[tuple(spec.shape)])
  nets = Nets(s=s, shape=tuple(spec.shape), source_shape=tuple(spec.source_shape),
              value_range=tuple(float(v) for v in spec.value_range),
              compute_dtype=precision.compute_dtype(config), classifier=classifier)
  generator_optim, discriminator_optim = two_player.resolve_optimizers(
      config, settings_lib.PAPER_OPTIM)
  horizon = optim.schedule_horizon(config.train)
  tx_g = optim.make(generator_optim, horizon, "generator_optim")
  tx_d = optim.make(discriminator_optim, horizon, "discriminator_optim")
  protocol = {
      "estimator": "per test example i: G(source_i) with dropout "
                   + ("drawn from example i's key" if s.sample_dropout else "off")
                   + "; l1 = mean |G(source_i) - x_i| over pixels, in data units"
                   + (f"; classifier_accuracy = 1[argmax LeNet-{classifier.name}"
                      "(G(source_i)) = label_i] (jaxgen.metrics.lenet)"
                      if classifier is not None else ""),
      "pair": spec.pair, "settings": s.to_json(),
      "units": "data units (value range " + f"{nets.value_range}); accuracy a fraction",
  }
  return Method(
      name=KIND, init=functools.partial(init, nets, tx_g, tx_d),
      train_step=functools.partial(train_step, nets, tx_g, tx_d),
      sample=functools.partial(sample, nets), evaluate=functools.partial(evaluate, nets),
      eval_protocol=protocol)


def init(nets: Nets, tx_g, tx_d, key: Array, batch: Batch) -> TrainState:
  """Both networks, their Adam states, and the sources `sample` translates by default."""
  keys = rng.split(key, "generator", "discriminator", "base")
  source = nets.to_unit(batch["source"][:2])
  g_vars = nets.generator().init(keys["generator"], source, train=False)
  d_vars = nets.discriminator().init(keys["discriminator"], source,
                                     nets.to_unit(batch["x"][:2]), train=False)
  params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
  model_state = {"default_sources": jnp.asarray(
      batch["source"][:nets.s.default_sources], jnp.float32)}
  if nets.s.norm == "batch":
    model_state["generator_batch_stats"] = g_vars["batch_stats"]
    model_state["discriminator_batch_stats"] = d_vars["batch_stats"]
  opt_state = {"generator": tx_g.init(params["generator"]),
               "discriminator": tx_d.init(params["discriminator"])}
  return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                           model_state=model_state)


def _discriminator_update(nets: Nets, tx_d, state: TrainState, batch: Batch, fake: Array
                          ) -> tuple[Any, Any, Any, Metrics]:
  """One Adam step of D on real pairs (source, x) against (source, fake)."""
  ms = state.model_state
  source, x = batch["source"], batch["x"]

  def loss_fn(params_d):
    stats = ms.get("discriminator_batch_stats")
    real_logits, stats = nets.discriminate(params_d, stats, source, x, train=True)
    fake_logits, stats = nets.discriminate(params_d, stats, source, fake, train=True)
    loss = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits)
    return jnp.mean(loss), (stats, {"discriminator_loss": jnp.mean(loss),
                                    "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                                    "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))})

  (_, (stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params["discriminator"])
  grads = collectives.mean_over_devices(grads)
  params_d, opt_d = optim.apply_gradients(tx_d, grads, state.opt_state["discriminator"],
                                          state.params["discriminator"])
  return params_d, opt_d, stats, metrics


def train_step(nets: Nets, tx_g, tx_d, state: TrainState, batch: Batch
               ) -> tuple[TrainState, Metrics]:
  """D's update (unless L1-only), then G's against the updated D; same dropout mask."""
  s, ms = nets.s, dict(state.model_state)
  keys = state.keys("dropout")
  source, x = batch["source"], batch["x"]
  g_stats = ms.get("generator_batch_stats")
  params_d, opt_d = state.params["discriminator"], state.opt_state["discriminator"]
  metrics: Metrics = {}
  if s.adversarial_weight:
    fake, _ = nets.generate(state.params["generator"], g_stats, source, train=True,
                            key=keys["dropout"])
    params_d, opt_d, d_stats, metrics = _discriminator_update(
        nets, tx_d, state, batch, jax.lax.stop_gradient(fake))
    if d_stats is not None:
      ms["discriminator_batch_stats"] = d_stats

  def loss_fn(params_g):
    fake, stats = nets.generate(params_g, g_stats, source, train=True, key=keys["dropout"])
    fake_logits = None
    if s.adversarial_weight:
      fake_logits, _ = nets.discriminate(params_d, ms.get("discriminator_batch_stats"),
                                         source, fake, train=True)
    loss, terms = losses.generator_loss(
        fake_logits=fake_logits, output=fake, target=x, l1_weight=s.l1_weight,
        adversarial_weight=s.adversarial_weight)
    return jnp.mean(loss), (stats, {k: jnp.mean(v) for k, v in terms.items()})

  (loss, (g_stats, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params["generator"])
  grads = collectives.mean_over_devices(grads)
  params_g, opt_g = optim.apply_gradients(tx_g, grads, state.opt_state["generator"],
                                          state.params["generator"])
  if g_stats is not None:
    ms["generator_batch_stats"] = g_stats
  metrics = {**metrics, "loss": loss, "generator_loss": loss, "l1": terms["l1"],
             "generator_adversarial": terms["adversarial"],
             "generator_grad_norm": optax.tree.norm(grads)}
  return state.replace(step=state.step + 1,
                       params={"generator": params_g, "discriminator": params_d},
                       opt_state={"generator": opt_g, "discriminator": opt_d},
                       model_state=ms), metrics


def translate(nets: Nets, state: TrainState, source: Array, key: Array | None) -> Array:
  """G(source) in data space with the networks in eval mode; dropout from `key`
  (one key, or per-example keys) when model.sample_dropout, else off."""
  key = key if nets.s.sample_dropout else None
  out, _ = nets.generate(state.params["generator"],
                         state.model_state.get("generator_batch_stats"), source,
                         train=False, key=key)
  return out


def sample(nets: Nets, state: TrainState, key: Array, num: int,
           source: Array | np.ndarray | None = None) -> Array:
  """Translations of `source` ([num, *source_shape], in the data's value range).

  Without `source`, the sources kept at init (`model_state["default_sources"]`,
  the first training batch's) are translated, cycling: sample i uses source
  i mod K, so a grid shows each input with several dropout draws.
  """
  if source is None:
    kept = state.model_state["default_sources"]
    source = kept[jnp.arange(num) % kept.shape[0]]
  source = jnp.asarray(source, jnp.float32)
  if tuple(source.shape) != (num, *nets.source_shape):
    raise ConfigError(f"source= must hold {num} images of shape {nets.source_shape} "
                      f"(one per sample), got an array of shape {tuple(source.shape)}")
  return translate(nets, state, source, rng.split(key, "dropout")["dropout"])


def evaluate(nets: Nets, state: TrainState, batch: Batch, key: Array) -> dict[str, Array]:
  """Per-example L1 of G(source) to x, and the digit classifier's hit on G(source)."""
  keys = rng.split(key, "dropout")
  output = translate(nets, state, batch["source"], keys["dropout"])
  values = {"l1": losses.l1_loss(output=output, target=batch["x"])}
  if nets.classifier is not None and "label" in batch:
    logits = nets.classifier.module.apply(
        nets.classifier.variables, prepare(output, nets.value_range))["logits"]
    values["classifier_accuracy"] = (jnp.argmax(logits, -1) == batch["label"]).astype(
        jnp.float32)
  return values


registry.register(
    KIND, family="gan",
    description="pix2pix (Isola et al. 2017): paired image-to-image translation; U-Net "
                "G with dropout noise, PatchGAN D, adversarial + λ·L1 (data.pair="
                "edges|masked, npz 'source', pairs:)",
    default_config=settings_lib.default_config, make=make, default_data="digits")
