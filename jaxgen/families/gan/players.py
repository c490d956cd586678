"""The two players' networks, their inputs and each player's loss on one batch.

`Players` holds everything a GAN step needs besides the parameters (the
resolved settings, the objective's table entry, the conditioning strategy,
the model_state updates): plain values fixed when the method is made, so its
methods are pure functions of their array arguments. The steps (step.py) and
the method's sample/evaluate (method.py) are written against it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxgen.core import collectives, precision, rng
from jaxgen.families.gan import conditioning, losses, networks, objectives, tricks
from jaxgen.families.gan import updates

Array = jax.Array
Outputs = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class Players:
  """Networks, inputs and losses of one GAN configuration."""

  s: Any                               # settings.Settings
  objective: objectives.Objective
  condition: conditioning.Plain
  updates: tuple[updates.Update, ...]
  shape: tuple[int, ...]
  value_range: tuple[float, float]
  output: str                          # 'tanh' (images) or 'linear'
  compute_dtype: str = "float32"       # train.compute_dtype (core.precision)

  # ------------------------------------------------------------ networks
  def generator_net(self) -> networks.Generator:
    # Built at trace time so that BatchNorm sees the pmap axis, if any.
    s = self.s
    return precision.wrap(networks.Generator(
        architecture=s.architecture, output_shape=self.shape, value_range=self.value_range,
        output=self.output, hidden=s.generator_hidden, channels=s.generator_channels,
        norm=s.generator_norm, style_dim=s.style_dim, mapping_layers=s.mapping_layers,
        style_noise=s.style_noise, axis_name=collectives.current_pmap_axis()),
        self.compute_dtype)

  def discriminator_net(self) -> networks.Discriminator:
    s = self.s
    return precision.wrap(networks.Discriminator(
        architecture="mlp" if s.architecture == "mlp" else "dcgan",
        input_shape=self.shape, value_range=self.value_range, output=self.output,
        hidden=s.discriminator_hidden, channels=s.discriminator_channels,
        norm=s.discriminator_norm, autoencoder=self.objective.autoencoder,
        code_dim=s.code_dim, minibatch_kernels=s.minibatch_kernels,
        minibatch_kernel_dim=s.minibatch_kernel_dim, input_noise=s.input_noise,
        hidden_noise=s.hidden_noise, dropout=s.dropout,
        axis_name=collectives.current_pmap_axis(),
        **({"score": False} if self.objective.autoencoder else self.condition.heads())),
        self.compute_dtype)

  @property
  def generator_noise(self) -> bool:
    """Whether the generator draws per-layer noise (the style generator)."""
    return self.s.architecture == "style" and self.s.style_noise

  def generate(self, params, stats, inputs: Array, model_state, *, train: bool,
               key: Array | None) -> tuple[Array, Any]:
    """Samples for generator inputs [N, input_dim]; (x, new batch stats)."""
    variables = {"params": params}
    if self.s.generator_norm == "batch":
      variables["batch_stats"] = stats
    if self.generator_noise and rng.is_per_example(key):
      # Per-example keys (evaluation): one generator call per example, each
      # drawing its layer noise from its own key. The style generator has no
      # batch statistics, so this is the batched function.
      def one(row, k):
        return self.generate(params, stats, row[None], model_state, train=train, key=k)[0][0]
      return jax.vmap(one)(inputs, key), stats
    num_reference = self.s.reference_batch
    if num_reference:
      inputs = jnp.concatenate([model_state["reference_inputs"], inputs], axis=0)
    rngs = {"noise": key} if self.generator_noise else None
    if train and self.s.generator_norm == "batch":
      x, new = self.generator_net().apply(variables, inputs, train=True,
                                          num_reference=num_reference,
                                          mutable=["batch_stats"], rngs=rngs)
      stats = new["batch_stats"]
    else:
      x = self.generator_net().apply(variables, inputs, train=train,
                                     num_reference=num_reference, rngs=rngs)
    return x[num_reference:], stats

  def discriminate(self, params, stats, x: Array, condition: Array | None, *,
                   train: bool, key: Array | None) -> tuple[Outputs, Any]:
    """Discriminator heads for x; (outputs, new batch stats)."""
    variables = {"params": params}
    batch_norm = self.s.discriminator_norm == "batch"
    if batch_norm:
      variables["batch_stats"] = stats
    rngs = None
    if train and (self.s.input_noise > 0 or self.s.hidden_noise > 0 or self.s.dropout > 0):
      keys = rng.split(key, "noise", "dropout")
      rngs = {"noise": keys["noise"], "dropout": keys["dropout"]}
    if train and batch_norm:
      out, new = self.discriminator_net().apply(variables, x, condition, train=True,
                                                mutable=["batch_stats"], rngs=rngs)
      return out, new["batch_stats"]
    return self.discriminator_net().apply(variables, x, condition, train=train,
                                          rngs=rngs), stats

  def score(self, out: Outputs, x: Array) -> Array:
    """The per-example adversarial output the objective reads ([B])."""
    if self.objective.autoencoder:
      return losses.reconstruction_energy(
          x=x, reconstruction=out["reconstruction"],
          power=objectives.ENERGY_POWER[self.objective.output])
    return self.condition.adversarial(out)

  # -------------------------------------------------------------- inputs
  @property
  def input_dim(self) -> int:
    return self.s.latent_dim + self.condition.input_dim

  def generator_inputs(self, key: Array, num: int, given: dict[str, Array] | None = None
                       ) -> tuple[Array, dict[str, Array]]:
    """Noise plus conditioning: ([num, input_dim], info); `given` values are kept."""
    keys = rng.split(key, "z", "labels", "continuous")
    z = rng.normal(keys["z"], (num, self.s.latent_dim))
    info = self.condition.draw(keys, num, given or {})
    return jnp.concatenate([z, *self.condition.encode(info)], axis=-1), info

  def fakes(self, params_g, model_state, key: Array, num: int, *, train: bool
            ) -> tuple[Array, dict[str, Array], Any]:
    """num generated samples: (x, info, new generator batch stats)."""
    keys = rng.split(key, "inputs", "noise")
    inputs, info = self.generator_inputs(keys["inputs"], num)
    x, stats = self.generate(params_g, model_state.get("generator_batch_stats"), inputs,
                             model_state, train=train, key=keys["noise"])
    return x, info, stats

  def loss_values(self, model_state) -> dict[str, Any]:
    """What the objective's losses may read, by name (objectives.STEP_VALUES)."""
    real_target, _ = tricks.one_sided_targets(smoothing=self.s.label_smoothing)
    return {**self.s.hyperparameters, "real_target": real_target,
            "k": model_state.get("k", jnp.zeros(()))}

  # ------------------------------------------------------------- penalties
  def penalty_points(self, x: Array, fake: Array, keys: dict[str, Array]) -> Array:
    """Where the objective's gradient penalty is taken (objectives.PENALTIES)."""
    if self.objective.penalty == "interpolates":  # WGAN-GP: x̂ = εx + (1 - ε)x̃
      return losses.interpolates(real=x, fake=fake,
                                 eps=rng.uniform(keys["penalty"], (x.shape[0],)))
    # DRAGAN: the batch's standard deviation over all values, of the global batch.
    m1 = collectives.mean_over_devices(jnp.mean(x))
    m2 = collectives.mean_over_devices(jnp.mean(x * x))
    std = jnp.sqrt(jnp.maximum(m2 - m1 * m1, 0.0))
    return losses.dragan_points(
        real=x, std=std, perturbation=rng.uniform(keys["perturbation"], x.shape),
        alpha=rng.uniform(keys["penalty"], (x.shape[0],)))

  def penalties(self, params_d, stats_d, x: Array, labels: Array | None, fake: Array,
                keys: dict[str, Array]) -> tuple[Array | float, dict[str, Array]]:
    """Per-example gradient penalties (objective's and R1) and their metrics."""
    condition = self.condition.condition(labels)  # interpolates carry x's labels

    def critic(key):
      def value(points):
        out, _ = self.discriminate(params_d, stats_d, points, condition, train=True,
                                   key=key)
        return self.score(out, points)
      return value

    total, metrics = 0.0, {}
    if self.objective.penalty is not None:
      penalty = losses.gradient_penalty(critic=critic(keys["penalty_noise"]),
                                        x=self.penalty_points(x, fake, keys))
      total = self.s.hyperparameters["penalty_weight"] * penalty
      metrics["gradient_penalty"] = jnp.mean(penalty)
    if self.s.r1_gamma:
      r1 = losses.r1_penalty(critic=critic(keys["r1_noise"]), x=x, gamma=self.s.r1_gamma)
      total = total + r1
      metrics["r1_penalty"] = jnp.mean(r1)
    return total, metrics

  # ------------------------------------------------------------ the losses
  def discriminator_loss(self, params_d, x: Array, labels: Array | None, fake: Array,
                         info: dict[str, Array], key: Array, model_state
                         ) -> tuple[Array, tuple[dict[str, Array], Any]]:
    """(scalar loss, (metrics, new batch stats)) of the discriminator on one batch."""
    keys = rng.split(key, "real", "fake", "penalty", "perturbation", "labelled",
                     "penalty_noise", "r1_noise")
    stats = model_state.get("discriminator_batch_stats")
    out_real, stats = self.discriminate(params_d, stats, x, self.condition.condition(labels),
                                        train=True, key=keys["real"])
    out_fake, stats = self.discriminate(params_d, stats, fake,
                                        self.condition.condition(info.get("labels")),
                                        train=True, key=keys["fake"])
    real, fakes = self.score(out_real, x), self.score(out_fake, fake)
    adversarial = self.objective.discriminator_loss(real, fakes, self.loss_values(model_state))
    penalty, metrics = self.penalties(params_d, stats, x, labels, fake, keys)
    extra, extra_metrics = self.condition.discriminator_terms(out_real, out_fake, labels, info)
    loss = jnp.mean(self.condition.adversarial_weight * adversarial + penalty + extra)
    metrics = {"score_real": jnp.mean(real), "score_fake": jnp.mean(fakes), **metrics,
               **extra_metrics}
    labelled = self.condition.labelled(model_state)
    if labelled is not None:  # SSGAN: the stored labelled examples' cross-entropy
      x_l, labels_l, filled = labelled
      out_l, stats = self.discriminate(params_d, stats, x_l, None, train=True,
                                       key=keys["labelled"])
      supervised = self.condition.supervised_loss(out_l, labels_l, filled)
      loss = loss + supervised
      metrics.update(supervised_loss=supervised, unsupervised_loss=jnp.mean(adversarial))
    if self.objective.autoencoder:
      metrics.update(real_energy=jnp.mean(real), fake_energy=jnp.mean(fakes))
    metrics["discriminator_loss"] = loss  # before the updates' penalties
    loss = loss + updates.penalty(self.updates, "discriminator", model_state, params_d)
    return loss, (metrics, stats)

  def generator_loss(self, params_g, params_d, x: Array, labels: Array | None, key: Array,
                     model_state) -> tuple[Array, tuple[dict[str, Array], Any]]:
    """(scalar loss, (metrics, new G batch stats)); D's statistics are not updated."""
    k_fake, k_terms = jax.random.split(key)
    fake, info, stats_g = self.fakes(params_g, model_state, k_fake, x.shape[0], train=True)
    loss, metrics = self.generator_terms(params_d, model_state, x, labels, fake, info,
                                         k_terms)
    metrics["generator_loss"] = loss  # before the updates' penalties
    loss = loss + updates.penalty(self.updates, "generator", model_state, params_g)
    return loss, (metrics, stats_g)

  def generator_terms(self, params_d, model_state, x: Array, labels: Array | None,
                      fake: Array, info: dict[str, Array], key: Array
                      ) -> tuple[Array, dict[str, Array]]:
    """The generator's loss for given fakes, before the updates' penalties."""
    keys = rng.split(key, "real", "fake")
    stats_d = model_state.get("discriminator_batch_stats")
    out_fake, _ = self.discriminate(params_d, stats_d, fake,
                                    self.condition.condition(info.get("labels")),
                                    train=True, key=keys["fake"])
    metrics, scalar = {}, 0.0
    if self.s.feature_matching:
      out_real, _ = self.discriminate(params_d, stats_d, x, self.condition.condition(labels),
                                      train=True, key=keys["real"])
      scalar = tricks.feature_matching(real_features=out_real["features"],
                                       fake_features=out_fake["features"])
      per_example = jnp.zeros(x.shape[0])
      metrics["feature_matching"] = scalar
    else:
      per_example = self.objective.generator_loss(self.score(out_fake, fake),
                                                  self.loss_values(model_state))
    pull_away_weight = self.s.hyperparameters.get("pull_away_weight", 0.0)
    if pull_away_weight:  # EBGAN's pull-away term, over the gathered batch
      pt = losses.pull_away_term(codes=tricks.gather_batch(out_fake["code"]))
      if collectives.current_pmap_axis() is None:
        per_example = per_example + pull_away_weight * pt
      else:  # the gathered term is global: add its mean once, as a scalar
        scalar = scalar + pull_away_weight * jnp.mean(pt)
      metrics["pull_away"] = jnp.mean(pt)
    per_example = per_example + self.condition.generator_terms(out_fake, info)
    return jnp.mean(per_example) + scalar, metrics
