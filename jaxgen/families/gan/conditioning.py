"""Conditioning kinds as small strategies: plain, CGAN, ACGAN, InfoGAN, SSGAN.

A strategy says what the generator receives besides z (one-hot labels, codes),
what the discriminator receives besides x (CGAN's labels), which extra heads
it has and which loss terms they add for each player, what `evaluate` reports
and, for the SSGAN, the labelled set it keeps in `model_state`. The train step
calls the same methods whatever the kind; `STRATEGIES[kind](settings)` builds
one.

`info` is a dict of the conditioning values of a batch of generated samples:
`labels` [N] (CGAN, ACGAN), `categorical` [N] and `continuous` [N, k]
(InfoGAN).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxgen.core import rng
from jaxgen.families.gan import losses, tricks

Array = jax.Array
Info = dict[str, Array]
Outputs = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class Plain:
  """The unconditional GAN: no extra inputs, heads or terms."""

  settings: Any  # settings.Settings

  names: tuple[str, ...] = ()  # the conditioning keywords sample/decode accept

  @property
  def input_dim(self) -> int:
    """Extra generator inputs after z."""
    return 0

  @property
  def adversarial_weight(self) -> float:
    """The weight of the objective's discriminator loss."""
    return 1.0

  def heads(self) -> dict[str, Any]:
    """Keyword arguments of networks.Discriminator for this kind's heads."""
    return {"score": True}

  def draw(self, keys: dict[str, Array], num: int, given: Info) -> Info:
    """The conditioning of `num` samples: `given` values, the rest drawn."""
    return {}

  def defaults(self, num: int, given: dict[str, Any], *, decode: bool) -> Info:
    """`given` (sample/decode keywords) broadcast to `num`, with the defaults."""
    return {}

  def encode(self, info: Info) -> list[Array]:
    """The generator's extra input parts for `info`."""
    return []

  def condition(self, labels: Array | None) -> Array | None:
    """The discriminator's extra input for examples with `labels` (CGAN)."""
    return None

  def adversarial(self, out: Outputs) -> Array:
    """The per-example adversarial output of the discriminator."""
    return out["score"]

  def discriminator_terms(self, out_real: Outputs, out_fake: Outputs, labels: Array | None,
                          info: Info) -> tuple[Array | float, dict[str, Array]]:
    """Per-example extra discriminator loss (added to the objective's) and metrics."""
    return 0.0, {}

  def generator_terms(self, out_fake: Outputs, info: Info) -> Array | float:
    """Per-example extra generator loss."""
    return 0.0

  def evaluate(self, out_real: Outputs, out_fake: Outputs, labels: Array | None,
               info: Info) -> dict[str, Array]:
    """Per-example evaluation values this kind adds."""
    return {}

  def init_state(self, shape: tuple[int, ...]) -> dict[str, Any]:
    """This kind's model_state entries."""
    return {}

  def observe(self, model_state: dict[str, Any], x: Array, labels: Array | None
              ) -> dict[str, Any]:
    """model_state after seeing a training batch (before the step's updates)."""
    return model_state

  def labelled(self, model_state: dict[str, Any]) -> tuple[Array, Array, Array] | None:
    """Labelled examples with a supervised loss: (x, labels, mask), or None."""
    return None


def _broadcast(value: Any, shape: tuple[int, ...], dtype=None) -> Array:
  return jnp.broadcast_to(jnp.asarray(value, dtype), shape)


@dataclasses.dataclass(frozen=True)
class Labels(Plain):
  """CGAN (Mirza & Osindero 2014): one-hot labels into both networks."""

  names: tuple[str, ...] = ("labels",)

  @property
  def input_dim(self) -> int:
    return self.settings.num_classes

  def draw(self, keys, num, given):
    labels = given.get("labels")
    if labels is None:
      labels = rng.randint(keys["labels"], (num,), 0, self.settings.num_classes)
    return {"labels": labels}

  def defaults(self, num, given, *, decode):
    # 0, 1, ... cycling, so sample grids show every class.
    labels = given.get("labels")
    return {"labels": jnp.arange(num) % self.settings.num_classes if labels is None
            else _broadcast(labels, (num,))}

  def encode(self, info):
    return [jax.nn.one_hot(info["labels"], self.settings.num_classes)]

  def condition(self, labels):
    return jax.nn.one_hot(labels, self.settings.num_classes)


