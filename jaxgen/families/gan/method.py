"""The generic two-player GAN method, and its conditional variants.

One `make` builds every GAN: the objective (`model.objective`), the
conditioning (`kind`: plain, CGAN, ACGAN, InfoGAN, semi-supervised), the
architecture and the tricks are settings in its closure. One jitted train step
is the algorithm box of the papers:

  for i in 1..n_critic:                     (a Python loop: n_critic is static)
    x_i = the batch (or its i-th slice), z_i, ε_i drawn from fold_in(critic_key, i)
    descend the discriminator's loss       (+ penalties, class/Q losses)
    clip its weights (WGAN); update BEGAN's k_t; update historical averages
  draw z from the generator key; descend the generator's loss against the
  updated discriminator; update the EMA of the generator's weights

With `tricks.consensus` > 0 the two players instead take one simultaneous
step along the consensus direction (Mescheder et al. 2017).

State: params {"generator", "discriminator"}; opt_state likewise; model_state
holds the EMA generator, BatchNorm statistics of both networks, BEGAN's k, the
historical averages, VBN's reference inputs and the SSGAN's labelled set.

  config = jaxgen.get_config("gan", "toy2d:ring8")
  config.model.objective = "wgan_gp"            # its published defaults follow
  result = jaxgen.fit(config)
  x = result.method.sample(result.state, jax.random.PRNGKey(0), 512)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.families.gan import losses, networks, settings, tricks

Array = jax.Array
Batch = dict[str, Array]


def _stop(x: Any) -> Any:
  return jax.tree.map(jax.lax.stop_gradient, x)


def make(config: ml_collections.ConfigDict, spec: Any, kind: str = "gan") -> Method:
  """The GAN method `kind` (one of settings.KINDS) for `config` on `spec`."""
  s = settings.resolve(config, spec, kind)
  shape = tuple(spec.shape)
  value_range = tuple(float(v) for v in spec.value_range)
  image_output = len(shape) == 3 or getattr(spec, "image_shape", None) is not None
  output = "tanh" if image_output else "linear"
  num_classes = s.num_classes
  autoencoder = s.objective in settings.AUTOENCODER
  divergence = (losses.divergence(s.divergence, s.alpha)
                if s.objective == "fgan" else None)
  real_target, _ = tricks.one_sided_targets(smoothing=s.label_smoothing)
  tx_g = optim.make(s.generator_optim, config.train.steps)
  tx_d = optim.make(s.discriminator_optim, config.train.steps * s.n_critic)

  # The generator's extra inputs: one-hot labels or InfoGAN codes.
  if kind in ("cgan", "acgan"):
    condition_dim = num_classes
  elif kind == "infogan":
    condition_dim = s.categorical + s.continuous
  else:
    condition_dim = 0
  input_dim = s.latent_dim + condition_dim
  generator_batch_norm = s.generator_norm == "batch"
  discriminator_batch_norm = s.discriminator_norm == "batch"
  discriminator_rngs = s.input_noise > 0 or s.hidden_noise > 0 or s.dropout > 0
  style_noise = s.architecture == "style" and s.style_noise

  def generator_net() -> networks.Generator:
    # Built at trace time so that BatchNorm sees the pmap axis, if any.
    return networks.Generator(
        architecture=s.architecture, output_shape=shape, value_range=value_range,
        output=output, hidden=s.generator_hidden, channels=s.generator_channels,
        norm=s.generator_norm, style_dim=s.style_dim, mapping_layers=s.mapping_layers,
        style_noise=s.style_noise, axis_name=collectives.current_pmap_axis())

  def discriminator_net() -> networks.Discriminator:
    return networks.Discriminator(
        architecture="mlp" if s.architecture == "mlp" else "dcgan",
        input_shape=shape, value_range=value_range, output=output,
        hidden=s.discriminator_hidden, channels=s.discriminator_channels,
        norm=s.discriminator_norm, score=kind != "ssgan" and not autoencoder,
        num_class_logits=(num_classes if kind == "acgan" else
                          num_classes + 1 if kind == "ssgan" else 0),
        q_categorical=s.categorical if kind == "infogan" else 0,
        q_continuous=s.continuous if kind == "infogan" else 0,
        q_hidden=s.q_hidden, autoencoder=autoencoder, code_dim=s.code_dim,
        minibatch_kernels=s.minibatch_kernels,
        minibatch_kernel_dim=s.minibatch_kernel_dim, input_noise=s.input_noise,
        hidden_noise=s.hidden_noise, dropout=s.dropout,
        axis_name=collectives.current_pmap_axis())

  # ------------------------------------------------------------ networks
  def run_generator(params, stats, inputs: Array, model_state, *, train: bool,
                    key: Array | None) -> tuple[Array, Any]:
    """Samples for generator inputs [N, input_dim]; (x, new batch stats)."""
    variables = {"params": params}
    if generator_batch_norm:
      variables["batch_stats"] = stats
    num_reference = 0
    if s.reference_batch:
      inputs = jnp.concatenate([model_state["reference_inputs"], inputs], axis=0)
      num_reference = s.reference_batch
    rngs = {"noise": key} if style_noise else None
    if train and generator_batch_norm:
      x, updates = generator_net().apply(variables, inputs, train=True,
                                         num_reference=num_reference,
                                         mutable=["batch_stats"], rngs=rngs)
      stats = updates["batch_stats"]
    else:
      x = generator_net().apply(variables, inputs, train=train,
                                num_reference=num_reference, rngs=rngs)
    return x[num_reference:], stats

  def run_discriminator(params, stats, x: Array, condition: Array | None, *,
                        train: bool, key: Array | None) -> tuple[dict[str, Array], Any]:
    """Discriminator heads for x; (outputs, new batch stats)."""
    variables = {"params": params}
    if discriminator_batch_norm:
      variables["batch_stats"] = stats
    rngs = None
    if train and discriminator_rngs:
      keys = rng.split(key, "noise", "dropout")
      rngs = {"noise": keys["noise"], "dropout": keys["dropout"]}
    if train and discriminator_batch_norm:
      out, updates = discriminator_net().apply(variables, x, condition, train=True,
                                               mutable=["batch_stats"], rngs=rngs)
      return out, updates["batch_stats"]
    return discriminator_net().apply(variables, x, condition, train=train, rngs=rngs), stats

  def score(out: dict[str, Array], x: Array) -> Array:
    """The per-example adversarial output the objective reads."""
    if autoencoder:
      power = 1.0 if s.objective == "began" else 2.0
      return losses.reconstruction_energy(x=x, reconstruction=out["reconstruction"],
                                          power=power)
    if kind == "ssgan":
      logits = out["class_logits"]
      # Salimans et al. 2016: D(x) = Z(x) / (Z(x) + exp(l_fake)), so its logit
      # is logsumexp over the C classes minus the fake output.
      return jax.nn.logsumexp(logits[:, :num_classes], axis=-1) - logits[:, num_classes]
    return out["score"]

  # ---------------------------------------------------------- objectives
  def discriminator_objective(real: Array, fake: Array, k: Array) -> Array:
    o = s.objective
    if o in ("non_saturating", "minimax", "dragan"):
      return losses.minimax_discriminator(real_logits=real, fake_logits=fake,
                                          real_target=real_target)
    if o == "lsgan":
      return losses.lsgan_discriminator(real_scores=real, fake_scores=fake)
    if o in ("wgan", "wgan_gp"):
      return losses.wasserstein_critic(real_scores=real, fake_scores=fake)
    if o == "hinge":
      return losses.hinge_discriminator(real_scores=real, fake_scores=fake)
    if o == "ebgan":
      return losses.ebgan_discriminator(real_energy=real, fake_energy=fake,
                                        margin=s.margin)
    if o == "began":
      return losses.began_discriminator(real_loss=real, fake_loss=fake, k=k)
    return losses.fgan_discriminator(real_v=real, fake_v=fake, divergence=divergence)

  def generator_objective(fake: Array) -> Array:
    o = s.objective
    if o == "minimax":
      return losses.minimax_generator(fake_logits=fake)
    if o in ("non_saturating", "dragan"):
      return losses.non_saturating_generator(fake_logits=fake)
    if o == "lsgan":
      return losses.lsgan_generator(fake_scores=fake)
    if o in ("wgan", "wgan_gp"):
      return losses.wasserstein_generator(fake_scores=fake)
    if o == "hinge":
      return losses.hinge_generator(fake_scores=fake)
    if o == "ebgan":
      return losses.ebgan_generator(fake_energy=fake)
    if o == "began":
      return losses.began_generator(fake_loss=fake)
    return losses.fgan_generator(fake_v=fake, divergence=divergence,
                                 mode=s.fgan_generator)

  # -------------------------------------------------------------- inputs
  def generator_inputs(key: Array, num: int, *, labels: Array | None = None,
                       categorical: Array | None = None,
                       continuous: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """Noise plus conditioning: ([num, input_dim], {labels | codes})."""
    keys = rng.split(key, "z", "labels", "continuous")
    z = rng.normal(keys["z"], (num, s.latent_dim))
    info: dict[str, Array] = {}
    parts = [z]
    if kind in ("cgan", "acgan"):
      if labels is None:
        labels = rng.randint(keys["labels"], (num,), 0, num_classes)
      info["labels"] = labels
      parts.append(jax.nn.one_hot(labels, num_classes))
    if kind == "infogan":
      if s.categorical:
        if categorical is None:
          categorical = rng.randint(keys["labels"], (num,), 0, s.categorical)
        info["categorical"] = categorical
        parts.append(jax.nn.one_hot(categorical, s.categorical))
      if s.continuous:
        if continuous is None:
          continuous = rng.uniform(keys["continuous"], (num, s.continuous),
                                   minval=-1.0, maxval=1.0)
        info["continuous"] = continuous
        parts.append(continuous)
    return jnp.concatenate(parts, axis=-1), info

  def condition_of(labels: Array | None) -> Array | None:
    return jax.nn.one_hot(labels, num_classes) if kind == "cgan" else None

  def info_loss(out: dict[str, Array], info: dict[str, Array]) -> Array:
    """-λ log Q(c | G(z, c)) per example (Chen et al. 2016, eq. 6), constants dropped."""
    total = 0.0
    if s.categorical:
      total = s.info_weight * losses.softmax_cross_entropy(
          logits=out["q_categorical_logits"], labels=info["categorical"])
    if s.continuous:
      # A unit-variance factored Gaussian Q: -log Q = ½‖c - μ‖² + const.
      diff = info["continuous"] - out["q_continuous_mean"]
      total = total + s.continuous_weight * 0.5 * jnp.sum(diff * diff, axis=-1)
    return total

  # -------------------------------------------------- discriminator terms
  def discriminator_terms(params_d, stats_d, x: Array, labels: Array | None,
                          fake: Array, info: dict[str, Array], key: Array, k: Array,
                          model_state) -> tuple[Array, dict[str, Array], Any]:
    """(scalar loss, metrics, new batch stats) of the discriminator on one batch."""
    keys = rng.split(key, "real", "fake", "penalty", "perturbation", "labelled")
    b = x.shape[0]
    out_real, stats_d = run_discriminator(params_d, stats_d, x, condition_of(labels),
                                          train=True, key=keys["real"])
    out_fake, stats_d = run_discriminator(params_d, stats_d, fake,
                                          condition_of(info.get("labels")),
                                          train=True, key=keys["fake"])
    real, fakes = score(out_real, x), score(out_fake, fake)
    adversarial = discriminator_objective(real, fakes, k)
    per_example = s.unsupervised_weight * adversarial if kind == "ssgan" else adversarial
    metrics = {"score_real": jnp.mean(real), "score_fake": jnp.mean(fakes)}

    def critic(points: Array, condition: Array | None) -> Array:
      out, _ = run_discriminator(params_d, stats_d, points, condition, train=True,
                                 key=keys["real"])
      return score(out, points)

    if s.objective == "wgan_gp":
      eps = rng.uniform(keys["penalty"], (b,))
      points = losses.interpolates(real=x, fake=fake, eps=eps)
      # CGAN: the interpolate carries the real example's label.
      penalty = losses.gradient_penalty(
          critic=lambda p: critic(p, condition_of(labels)), x=points)
      per_example = per_example + s.penalty_weight * penalty
      metrics["gradient_penalty"] = jnp.mean(penalty)
    if s.objective == "dragan":
      # The batch's standard deviation over all values, of the global batch.
      m1 = collectives.mean_over_devices(jnp.mean(x))
      m2 = collectives.mean_over_devices(jnp.mean(x * x))
      std = jnp.sqrt(jnp.maximum(m2 - m1 * m1, 0.0))
      points = losses.dragan_points(
          real=x, std=std, perturbation=rng.uniform(keys["perturbation"], x.shape),
          alpha=rng.uniform(keys["penalty"], (b,)))
      penalty = losses.gradient_penalty(
          critic=lambda p: critic(p, condition_of(labels)), x=points)
      per_example = per_example + s.penalty_weight * penalty
      metrics["gradient_penalty"] = jnp.mean(penalty)
    if s.r1_gamma:
      r1 = losses.r1_penalty(critic=lambda p: critic(p, condition_of(labels)), x=x,
                             gamma=s.r1_gamma)
      per_example = per_example + r1
      metrics["r1_penalty"] = jnp.mean(r1)
    if kind == "acgan":
      class_real = losses.softmax_cross_entropy(logits=out_real["class_logits"],
                                                labels=labels)
      class_fake = losses.softmax_cross_entropy(logits=out_fake["class_logits"],
                                                labels=info["labels"])
      per_example = per_example + s.class_weight * (class_real + class_fake)
      metrics["class_loss_real"] = jnp.mean(class_real)
      metrics["class_loss_fake"] = jnp.mean(class_fake)
    if kind == "infogan":
      mutual = info_loss(out_fake, info)
      per_example = per_example + mutual
      metrics["info_loss"] = jnp.mean(mutual)
    loss = jnp.mean(per_example)
    if kind == "ssgan":
      bank = model_state["labelled"]
      flat_x = bank["x"].reshape((-1,) + shape)
      flat_y = jnp.repeat(jnp.arange(num_classes), s.labels_per_class)
      filled = (jnp.arange(s.labels_per_class)[None, :] < bank["count"][:, None]).reshape(-1)
      out_l, stats_d = run_discriminator(params_d, stats_d, flat_x, None, train=True,
                                         key=keys["labelled"])
      supervised = losses.softmax_cross_entropy(
          logits=out_l["class_logits"][:, :num_classes], labels=flat_y)
      supervised = jnp.sum(supervised * filled) / jnp.maximum(jnp.sum(filled), 1)
      loss = loss + supervised
      metrics["supervised_loss"] = supervised
      metrics["unsupervised_loss"] = jnp.mean(adversarial)
    if autoencoder:
      metrics["real_energy"] = jnp.mean(real)
      metrics["fake_energy"] = jnp.mean(fakes)
    metrics["discriminator_loss"] = loss
    return loss, metrics, stats_d

  # ------------------------------------------------------ generator terms
  def generator_terms(params_d, stats_d, x: Array, labels: Array | None, fake: Array,
                      info: dict[str, Array], key: Array) -> tuple[Array, dict[str, Array]]:
    """(scalar loss, metrics) of the generator; D's statistics are not updated."""
    keys = rng.split(key, "real", "fake")
    out_fake, _ = run_discriminator(params_d, stats_d, fake,
                                    condition_of(info.get("labels")), train=True,
                                    key=keys["fake"])
    metrics = {}
    if s.feature_matching:
      out_real, _ = run_discriminator(params_d, stats_d, x, condition_of(labels),
                                      train=True, key=keys["real"])
      fm = tricks.feature_matching(real_features=out_real["features"],
                                   fake_features=out_fake["features"])
      per_example = jnp.zeros(x.shape[0])
      scalar = fm
      metrics["feature_matching"] = fm
    else:
      per_example = generator_objective(score(out_fake, fake))
      scalar = 0.0
    if s.objective == "ebgan" and s.pull_away_weight:
      pt = losses.pull_away_term(codes=tricks.gather_batch(out_fake["code"]))
      if collectives.current_pmap_axis() is None:
        per_example = per_example + s.pull_away_weight * pt
      else:  # the gathered term is global: add its mean once, as a scalar
        scalar = scalar + s.pull_away_weight * jnp.mean(pt)
      metrics["pull_away"] = jnp.mean(pt)
    if kind == "acgan":
      class_fake = losses.softmax_cross_entropy(logits=out_fake["class_logits"],
                                                labels=info["labels"])
      per_example = per_example + s.class_weight * class_fake
    if kind == "infogan":
      per_example = per_example + info_loss(out_fake, info)
    loss = jnp.mean(per_example) + scalar
    metrics["generator_loss"] = loss
    return loss, metrics

  # ------------------------------------------------------------- init
  def init(key: jax.Array, batch: Batch) -> TrainState:
    keys = rng.split(key, "generator", "discriminator", "noise", "reference", "base")
    x = batch["x"][:2]
    inputs = jnp.zeros((2, input_dim))
    g_rngs = {"params": keys["generator"], "noise": keys["noise"]}
    reference = None
    if s.reference_batch:
      reference, _ = generator_inputs(keys["reference"], s.reference_batch)
      g_vars = generator_net().init(g_rngs, jnp.concatenate([reference, inputs]),
                                    train=False, num_reference=s.reference_batch)
    else:
      g_vars = generator_net().init(g_rngs, inputs, train=False)
    condition = jnp.zeros((2, num_classes)) if kind == "cgan" else None
    d_vars = discriminator_net().init(
        {"params": keys["discriminator"], "noise": keys["noise"],
         "dropout": keys["noise"]}, x, condition, train=False)
    params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
    model_state: dict[str, Any] = {}
    if s.ema_decay:
      # Zero-initialised and debiased at use (as Adam's moments), so early
      # samples are not pulled towards the initial weights.
      model_state["ema_generator"] = jax.tree.map(jnp.zeros_like, params["generator"])
    if generator_batch_norm:
      model_state["generator_batch_stats"] = g_vars["batch_stats"]
    if discriminator_batch_norm:
      model_state["discriminator_batch_stats"] = d_vars["batch_stats"]
    if reference is not None:
      model_state["reference_inputs"] = reference
    if s.objective == "began":
      model_state["k"] = jnp.zeros((), jnp.float32)  # k_0 = 0
    if s.historical_averaging:
      model_state["historical"] = {
          "generator": jax.tree.map(jnp.copy, params["generator"]),
          "discriminator": jax.tree.map(jnp.copy, params["discriminator"]),
          "count_generator": jnp.ones((), jnp.int32),
          "count_discriminator": jnp.ones((), jnp.int32)}
    if kind == "ssgan":
      model_state["labelled"] = {
          "x": jnp.zeros((num_classes, s.labels_per_class) + shape, jnp.float32),
          "count": jnp.zeros((num_classes,), jnp.int32)}
    opt_state = {"generator": tx_g.init(params["generator"]),
                 "discriminator": tx_d.init(params["discriminator"])}
    return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                             model_state=model_state)

  # -------------------------------------------------------- helpers
  def fill_labelled(bank: dict[str, Array], x: Array, labels: Array) -> dict[str, Array]:
    """Stores the first `labels_per_class` examples of each class the stream shows.

    These are the only labels the SSGAN ever reads. Vectorised: an example's
    slot is its class count so far plus its rank among the same class earlier
    in this (global) batch; examples past the last slot are dropped.
    """
    x, labels = tricks.gather_batch(x), tricks.gather_batch(labels)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.int32)
    rank = jnp.sum((jnp.cumsum(onehot, axis=0) - onehot) * onehot, axis=-1)
    slot = bank["count"][labels] + rank
    keep = slot < s.labels_per_class
    slot = jnp.where(keep, slot, s.labels_per_class)  # out of range: dropped
    new_x = bank["x"].at[labels, slot].set(x, mode="drop")
    count = jnp.minimum(bank["count"] + jnp.sum(onehot, axis=0), s.labels_per_class)
    return {"x": new_x, "count": count}

  def historical_penalty(params, model_state, player: str) -> Array:
    if not s.historical_averaging:
      return 0.0
    return s.historical_averaging * tricks.historical_averaging(
        params=params, average=model_state["historical"][player])

  def update_historical(model_state, params, player: str):
    if not s.historical_averaging:
      return model_state
    hist = dict(model_state["historical"])
    hist[player], hist[f"count_{player}"] = tricks.historical_average_update(
        hist[player], params, hist[f"count_{player}"])
    return {**model_state, "historical": hist}

  def update_k(model_state, metrics):
    if s.objective != "began":
      return model_state, {}
    real = collectives.mean_over_devices(metrics["real_energy"])
    fake = collectives.mean_over_devices(metrics["fake_energy"])
    k, convergence = losses.began_controller(
        k=model_state["k"], real_loss=real, fake_loss=fake, gamma=s.began_gamma,
        lambda_k=s.began_lambda_k)
    return {**model_state, "k": k}, {"k": k, "convergence": convergence}

  def make_fakes(params_g, stats_g, model_state, key: Array, num: int, *, train: bool):
    keys = rng.split(key, "inputs", "noise")
    inputs, info = generator_inputs(keys["inputs"], num)
    fake, stats_g = run_generator(params_g, stats_g, inputs, model_state, train=train,
                                  key=keys["noise"])
    return fake, info, stats_g

  def ema_update(model_state, params_g):
    if not s.ema_decay:
      return model_state
    ema = jax.tree.map(lambda e, p: s.ema_decay * e + (1.0 - s.ema_decay) * p,
                       model_state["ema_generator"], params_g)
    return {**model_state, "ema_generator": ema}

  def with_stats(model_state, stats_g, stats_d):
    out = dict(model_state)
    if generator_batch_norm:
      out["generator_batch_stats"] = stats_g
    if discriminator_batch_norm:
      out["discriminator_batch_stats"] = stats_d
    return out

  # ------------------------------------------------------------- steps
  def alternating_step(state: TrainState, batch: Batch
                       ) -> tuple[TrainState, dict[str, Array]]:
    keys = state.keys("critic", "generator")
    x, labels = batch["x"], batch.get("label")
    model_state = state.model_state
    if kind == "ssgan":
      model_state = {**model_state,
                     "labelled": fill_labelled(model_state["labelled"], x, labels)}
    params_g = state.params["generator"]
    n = s.n_critic

    def critic_update(carry, i: int):
      params_d, opt_d, ms = carry
      # 'split': the strided slice i, so device slices split the same way.
      x_i = x[i::n] if s.critic_data == "split" else x
      labels_i = labels[i::n] if s.critic_data == "split" and labels is not None else labels
      key = jax.random.fold_in(keys["critic"], i)
      k_fake, k_terms = jax.random.split(key)
      fake, info, stats_g = make_fakes(params_g, ms.get("generator_batch_stats"), ms,
                                       k_fake, x_i.shape[0], train=True)
      fake = jax.lax.stop_gradient(fake)

      def loss_fn(p):
        loss, metrics, stats_d = discriminator_terms(
            p, ms.get("discriminator_batch_stats"), x_i, labels_i, fake, info,
            k_terms, ms.get("k", jnp.zeros(())), ms)
        loss = loss + historical_penalty(p, ms, "discriminator")
        return loss, (metrics, stats_d)

      (_, (metrics, stats_d)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params_d)
      grads = collectives.mean_over_devices(grads)
      updates, opt_d = tx_d.update(grads, opt_d, params_d)
      params_d = optax.apply_updates(params_d, updates)
      if s.clip is not None:
        params_d = tricks.clip_weights(params_d, s.clip)
      ms = with_stats(ms, stats_g, stats_d)
      ms = update_historical(ms, params_d, "discriminator")
      ms, began = update_k(ms, metrics)
      metrics = {**metrics, **began, "discriminator_grad_norm": optax.tree.norm(grads)}
      return (params_d, opt_d, ms), metrics

    # A Python loop over the static n_critic, not a lax.scan: inside a loop
    # body XLA:CPU leaves the strided-conv weight gradients off its fast path
    # (~45x slower per convolution).
    carry = (state.params["discriminator"], state.opt_state["discriminator"], model_state)
    per_update = []
    for i in range(n):
      carry, metrics_i = critic_update(carry, i)
      per_update.append(metrics_i)
    params_d, opt_d, model_state = carry
    critic_metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *per_update)

    def generator_loss(p):
      k_fake, k_terms = jax.random.split(keys["generator"])
      fake, info, stats_g = make_fakes(p, model_state.get("generator_batch_stats"),
                                       model_state, k_fake, x.shape[0], train=True)
      loss, metrics = generator_terms(params_d, model_state.get("discriminator_batch_stats"),
                                      x, labels, fake, info, k_terms)
      loss = loss + historical_penalty(p, model_state, "generator")
      return loss, (metrics, stats_g)

    (_, (g_metrics, stats_g)), grads = jax.value_and_grad(generator_loss, has_aux=True)(
        params_g)
    grads = collectives.mean_over_devices(grads)
    updates, opt_g = tx_g.update(grads, state.opt_state["generator"], params_g)
    params_g = optax.apply_updates(params_g, updates)
    model_state = with_stats(model_state, stats_g,
                             model_state.get("discriminator_batch_stats"))
    model_state = update_historical(model_state, params_g, "generator")
    model_state = ema_update(model_state, params_g)
    metrics = {**critic_metrics, **g_metrics,
               "generator_grad_norm": optax.tree.norm(grads),
               "loss": critic_metrics["discriminator_loss"]}
    new_state = state.replace(
        step=state.step + 1,
        params={"generator": params_g, "discriminator": params_d},
        opt_state={"generator": opt_g, "discriminator": opt_d},
        model_state=model_state)
    return new_state, metrics

  def consensus_step(state: TrainState, batch: Batch
                     ) -> tuple[TrainState, dict[str, Array]]:
    keys = state.keys("fake", "discriminator", "generator")
    x, labels = batch["x"], batch.get("label")
    model_state = state.model_state
    if kind == "ssgan":
      model_state = {**model_state,
                     "labelled": fill_labelled(model_state["labelled"], x, labels)}
    ms = model_state

    def both_losses(params):
      fake, info, stats_g = make_fakes(params["generator"], ms.get("generator_batch_stats"),
                                       ms, keys["fake"], x.shape[0], train=True)
      loss_d, d_metrics, stats_d = discriminator_terms(
          params["discriminator"], ms.get("discriminator_batch_stats"), x, labels, fake,
          info, keys["discriminator"], ms.get("k", jnp.zeros(())), ms)
      loss_g, g_metrics = generator_terms(params["discriminator"],
                                          ms.get("discriminator_batch_stats"), x, labels,
                                          fake, info, keys["generator"])
      loss_d = loss_d + historical_penalty(params["discriminator"], ms, "discriminator")
      loss_g = loss_g + historical_penalty(params["generator"], ms, "generator")
      return loss_g, loss_d, (_stop({**d_metrics, **g_metrics}), _stop((stats_g, stats_d)))

    directions, c_metrics, (metrics, (stats_g, stats_d)) = tricks.consensus_gradients(
        both_losses, state.params, s.consensus)
    directions = collectives.mean_over_devices(directions)
    params, opt_state = {}, {}
    for player, tx in (("generator", tx_g), ("discriminator", tx_d)):
      updates, opt_state[player] = tx.update(directions[player],
                                             state.opt_state[player], state.params[player])
      params[player] = optax.apply_updates(state.params[player], updates)
    if s.clip is not None:
      params["discriminator"] = tricks.clip_weights(params["discriminator"], s.clip)
    model_state = with_stats(model_state, stats_g, stats_d)
    model_state = update_historical(model_state, params["discriminator"], "discriminator")
    model_state = update_historical(model_state, params["generator"], "generator")
    model_state, began = update_k(model_state, metrics)
    model_state = ema_update(model_state, params["generator"])
    metrics = {**metrics, **began, "consensus": c_metrics["consensus"],
               "loss": metrics["discriminator_loss"],
               "generator_grad_norm": optax.tree.norm(directions["generator"]),
               "discriminator_grad_norm": optax.tree.norm(directions["discriminator"])}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         model_state=model_state), metrics

  # ---------------------------------------------------- sample, evaluate
  def sampling_params(state: TrainState):
    """The generator weights used for samples: the debiased EMA, or the raw ones."""
    if s.sample_from == "generator":
      return state.params["generator"]
    correction = 1.0 - s.ema_decay ** state.step.astype(jnp.float32)
    safe = jnp.where(state.step > 0, correction, 1.0)
    return jax.tree.map(lambda e, p: jnp.where(state.step > 0, e / safe, p),
                        state.model_state["ema_generator"], state.params["generator"])

  def decode(state: TrainState, z: Array, **conditioning) -> Array:
    """Samples for noise z: [N, latent_dim] (+ labels= / categorical=, continuous=).

    Without conditioning, labels and categorical codes cycle through 0, 1, ...
    and continuous codes are 0. Style noise (if any) is fixed by z's count.
    """
    num = z.shape[0]
    cycle = jnp.arange(num) % max(num_classes, 1)
    parts = [z]
    if kind in ("cgan", "acgan"):
      labels = conditioning.get("labels")
      parts.append(jax.nn.one_hot(cycle if labels is None else jnp.asarray(labels),
                                  num_classes))
    if kind == "infogan":
      if s.categorical:
        cat = conditioning.get("categorical")
        cat = jnp.arange(num) % s.categorical if cat is None else jnp.asarray(cat)
        parts.append(jax.nn.one_hot(cat, s.categorical))
      if s.continuous:
        cont = conditioning.get("continuous")
        parts.append(jnp.zeros((num, s.continuous)) if cont is None
                     else jnp.broadcast_to(jnp.asarray(cont, jnp.float32),
                                           (num, s.continuous)))
    unknown = set(conditioning) - {"labels", "categorical", "continuous", "noise_key"}
    if unknown:
      raise TypeError(f"unknown conditioning {sorted(unknown)} for method {kind!r}")
    key = conditioning.get("noise_key", jax.random.PRNGKey(0))
    x, _ = run_generator(sampling_params(state), state.model_state.get(
        "generator_batch_stats"), jnp.concatenate(parts, axis=-1), state.model_state,
        train=False, key=key)
    return x

  def sample(state: TrainState, key: jax.Array, num: int, **conditioning) -> Array:
    """num samples; conditional methods take labels= (default: 0, 1, ..., cycling)
    or InfoGAN's categorical= / continuous= (default: cycling / U(-1, 1))."""
    keys = rng.split(key, "inputs", "noise")
    labels = conditioning.pop("labels", None)
    categorical = conditioning.pop("categorical", None)
    continuous = conditioning.pop("continuous", None)
    if conditioning:
      raise TypeError(f"unknown conditioning {sorted(conditioning)} for method {kind!r}")
    cycle = jnp.arange(num) % max(num_classes, 1)
    if kind in ("cgan", "acgan"):
      labels = cycle if labels is None else jnp.broadcast_to(jnp.asarray(labels), (num,))
    if kind == "infogan":
      if categorical is None and s.categorical:
        categorical = jnp.arange(num) % s.categorical
      if categorical is not None:
        categorical = jnp.broadcast_to(jnp.asarray(categorical), (num,))
      if continuous is not None:
        continuous = jnp.broadcast_to(jnp.asarray(continuous, jnp.float32),
                                      (num, s.continuous))
    inputs, _ = generator_inputs(keys["inputs"], num, labels=labels,
                                 categorical=categorical, continuous=continuous)
    x, _ = run_generator(sampling_params(state),
                         state.model_state.get("generator_batch_stats"), inputs,
                         state.model_state, train=False, key=keys["noise"])
    return x

  def evaluate(state: TrainState, batch: Batch, key: jax.Array) -> dict[str, Array]:
    """Per-example held-out discriminator loss and scores (+ classifier error)."""
    x, labels = batch["x"], batch.get("label")
    ms = state.model_state
    keys = rng.split(key, "fake", "other")
    fake, info, _ = make_fakes(state.params["generator"], ms.get("generator_batch_stats"),
                               ms, keys["fake"], x.shape[0], train=False)
    params_d, stats_d = state.params["discriminator"], ms.get("discriminator_batch_stats")
    out_real, _ = run_discriminator(params_d, stats_d, x, condition_of(labels),
                                    train=False, key=None)
    out_fake, _ = run_discriminator(params_d, stats_d, fake,
                                    condition_of(info.get("labels")), train=False, key=None)
    real, fakes = score(out_real, x), score(out_fake, fake)
    result = {"discriminator_loss": discriminator_objective(real, fakes,
                                                            ms.get("k", jnp.zeros(()))),
              "score_real": real, "score_fake": fakes}
    if kind in ("acgan", "ssgan") and labels is not None:
      logits = out_real["class_logits"][:, :num_classes]
      result["error"] = (jnp.argmax(logits, -1) != labels).astype(jnp.float32)
      result["nll"] = losses.softmax_cross_entropy(logits=logits, labels=labels)
    if kind == "infogan" and s.categorical:
      # How well Q recovers the categorical code of fresh samples.
      result["q_categorical_error"] = (
          jnp.argmax(out_fake["q_categorical_logits"], -1) != info["categorical"]
      ).astype(jnp.float32)
    return result

  protocol = {
      "estimator": "per test example i: the discriminator's loss on (x_i, G(z_i)) "
                   "without penalties, z_i fresh per example; networks in eval mode",
      "objective": s.objective + (f" ({s.divergence})" if s.divergence else ""),
      "published_defaults": s.paper,
      "settings": s.to_json(),
      "units": "the objective's own (nats for cross-entropies); error is a "
               "fraction of test examples",
  }
  return Method(name=kind, init=init,
                train_step=consensus_step if s.consensus else alternating_step,
                sample=sample, evaluate=evaluate, decode=decode, eval_protocol=protocol)


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
