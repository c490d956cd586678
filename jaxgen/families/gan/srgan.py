"""Single-image super-resolution (Ledig et al. 2017): the method `srgan`.

The generator (SRResNet: residual blocks with BN and PReLU, a global skip,
sub-pixel upsampling; jaxgen.nn.srresnet) maps a low-resolution image to one
`model.scale` times larger. The low-resolution input is computed inside the
method from the batch's x: the mean of each scale x scale block
(`srgan_losses.box_downsample`), so every dataset of images whose sides the
scale divides is a super-resolution task (digits 4x4 -> 8x8 at scale 2, MNIST
7x7 -> 28x28 at scale 4) and no data transform is needed.

Losses (Ledig et al. 2017, eqs. 3-6): the generator minimises
  pixel_weight · MSE(G(x_lr), x) + feature_weight · MSE(φ(G(x_lr)), φ(x))
  + adversarial_weight · ℓ_adv(D(G(x_lr)))
where φ is the shipped digit LeNet (jaxgen.metrics.lenet, frozen; standing in
for VGG) at `model.feature_layer`, and ℓ_adv is the generator loss of
`model.objective` in the GAN objective table (default non_saturating,
-log D(G(x_lr)) as in the paper), whose discriminator loss D minimises. With
`model.adversarial_weight=0` the method is the SRResNet baseline: the same
generator on the content loss alone, D neither trained nor used.

One step: one D update on (x, G(x_lr)), then one G update against the updated
D. Both networks are deterministic, so the step draws no randomness.

  config = jaxgen.get_config("srgan", "digits")      # 2x: 4x4 -> 8x8
  result = jaxgen.fit(config)
  low = srgan_losses.box_downsample(x, 2)            # [N, 4, 4, 1] in the data range
  sr = result.method.sample(result.state, key, len(low), low_res=low)   # [N, 8, 8, 1]

`sample(state, key, num, low_res=None)`: `low_res` [num, H/s, W/s, C] in the
data's range are the images to upsample (`jaxgen sample --low-res FILE.npz`).
Without it, sample upsamples the `preview` kept in model_state: the
low-resolution versions of the first 16 examples of the batch `init` saw
(repeated when the batch is smaller), cycled to `num` rows — so the engine's
sample grids show super-resolved training images. `reconstruct(state, batch,
key)` super-resolves a batch's own downsampled images. `evaluate` gives, per
test example, the MSE, PSNR and SSIM of G's output and of bicubic
upsampling against the original (`jaxgen.metrics.image_quality`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen import registry
from jaxgen.core import collectives, optim, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.gan import srgan_losses
from jaxgen.families.gan.srgan_settings import Networks, build_networks, default_config
from jaxgen.metrics import image_quality

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]
Params = dict[str, Any]

KIND = "srgan"
PREVIEW = 16   # low-resolution images kept for sample() without low_res


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The srgan method for `config` on image data described by `spec`."""
  nets = build_networks(config, spec)
  s = nets.s
  horizon = optim.schedule_horizon(config.train)
  tx_g = optim.make(s.generator_optim, horizon, "generator_optim")
  tx_d = optim.make(s.discriminator_optim, horizon, "discriminator_optim")
  protocol = {
      "estimator": "per test example: the original x against G(box_downsample(x)) and "
                   "against bicubic upsampling (jax.image.resize 'bicubic', clipped), "
                   "G with BatchNorm's running statistics; PSNR 10·log10(1/MSE) and "
                   "SSIM (7x7 uniform window, or the largest odd one that fits; K1 "
                   "0.01, K2 0.03, skimage's defaults) on images mapped to [0, 1]; "
                   "mse in the data range",
      "low_resolution": f"box_downsample by {s.model.scale} (mean of each block)",
      "units": "mse: data units squared; psnr: dB; ssim: unitless (images in [0, 1])",
      "published_defaults": s.paper, "settings": s.to_json(),
  }
  return Method(
      name=KIND, init=functools.partial(init, nets, tx_g, tx_d),
      train_step=functools.partial(train_step, nets, tx_g, tx_d),
      sample=functools.partial(sample, nets), evaluate=functools.partial(evaluate, nets),
      reconstruct=functools.partial(reconstruct, nets), eval_protocol=protocol)