def _class_error(logits: Array, labels: Array) -> dict[str, Array]:
  return {"error": (jnp.argmax(logits, -1) != labels).astype(jnp.float32),
          "nll": losses.softmax_cross_entropy(logits=logits, labels=labels)}


@dataclasses.dataclass(frozen=True)
class Auxiliary(Labels):
  """ACGAN (Odena et al. 2017): labels into G; D also classifies (not conditioned)."""

  def heads(self):
    return {"score": True, "num_class_logits": self.settings.num_classes}

  def condition(self, labels):
    return None

  def discriminator_terms(self, out_real, out_fake, labels, info):
    class_real = losses.softmax_cross_entropy(logits=out_real["class_logits"], labels=labels)
    class_fake = losses.softmax_cross_entropy(logits=out_fake["class_logits"],
                                              labels=info["labels"])
    return (self.settings.class_weight * (class_real + class_fake),
            {"class_loss_real": jnp.mean(class_real), "class_loss_fake": jnp.mean(class_fake)})

  def generator_terms(self, out_fake, info):
    return self.settings.class_weight * losses.softmax_cross_entropy(
        logits=out_fake["class_logits"], labels=info["labels"])

  def evaluate(self, out_real, out_fake, labels, info):
    return {} if labels is None else _class_error(out_real["class_logits"], labels)


@dataclasses.dataclass(frozen=True)
class Codes(Plain):
  """InfoGAN (Chen et al. 2016): categorical and continuous codes; a Q head."""

  names: tuple[str, ...] = ("categorical", "continuous")

  @property
  def input_dim(self) -> int:
    return self.settings.categorical + self.settings.continuous

  def heads(self):
    return {"score": True, "q_categorical": self.settings.categorical,
            "q_continuous": self.settings.continuous, "q_hidden": self.settings.q_hidden}

  def draw(self, keys, num, given):
    s, info = self.settings, {}
    if s.categorical:
      info["categorical"] = given.get("categorical")
      if info["categorical"] is None:
        info["categorical"] = rng.randint(keys["labels"], (num,), 0, s.categorical)
    if s.continuous:
      info["continuous"] = given.get("continuous")
      if info["continuous"] is None:
        info["continuous"] = rng.uniform(keys["continuous"], (num, s.continuous),
                                         minval=-1.0, maxval=1.0)
    return info

  def defaults(self, num, given, *, decode):
    # Categorical codes cycle; continuous ones are drawn (sample) or 0 (decode).
    s, out = self.settings, {}
    if s.categorical:
      cat = given.get("categorical")
      out["categorical"] = jnp.arange(num) % s.categorical if cat is None else _broadcast(
          cat, (num,))
    cont = given.get("continuous")
    if s.continuous and (cont is not None or decode):
      out["continuous"] = jnp.zeros((num, s.continuous)) if cont is None else _broadcast(
          cont, (num, s.continuous), jnp.float32)
    return out

  def encode(self, info):
    s, parts = self.settings, []
    if s.categorical:
      parts.append(jax.nn.one_hot(info["categorical"], s.categorical))
    if s.continuous:
      parts.append(info["continuous"])
    return parts

  def info_loss(self, out: Outputs, info: Info) -> Array | float:
    """-λ log Q(c | G(z, c)) per example (Chen et al. 2016, eq. 6), constants dropped."""
    s, total = self.settings, 0.0
    if s.categorical:
      total = s.info_weight * losses.softmax_cross_entropy(
          logits=out["q_categorical_logits"], labels=info["categorical"])
    if s.continuous:
      # A unit-variance factored Gaussian Q: -log Q = ½‖c - μ‖² + const.
      diff = info["continuous"] - out["q_continuous_mean"]
      total = total + s.continuous_weight * 0.5 * jnp.sum(diff * diff, axis=-1)
    return total

  def discriminator_terms(self, out_real, out_fake, labels, info):
    mutual = self.info_loss(out_fake, info)
    return mutual, {"info_loss": jnp.mean(mutual)}

  def generator_terms(self, out_fake, info):
    return self.info_loss(out_fake, info)

  def evaluate(self, out_real, out_fake, labels, info):
    if not self.settings.categorical:
      return {}
    # How well Q recovers the categorical code of fresh samples.
    wrong = jnp.argmax(out_fake["q_categorical_logits"], -1) != info["categorical"]
    return {"q_categorical_error": wrong.astype(jnp.float32)}


