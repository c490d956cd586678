"""Masked convolutions: masks by hand, causality by Jacobians, the blind spot and its removal."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import masked


def test_masks_by_hand():
  one = np.zeros(1, int)
  a = masked.causal_mask((3, 3), one, one, "A")[..., 0, 0]
  b = masked.causal_mask((3, 3), one, one, "B")[..., 0, 0]
  np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
  # Colour: R (group 0) sees no channel of its pixel under A; B sees R; G sees R, G.
  rgb = np.arange(3)
  np.testing.assert_array_equal(masked.centre_mask(rgb, rgb, "A"),
                                [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
  np.testing.assert_array_equal(masked.centre_mask(rgb, rgb, "B"),
                                [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
  np.testing.assert_array_equal(masked.channel_groups(6, 3), [0, 0, 1, 1, 2, 2])
  np.testing.assert_array_equal(masked.channel_groups(3 * 4, 3), np.repeat(rgb, 4))
  with pytest.raises(ValueError, match="odd sizes"):
    masked.causal_mask((2, 3), one, one, "A")
  with pytest.raises(ValueError, match="cannot carry"):
    masked.channel_groups(2, 3)


def _network(kind, colors, levels=3, layers=3, size=5):
  cls = masked.GatedPixelCNN if kind == "gated" else masked.PixelCNN
  # 4 features per colour group: with fewer, a group's ReLUs can all be dead
  # at the first pixel (which sees only its own earlier channels).
  net = cls(features=12, layers=layers, output_features=12, colors=colors, levels=levels,
            first_kernel=3, kernel=3)
  x = jax.random.normal(jax.random.PRNGKey(1), (8, size, size, colors))
  params = net.init(jax.random.PRNGKey(0), x[:1])
  # Random biases too: zero biases would leave some ReLUs dead at x by chance.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
  params = tree.unflatten([p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  return jax.jit(lambda x: net.apply(params, x)), x


def _order(size, colors):
  """(i, j, c) in the model's order: raster over pixels, then R, G, B."""
  return list(itertools.product(range(size), range(size), range(colors)))


@pytest.mark.parametrize("kind", ["pixelcnn", "gated"])
@pytest.mark.parametrize("colors", [1, 3])
def test_logits_do_not_depend_on_the_value_or_anything_after_it(kind, colors):
  size = 4 if colors == 1 else 3
  apply_fn, x = _network(kind, colors, size=size)
  order = _order(size, colors)
  deps = masked.dependencies(apply_fn, x)
  for n, position in enumerate(order):
    later = order[n:]
    assert all(deps[position + p] == 0.0 for p in later), position
  # Not vacuous: values depend on the one just before them (for colour, the
  # previous channel of the same pixel) in the same row (the plain stack's
  # blind spot hides the end of the row above).
  for n in range(1, len(order)):
    if order[n][0] == order[n - 1][0]:
      assert deps[order[n] + order[n - 1]] > 0, (order[n], order[n - 1])


def _blind_spots(kind, size=5):
  """(position, earlier pixel) pairs where the pixel has no influence (one channel)."""
  apply_fn, x = _network(kind, colors=1, layers=4, size=size)
  deps = masked.dependencies(apply_fn, x)[:, :, 0, :, :, 0]
  pixels = list(itertools.product(range(size), range(size)))
  return [(p, q) for p in pixels for q in pixels if q < p and deps[p + q] == 0.0]


@pytest.mark.slow
def test_gated_stacks_have_no_blind_spot_and_pixelcnn_has_one():
  # 5×5 images, a 3×3 first layer and 4 more: every earlier pixel is in reach.
  assert _blind_spots("gated") == []
  blind = _blind_spots("pixelcnn")
  # The plain stack never looks back to the right: from (1, 0), the pixels
  # (0, 2), (0, 3), (0, 4) of the row above are invisible.
  assert {((1, 0), (0, b)) for b in (2, 3, 4)} <= set(blind)
  # Every miss lies in a row above, to the right (the blind spot's shape).
  assert all(a < i and b > j + 1 for (i, j), (a, b) in blind), blind


def test_down_shift_moves_rows():
  x = jnp.arange(6.0).reshape(1, 3, 2, 1)
  np.testing.assert_array_equal(masked.down_shift(x)[0, :, :, 0], [[0, 0], [0, 1], [2, 3]])
