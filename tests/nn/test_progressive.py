"""Progressive-growing layers and networks against NumPy oracles and invariants."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.nn import progressive as pg

CHANNELS = (8, 6, 4)      # resolutions 4, 8, 16


def test_pixel_norm_gives_unit_mean_square_per_pixel():
  x = np.random.default_rng(0).normal(size=(3, 5, 5, 7)).astype(np.float32) * 9.0
  y = np.asarray(pg.pixel_norm(jnp.asarray(x)))
  np.testing.assert_allclose(np.mean(y * y, axis=-1), 1.0, rtol=1e-5)
  # Direction kept: y is x divided by a positive per-pixel constant.
  np.testing.assert_allclose(y * np.sqrt(np.mean(x * x, -1, keepdims=True) + 1e-8), x,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("group", [4, 2, 8, 16])
def test_minibatch_stddev_matches_numpy(group):
  x = np.random.default_rng(1).normal(size=(8, 3, 3, 5)).astype(np.float32)
  got = np.asarray(pg.minibatch_stddev(jnp.asarray(x), group))
  g = min(group, 8)
  want = np.empty((8,), np.float64)
  for first in range(0, 8, g):
    members = x[first:first + g].astype(np.float64)
    std = np.sqrt(members.var(axis=0) + 1e-8)          # biased, per feature and pixel
    want[first:first + g] = std.mean()
  assert got.shape == (8, 3, 3, 6)
  np.testing.assert_array_equal(got[..., :5], x)
  np.testing.assert_allclose(got[..., 5], np.broadcast_to(want[:, None, None], (8, 3, 3)),
                             rtol=1e-5)
  with pytest.raises(ValueError, match="do not divide"):
    pg.minibatch_stddev(jnp.asarray(x[:6]), 4)


def test_nearest_upsampling_and_average_pooling():
  x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
  up = np.asarray(pg.upsample(jnp.asarray(x)))
  np.testing.assert_array_equal(up, x.repeat(2, 1).repeat(2, 2))
  np.testing.assert_array_equal(np.asarray(pg.downsample(jnp.asarray(up))), x)
  y = np.random.default_rng(2).normal(size=(1, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(pg.downsample(jnp.asarray(y)))[0, 1, 0],
                             y[0, 2:4, 0:2].mean(axis=(0, 1)), rtol=1e-6)


def _conv_oracle(x, w):
  """'SAME' stride-1 correlation in NumPy: x [N, H, W, C], w [k, k, C, F]."""
  k = w.shape[0]
  p = k // 2
  padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  out = np.zeros(x.shape[:3] + (w.shape[-1],))
  for i in range(k):
    for j in range(k):
      out += padded[:, i:i + x.shape[1], j:j + x.shape[2]] @ w[i, j]
  return out


def _layer_calls(module, variables, *args, **kwargs):
  """(layer, its input, its output) for every equalized layer of a forward pass."""
  calls = []

  def record(next_fun, args_, kwargs_, context):
    out = next_fun(*args_, **kwargs_)
    if (isinstance(context.module, (pg.EqualizedConv, pg.EqualizedDense))
        and context.method_name == "__call__"):
      layer = context.module
      calls.append((layer.gain, jax.tree.map(np.asarray, layer.variables["params"]),
                    np.asarray(args_[0]), np.asarray(out)))
    return out

  with nn.intercept_methods(record):
    module.apply(variables, *args, **kwargs)
  return calls


@pytest.mark.parametrize("equalized", [True, False])
def test_every_layer_uses_hes_constant_at_run_time(equalized):
  g = pg.ProgressiveGenerator(channels=CHANNELS, out_channels=1, equalized=equalized)
  d = pg.ProgressiveDiscriminator(channels=CHANNELS, equalized=equalized)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
  g_vars = g.init(jax.random.PRNGKey(1), z, stage=2)
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 16, 16, 1))
  d_vars = d.init(jax.random.PRNGKey(3), x, stage=2)
  calls = (_layer_calls(g, g_vars, z, stage=2, alpha=0.5)
           + _layer_calls(d, d_vars, x, stage=2, alpha=0.5))
  assert len(calls) == 8 + 9   # every layer of G and D at stage 2
  for gain, params, inputs, outputs in calls:
    kernel, bias = params["kernel"].astype(np.float64), params["bias"]
    fan_in = math.prod(kernel.shape[:-1])
    scale = gain / math.sqrt(fan_in)
    assert pg.runtime_scale(fan_in) == pytest.approx(math.sqrt(2 / fan_in))
    if gain == pg.SQRT2:
      assert scale == pytest.approx(math.sqrt(2 / fan_in))
    weight = kernel * scale if equalized else kernel
    want = (inputs @ weight if kernel.ndim == 2 else _conv_oracle(inputs, weight)) + bias
    np.testing.assert_allclose(outputs, want, rtol=1e-4, atol=1e-5)
    if kernel.size >= 200:   # stored weights: N(0, 1) equalized, N(0, c²) otherwise
      assert np.std(kernel) == pytest.approx(1.0 if equalized else scale, rel=0.2)


def _adam_step_in_units_of_he_constant(equalized):
  """Per layer: Adam's first step on the effective weights, divided by He's constant."""
  d = pg.ProgressiveDiscriminator(channels=(16, 8, 4), equalized=equalized)
  x = jax.random.normal(jax.random.PRNGKey(4), (8, 16, 16, 1))
  params = d.init(jax.random.PRNGKey(5), x, stage=2)["params"]
  grads = jax.jit(jax.grad(
      lambda p: jnp.mean(d.apply({"params": p}, x, stage=2, alpha=0.5) ** 2)))(params)
  tx = optax.adam(1e-3)
  updates, _ = tx.update(grads, tx.init(params), params)
  steps = {}
  for name, layer in params.items():
    kernel, grad = layer["kernel"], np.asarray(grads[name]["kernel"])
    fan_in = math.prod(kernel.shape[:-1])
    gain = 1.0 if name in ("to_rgb", "output") else pg.SQRT2
    scale = gain / math.sqrt(fan_in)
    effective = np.asarray(updates[name]["kernel"]) * (scale if equalized else 1.0)
    moving = np.abs(grad) > 1e-5    # Adam's first step is ±lr there
    steps[name] = np.median(np.abs(effective[moving])) / scale
  return steps


def test_equalized_lr_gives_every_layer_the_same_relative_adam_step():
  # Adam's step does not depend on the gradient's scale (its first step is
  # ±lr), so with weights stored at He's scale c a layer moves by lr/c of its
  # own size: small-fan-in layers learn slower. Stored as N(0, 1) and scaled at
  # run time, every layer moves by lr in units of its own scale.
  equalized = _adam_step_in_units_of_he_constant(True)
  for name, step in equalized.items():
    assert step == pytest.approx(1e-3, rel=1e-3), name
  plain = _adam_step_in_units_of_he_constant(False)
  ratios = np.array(list(plain.values())) / 1e-3
  assert ratios.max() / ratios.min() > 3.0, plain   # lr/c: spread with the fan-in


def test_adam_step_is_invariant_to_rescaling_the_stored_weights():
  # The premise of the above: rescale the stored kernel by k and the runtime
  # constant by 1/k (the same network); Adam's step on the stored values is the
  # same, so only the runtime constant decides each layer's speed.
  x = jax.random.normal(jax.random.PRNGKey(6), (6, 12))
  v = jax.random.normal(jax.random.PRNGKey(7), (12, 3))
  steps = []
  for k in (1.0, 50.0):
    c = math.sqrt(2 / 12) / k
    grads = jax.grad(lambda stored: jnp.sum(jnp.tanh(x @ (stored * c)) ** 2))(v * k)
    tx = optax.adam(1e-3)
    update, _ = tx.update(grads, tx.init(v))
    steps.append(np.asarray(update))
  np.testing.assert_allclose(steps[0], steps[1], rtol=1e-4)


@pytest.fixture(scope="module")
def nets():
  g = pg.ProgressiveGenerator(channels=CHANNELS, out_channels=2)
  d = pg.ProgressiveDiscriminator(channels=CHANNELS)
  z = jax.random.normal(jax.random.PRNGKey(8), (4, 5))
  g_params, d_params = {}, {}
  for stage in range(3):
    g_params.update(g.init(jax.random.PRNGKey(9), z, stage=stage)["params"])
    x = jnp.zeros((4, 4 * 2**stage, 4 * 2**stage, 2))
    d_params.update(d.init(jax.random.PRNGKey(10), x, stage=stage)["params"])
  return g, d, z, g_params, d_params


def _perturbed(params, names):
  return {k: (jax.tree.map(lambda a: a + 3.0, v) if k in names else v)
          for k, v in params.items()}


@pytest.mark.parametrize("stage", [1, 2])
def test_generator_fade_in_is_exact_at_both_ends(nets, stage):
  g, _, z, params, _ = nets
  previous = np.asarray(g.apply({"params": params}, z, stage=stage - 1))
  at_zero = np.asarray(g.apply({"params": params}, z, stage=stage, alpha=jnp.float32(0.0)))
  np.testing.assert_array_equal(at_zero, previous.repeat(2, 1).repeat(2, 2))
  # α = 1: the new block alone; the previous toRGB is not read at all.
  at_one = g.apply({"params": params}, z, stage=stage, alpha=jnp.float32(1.0))
  other = g.apply({"params": _perturbed(params, {f"to_rgb{stage - 1}"})}, z, stage=stage,
                  alpha=jnp.float32(1.0))
  np.testing.assert_array_equal(np.asarray(at_one), np.asarray(other))
  changed = g.apply({"params": _perturbed(params, {f"to_rgb{stage}"})}, z, stage=stage,
                    alpha=jnp.float32(1.0))
  assert not np.allclose(np.asarray(changed), np.asarray(at_one))
  half = g.apply({"params": params}, z, stage=stage, alpha=jnp.float32(0.25))
  np.testing.assert_allclose(np.asarray(half), 0.75 * at_zero + 0.25 * np.asarray(at_one),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stage", [1, 2])
def test_discriminator_fade_in_is_exact_at_both_ends(nets, stage):
  _, d, _, _, params = nets
  size = 4 * 2**stage
  x = jax.random.normal(jax.random.PRNGKey(11), (4, size, size, 2))
  previous = np.asarray(d.apply({"params": params}, pg.downsample(x), stage=stage - 1))
  at_zero = d.apply({"params": params}, x, stage=stage, alpha=jnp.float32(0.0))
  np.testing.assert_array_equal(np.asarray(at_zero), previous)
  new_block = {f"from_rgb{stage}", f"block{stage}_conv0", f"block{stage}_conv1"}
  untouched = d.apply({"params": _perturbed(params, new_block)}, x, stage=stage,
                      alpha=jnp.float32(0.0))
  np.testing.assert_array_equal(np.asarray(untouched), previous)
  at_one = d.apply({"params": params}, x, stage=stage, alpha=jnp.float32(1.0))
  other = d.apply({"params": _perturbed(params, {f"from_rgb{stage - 1}"})}, x, stage=stage,
                  alpha=jnp.float32(1.0))
  np.testing.assert_array_equal(np.asarray(at_one), np.asarray(other))
  assert not np.allclose(np.asarray(at_one), previous)


def test_stage_programs_use_distinct_layers_for_their_resolutions(nets):
  g, d, z, g_params, d_params = nets
  assert sorted(g_params) == sorted(
      ["input_dense", "input_conv", "to_rgb0", "to_rgb1", "to_rgb2"]
      + [f"block{s}_conv{i}" for s in (1, 2) for i in (0, 1)])
  assert {"from_rgb0", "from_rgb1", "from_rgb2", "final_conv", "final_dense",
          "output"} <= set(d_params)
  for stage in range(3):
    out = g.apply({"params": g_params}, z, stage=stage, alpha=0.5)
    assert out.shape == (4, 4 * 2**stage, 4 * 2**stage, 2)
    assert d.apply({"params": d_params}, out, stage=stage, alpha=0.5).shape == (4,)