@dataclasses.dataclass(frozen=True)
class SemiSupervised(Plain):
  """SSGAN (Salimans et al. 2016): C + 1 outputs, a labelled set in model_state."""

  def heads(self):
    return {"score": False, "num_class_logits": self.settings.num_classes + 1}

  def adversarial(self, out):
    # D(x) = Z(x) / (Z(x) + exp(l_fake)), so its logit is logsumexp over the C
    # classes minus the fake output.
    logits, c = out["class_logits"], self.settings.num_classes
    return jax.nn.logsumexp(logits[:, :c], axis=-1) - logits[:, c]

  @property
  def adversarial_weight(self) -> float:
    return self.settings.unsupervised_weight

  def init_state(self, shape):
    """An empty labelled set: labelled = {x: [C, k, *shape], count: [C]}."""
    s = self.settings
    return {"labelled": {
        "x": jnp.zeros((s.num_classes, s.labels_per_class) + shape, jnp.float32),
        "count": jnp.zeros((s.num_classes,), jnp.int32)}}

  def observe(self, model_state, x, labels):
    """Stores the first `labels_per_class` examples of each class the stream shows.

    These are the only labels the SSGAN ever reads. Vectorised: an example's
    slot is its class count so far plus its rank among the same class earlier
    in this (global) batch; examples past the last slot are dropped.
    """
    bank = model_state["labelled"]
    c, k = self.settings.num_classes, self.settings.labels_per_class
    x, labels = tricks.gather_batch(x), tricks.gather_batch(labels)
    onehot = jax.nn.one_hot(labels, c, dtype=jnp.int32)
    rank = jnp.sum((jnp.cumsum(onehot, axis=0) - onehot) * onehot, axis=-1)
    slot = bank["count"][labels] + rank
    slot = jnp.where(slot < k, slot, k)  # out of range: dropped
    new_x = bank["x"].at[labels, slot].set(x, mode="drop")
    count = jnp.minimum(bank["count"] + jnp.sum(onehot, axis=0), k)
    return {**model_state, "labelled": {"x": new_x, "count": count}}

  def labelled(self, model_state):
    """The stored set flattened: (x [C k, ...], labels [C k], filled mask [C k])."""
    bank = model_state["labelled"]
    c, k = self.settings.num_classes, self.settings.labels_per_class
    x = bank["x"].reshape((c * k,) + bank["x"].shape[2:])
    filled = (jnp.arange(k)[None, :] < bank["count"][:, None]).reshape(-1)
    return x, jnp.repeat(jnp.arange(c), k), filled

  def supervised_loss(self, out: Outputs, labels: Array, filled: Array) -> Array:
    """Mean cross-entropy of the C real classes over the filled slots."""
    per_example = losses.softmax_cross_entropy(
        logits=out["class_logits"][:, :self.settings.num_classes], labels=labels)
    return jnp.sum(per_example * filled) / jnp.maximum(jnp.sum(filled), 1)

  def evaluate(self, out_real, out_fake, labels, info):
    if labels is None:
      return {}
    return _class_error(out_real["class_logits"][:, :self.settings.num_classes], labels)


STRATEGIES = {"gan": Plain, "cgan": Labels, "acgan": Auxiliary, "infogan": Codes,
              "ssgan": SemiSupervised}
