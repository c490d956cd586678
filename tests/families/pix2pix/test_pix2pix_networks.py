"""pix2pix's networks and losses against hand computations: the U-Net's skip
wiring, the PatchGAN's receptive field, and the losses against their formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.pix2pix import losses, networks


def conv_window(j, kernel, stride, size_in):
  """Input indices seen by output j of a 'SAME' convolution (flax/XLA padding rule)."""
  size_out = -(-size_in // stride)
  pad_low = max((size_out - 1) * stride + kernel - size_in, 0) // 2
  start = j * stride - pad_low
  return {i for i in range(start, start + kernel) if 0 <= i < size_in}


def conv_transpose_window(o, kernel, stride, size_in):
  """Input indices seen by output o of a 'SAME' transposed convolution.

  lax.conv_transpose dilates the input by `stride` and pads it by
  pad_a = ceil((kernel + stride − 2) / 2) in front (kernel − 1 when stride >
  kernel − 1): input i sits at position pad_a + stride·i, and output o reads
  positions o .. o + kernel − 1.
  """
  pad_len = kernel + stride - 2
  pad_a = kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)
  return {i for i in range(size_in) if o <= pad_a + stride * i <= o + kernel - 1}


def _nonzero_support(grad):
  """Rows and columns where a gradient [1, H, W, C] is nonzero."""
  mask = np.any(np.asarray(grad)[0] != 0, axis=-1)
  return mask


def test_unet_output_reaches_the_input_through_the_outermost_skip():
  size, pixel = 16, (7, 10)
  net = networks.UNetGenerator(channels=(32, 16, 16), out_channels=1, norm="none")
  source = jax.random.normal(jax.random.PRNGKey(0), (1, size, size, 1))
  params = jax.jit(lambda k, s: net.init(k, s, train=False))(
      jax.random.PRNGKey(1), source)["params"]
  assert params["up_0"]["kernel"].shape[2] == 32 + 32   # skip (32) + way up (32)

  @jax.jit
  def pixel_grad(p):
    return jax.grad(lambda s: net.apply({"params": p}, s, train=False)[0, *pixel, 0])(source)

  # Cut the way up below the outermost level: only the skip of level 0 remains.
  p = jax.tree.map(jnp.asarray, params)
  p["up_1"] = jax.tree.map(jnp.zeros_like, p["up_1"])   # kernel and bias (norm 'none')
  support = _nonzero_support(pixel_grad(p))
  # By hand: output pixel o <- transposed-conv window on level 0 (8x8) <- conv windows.
  expected = np.zeros((size, size), bool)
  rows = {r for d in conv_transpose_window(pixel[0], 4, 2, size // 2)
          for r in conv_window(d, 4, 2, size)}
  cols = {c for d in conv_transpose_window(pixel[1], 4, 2, size // 2)
          for c in conv_window(d, 4, 2, size)}
  expected[np.ix_(sorted(rows), sorted(cols))] = True
  np.testing.assert_array_equal(support, expected)
  assert expected.sum() == 6 * 6   # two 4-wide windows, stride 2 apart, per axis
  # Cutting the skip's half of up_0 too leaves no path at all.
  kernel = p["up_0"]["kernel"]
  p["up_0"] = {**p["up_0"], "kernel": kernel.at[:, :, :32].set(0.0)}
  assert not np.any(np.asarray(pixel_grad(p)))
  # With every path open the pixel sees beyond the skip's window (the bottleneck).
  assert _nonzero_support(pixel_grad(params)).sum() > expected.sum()


def test_unet_handles_odd_sizes_and_dropout_is_per_example():
  net = networks.UNetGenerator(channels=(8, 8, 8), out_channels=1, norm="instance")
  source = jax.random.normal(jax.random.PRNGKey(0), (4, 7, 7, 1))
  params = jax.jit(lambda k, s: net.init(k, s, train=False))(jax.random.PRNGKey(1), source)
  apply = jax.jit(lambda s, k: net.apply(params, s, train=True, dropout_key=k))
  keys = jax.random.split(jax.random.PRNGKey(2), 4)
  out = apply(source, keys)
  assert out.shape == (4, 7, 7, 1) and np.all(np.abs(out) <= 1.0)
  # Example i's mask comes from its own key: a batch of two gives the same two outputs.
  np.testing.assert_allclose(apply(source[:2], keys[:2]), out[:2], rtol=1e-5, atol=1e-6)
  no_dropout = jax.jit(lambda s: net.apply(params, s, train=True))(source)
  assert not np.allclose(no_dropout, out)


@pytest.mark.parametrize("kernel,widths", [(4, (8, 8, 8)), (3, (8, 8))])
def test_patchgan_output_sees_exactly_its_receptive_field(kernel, widths):
  size = 64
  net = networks.PatchDiscriminator(channels=widths, kernel=kernel, norm="none")
  source = jax.random.normal(jax.random.PRNGKey(0), (1, size, size, 1))
  image = jax.random.normal(jax.random.PRNGKey(1), (1, size, size, 1))
  params = jax.jit(net.init)(jax.random.PRNGKey(2), source, image)
  logits = jax.eval_shape(net.apply, params, source, image)
  strides = [2] * (len(widths) - 1) + [1, 1]
  out_size = size // 2 ** (len(widths) - 1)
  assert logits.shape == (1, out_size, out_size, 1)
  centre = out_size // 2
  grad_source, grad_image = jax.jit(jax.grad(
      lambda s, x: net.apply(params, s, x)[0, centre, centre, 0], argnums=(0, 1)))(
          source, image)
  # By hand: walk the centre output back through every layer's window.
  sizes = [size]
  for stride in strides[:-1]:
    sizes.append(-(-sizes[-1] // stride))
  window = {centre}
  for stride, size_in in reversed(list(zip(strides, sizes))):
    window = {i for j in window for i in conv_window(j, kernel, stride, size_in)}
  expected = np.zeros((size, size), bool)
  expected[np.ix_(sorted(window), sorted(window))] = True
  for grad in (grad_source, grad_image):
    np.testing.assert_array_equal(_nonzero_support(grad), expected)
  assert len(window) == networks.receptive_field(kernel, len(widths))


def test_receptive_field_formula_gives_the_papers_sizes():
  # Isola et al. 2017, appendix 6.1.2: the 16x16, 70x70 and 286x286 PatchGANs have
  # 2, 4 and 6 hidden 4x4 layers (C64-C128; C64-C128-C256-C512; ... -C512-C512).
  assert [networks.receptive_field(4, n) for n in (2, 4, 6)] == [16, 70, 286]


def test_losses_match_their_formulas():
  rng = np.random.default_rng(0)
  output, target = rng.normal(size=(2, 3, 4, 4, 1)).astype(np.float32)
  np.testing.assert_allclose(losses.l1_loss(output=output, target=target),
                             np.abs(output - target).reshape(3, -1).mean(-1), rtol=1e-6)
  real, fake = rng.normal(size=(2, 3, 2, 2, 1)).astype(np.float64)
  sigmoid = lambda v: 1 / (1 + np.exp(-v))   # noqa: E731
  expected_d = -0.5 * (np.log(sigmoid(real)) + np.log(1 - sigmoid(fake))).reshape(3, -1).mean(-1)
  np.testing.assert_allclose(
      losses.discriminator_loss(real_logits=jnp.asarray(real, jnp.float32),
                                fake_logits=jnp.asarray(fake, jnp.float32)),
      expected_d, rtol=1e-5)
  total, terms = losses.generator_loss(
      fake_logits=jnp.asarray(fake, jnp.float32), output=output, target=target,
      l1_weight=100.0, adversarial_weight=1.0)
  adversarial = -np.log(sigmoid(fake)).reshape(3, -1).mean(-1)
  np.testing.assert_allclose(terms["adversarial"], adversarial, rtol=1e-5)
  np.testing.assert_allclose(total, adversarial + 100 * terms["l1"], rtol=1e-5)
  only_l1, _ = losses.generator_loss(fake_logits=None, output=output, target=target,
                                     l1_weight=100.0, adversarial_weight=0.0)
  np.testing.assert_allclose(only_l1, 100 * np.abs(output - target).reshape(3, -1).mean(-1),
                             rtol=1e-5)