def init(nets: Networks, tx_g, tx_d, key: Array, batch: Batch) -> TrainState:
  """Both networks' variables, their optimizer states and the preview inputs."""
  keys = rng.split(key, "generator", "discriminator", "base")
  x = batch["x"]
  low = srgan_losses.box_downsample(x, nets.s.model.scale)
  g_vars = nets.generator().init(keys["generator"], low[:2], train=False)
  d_vars = nets.discriminator().init(keys["discriminator"], x[:2], train=False)
  model_state = {"preview": low[jnp.arange(PREVIEW) % low.shape[0]]}
  if "batch_stats" in g_vars:
    model_state["generator_batch_stats"] = g_vars["batch_stats"]
  if "batch_stats" in d_vars:
    model_state["discriminator_batch_stats"] = d_vars["batch_stats"]
  params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
  return TrainState.create(
      key=keys["base"], params=params,
      opt_state={"generator": tx_g.init(params["generator"]),
                 "discriminator": tx_d.init(params["discriminator"])},
      model_state=model_state)


def _variables(state: TrainState, player: str, params: Params | None = None) -> Params:
  variables = {"params": state.params[player] if params is None else params}
  stats = state.model_state.get(f"{player}_batch_stats")
  if stats is not None:
    variables["batch_stats"] = stats
  return variables


# ---------------------------------------------------------------- the step
def discriminator_loss(nets: Networks, params_d: Params, stats_d: Any, x: Array,
                       fake: Array) -> tuple[Array, tuple[Any, Metrics]]:
  """D's scalar loss on real x and G's outputs; (loss, (new statistics, metrics))."""
  variables = {"params": params_d, "batch_stats": stats_d} if stats_d is not None else {
      "params": params_d}
  real_score, variables = nets.discriminate(variables, x, train=True)
  fake_score, variables = nets.discriminate(variables, fake, train=True)
  loss = jnp.mean(nets.objective.discriminator_loss(real_score, fake_score,
                                                    nets.loss_values()))
  return loss, (variables.get("batch_stats"), {
      "discriminator_loss": loss, "score_real": jnp.mean(real_score),
      "score_fake": jnp.mean(fake_score)})


def generator_loss(nets: Networks, params_g: Params, stats_g: Any, d_variables: Params,
                   low: Array, x: Array, target_features: Array | None
                   ) -> tuple[Array, tuple[Any, Metrics]]:
  """G's scalar loss: content + adversarial; (loss, (new statistics, metrics))."""
  variables = {"params": params_g, "batch_stats": stats_g} if stats_g is not None else {
      "params": params_g}
  output, variables = nets.generate(variables, low, train=True)
  m = nets.s.model
  content, parts = srgan_losses.content_loss(
      output=output, target=x,
      output_features=nets.features(output) if m.feature_weight else None,
      target_features=target_features, pixel_weight=m.pixel_weight,
      feature_weight=m.feature_weight)
  loss = jnp.mean(content)
  metrics = {f"content_{k}": jnp.mean(v) for k, v in parts.items()}
  metrics["content_loss"] = loss
  if nets.s.adversarial:
    score, _ = nets.discriminate(d_variables, output, train=True)
    adversarial = jnp.mean(nets.objective.generator_loss(score, nets.loss_values()))
    loss = loss + m.adversarial_weight * adversarial
    metrics["adversarial_loss"] = adversarial
  metrics["generator_loss"] = loss
  return loss, (variables.get("batch_stats"), metrics)


def _discriminator_update(nets: Networks, tx: optax.GradientTransformation,
                          state: TrainState, x: Array, fake: Array):
  stats = state.model_state.get("discriminator_batch_stats")
  (_, (stats, metrics)), grads = jax.value_and_grad(
      functools.partial(discriminator_loss, nets), has_aux=True)(
          state.params["discriminator"], stats, x, fake)
  grads = collectives.mean_over_devices(grads)
  params, opt = optim.apply_gradients(tx, grads, state.opt_state["discriminator"],
                                      state.params["discriminator"])
  return params, opt, stats, {**metrics, "discriminator_grad_norm": optax.tree.norm(grads)}


def train_step(nets: Networks, tx_g, tx_d, state: TrainState, batch: Batch
               ) -> tuple[TrainState, Metrics]:
  """One D update on (x, G(x_lr)) (unless SRResNet), then one G update."""
  x = batch["x"]
  low = srgan_losses.box_downsample(x, nets.s.model.scale)
  params = dict(state.params)
  opt_state = dict(state.opt_state)
  model_state = dict(state.model_state)
  metrics: Metrics = {}
  if nets.s.adversarial:
    fake, _ = nets.generate(_variables(state, "generator"), low, train=True)
    params_d, opt_d, stats_d, metrics = _discriminator_update(
        nets, tx_d, state, x, jax.lax.stop_gradient(fake))
    params["discriminator"], opt_state["discriminator"] = params_d, opt_d
    if stats_d is not None:
      model_state["discriminator_batch_stats"] = stats_d
  d_variables = {"params": params["discriminator"]}
  if "discriminator_batch_stats" in model_state:
    d_variables["batch_stats"] = model_state["discriminator_batch_stats"]
  target_features = (jax.lax.stop_gradient(nets.features(x))
                     if nets.s.model.feature_weight else None)
  (_, (stats_g, g_metrics)), grads = jax.value_and_grad(
      functools.partial(generator_loss, nets), has_aux=True)(
          state.params["generator"], state.model_state.get("generator_batch_stats"),
          d_variables, low, x, target_features)
  grads = collectives.mean_over_devices(grads)
  params["generator"], opt_state["generator"] = optim.apply_gradients(
      tx_g, grads, state.opt_state["generator"], state.params["generator"])
  if stats_g is not None:
    model_state["generator_batch_stats"] = stats_g
  metrics = {**metrics, **g_metrics, "generator_grad_norm": optax.tree.norm(grads),
             "loss": g_metrics["generator_loss"]}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       model_state=model_state), metrics


# ------------------------------------------------ sampling, evaluation
def upsample(nets: Networks, state: TrainState, low: Array) -> Array:
  """G(low) with BatchNorm's running statistics: [N, H, W, C] in the data range."""
  out, _ = nets.generate(_variables(state, "generator"), low, train=False)
  return jnp.clip(out, *nets.value_range)


def sample(nets: Networks, state: TrainState, key: Array, num: int,
           low_res: Array | None = None) -> Array:
  """Super-resolved images [num, H, W, C] of `low_res` [num, H/s, W/s, C] (or of the
  preview, cycled). G is deterministic: `key` is not used."""
  del key
  if low_res is None:
    preview = state.model_state["preview"]
    return upsample(nets, state, preview[jnp.arange(num) % preview.shape[0]])
  low_res = jnp.asarray(low_res, jnp.float32)
  h, w, c = nets.low_shape
  if low_res.ndim == 3 and c == 1:
    low_res = low_res[..., None]
  if low_res.shape != (num, h, w, c):
    raise ConfigError(f"low_res must have shape [{num}, {h}, {w}, {c}] ({num} images at "
                      f"1/{nets.s.model.scale} of the data's {nets.shape[0]}x"
                      f"{nets.shape[1]}), got {list(low_res.shape)}")
  return upsample(nets, state, low_res)


def reconstruct(nets: Networks, state: TrainState, batch: Batch, key: Array) -> Array:
  """G(box_downsample(x)) for the batch's x: [B, H, W, C]."""
  del key
  return upsample(nets, state, srgan_losses.box_downsample(batch["x"], nets.s.model.scale))


def evaluate(nets: Networks, state: TrainState, batch: Batch, keys: Array
             ) -> dict[str, Array]:
  """Per test example: MSE, PSNR, SSIM of G's output and of bicubic upsampling."""
  del keys   # deterministic
  x = batch["x"]
  low = srgan_losses.box_downsample(x, nets.s.model.scale)
  outputs = {"": upsample(nets, state, low),
             "_bicubic": srgan_losses.bicubic_upsample(low, nets.s.model.scale,
                                                       nets.value_range)}
  values = {}
  window = min(image_quality.WINDOW, *[n - (1 - n % 2) for n in nets.shape[:2]])
  unit = to_unit_range(nets, x)
  for suffix, out in outputs.items():
    values[f"mse{suffix}"] = image_quality.mse(out, x)
    # PSNR and SSIM on images mapped to [0, 1] (as on 8-bit images): SSIM's
    # luminance term depends on where the range starts.
    values[f"psnr{suffix}"] = image_quality.psnr(to_unit_range(nets, out), unit,
                                                 data_range=1.0)
    values[f"ssim{suffix}"] = image_quality.ssim(to_unit_range(nets, out), unit,
                                                 data_range=1.0, win_size=window)
  return values


def to_unit_range(nets: Networks, x: Array) -> Array:
  """Images in the data range -> [0, 1]."""
  low, high = nets.value_range
  return (x - low) / (high - low)


registry.register(
    KIND, family="gan",
    description="single-image super-resolution (Ledig et al. 2017): SRResNet generator "
                "with sub-pixel upsampling, content (pixel / LeNet-feature MSE) + 1e-3 "
                "adversarial loss; model.adversarial_weight=0 is SRResNet",
    default_config=default_config, make=make, default_data="digits")
