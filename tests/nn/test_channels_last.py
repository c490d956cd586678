"""jaxgen.nn.channels_last: lax's convolution with channels-last gradients.

Oracle: `jax.lax.conv_general_dilated` and JAX's own reverse-mode rule, in
float64, for values, gradients and gradients of gradients over strides,
paddings (strings, asymmetric, negative), input and kernel dilations, 1-D and
2-D. And the property it exists for: every convolution in the gradient program
is channels-last (checked on the jaxpr, not timed).
"""

import itertools
import pathlib
import re

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import channels_last

CASES = [  # spatial, size, kernel, stride, padding, lhs dilation, rhs dilation
    (2, 8, 3, 1, "SAME", 1, 1), (2, 8, 4, 2, "SAME", 1, 1), (2, 7, 3, 2, "VALID", 1, 1),
    (2, 5, 3, 3, ((2, 1),) * 2, 1, 2), (2, 8, 2, 1, ((-1, 2),) * 2, 2, 1),
    (2, 5, 1, 2, "SAME", 1, 1), (1, 8, 2, 1, ((2, 0),), 1, 4), (1, 5, 4, 3, ((0, 3),), 2, 2),
]


def _both(case):
  spatial, size, k, s, pad, lhs, rhs = case
  args = dict(window_strides=(s,) * spatial, padding=pad, lhs_dilation=(lhs,) * spatial,
              rhs_dilation=(rhs,) * spatial,
              dimension_numbers=channels_last._LAYOUTS[spatial])  # pylint: disable=protected-access
  return (lambda x, w: jax.lax.conv_general_dilated(x, w, **args),
          lambda x, w: channels_last.conv_general_dilated(x, w, **args))


def _inputs(case):
  spatial, size, k = case[:3]
  rng = np.random.default_rng(sum(map(hash, map(str, case))) % 2**32)
  return (rng.standard_normal((2,) + (size,) * spatial + (3,)),
          rng.standard_normal((k,) * spatial + (3, 4)))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_values_gradients_and_second_gradients_equal_lax(case):
  reference, mine = _both(case)
  with jax.enable_x64(True):
    x, w = map(jnp.asarray, _inputs(case))
    loss = lambda conv: (lambda x, w: jnp.sum(jnp.sin(conv(x, w))))  # noqa: E731
    penalty = lambda conv: (lambda x, w: jnp.sum(jax.grad(loss(conv))(x, w) ** 2)  # noqa: E731
                            + jnp.sum(jax.grad(loss(conv), 1)(x, w) ** 3))
    pairs = [(reference(x, w), mine(x, w)),
             (jax.grad(loss(reference), (0, 1))(x, w), jax.grad(loss(mine), (0, 1))(x, w)),
             (jax.grad(penalty(reference), (0, 1))(x, w), jax.grad(penalty(mine), (0, 1))(x, w))]
    for expected, actual in pairs:
      for e, a in zip(jax.tree.leaves(expected), jax.tree.leaves(actual)):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)


def _conv_layouts(jaxpr):
  """The dimension numbers of every convolution in a (closed) jaxpr, nested ones too."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      found.append(eqn.params["dimension_numbers"])
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      found += _conv_layouts(sub)
  return found


def test_every_convolution_of_the_gradient_program_is_channels_last():
  reference, mine = _both(CASES[1])
  x, w = map(lambda a: jnp.asarray(a, jnp.float32), _inputs(CASES[1]))
  canonical = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))

  def in_scan(conv):  # the gradient inside a loop, where XLA:CPU is slow on other layouts
    grad = jax.grad(lambda x, w: jnp.sum(jax.grad(lambda x: jnp.sum(conv(x, w) ** 2))(x) ** 2),
                    (0, 1))
    return lambda x, w: jax.lax.scan(lambda c, _: (c, grad(x, w)), 0.0, None, length=2)[1]

  mine_layouts = _conv_layouts(jax.make_jaxpr(in_scan(mine))(x, w).jaxpr)
  reference_layouts = _conv_layouts(jax.make_jaxpr(in_scan(reference))(x, w).jaxpr)
  assert len(mine_layouts) >= 4 and set(mine_layouts) == {canonical}
  assert set(reference_layouts) != {canonical}  # what the module fixes: JAX's rule is not


def test_out_of_scope_calls_go_to_lax_unchanged():
  x = jnp.ones((2, 3, 6, 6))   # channels-first
  w = jnp.ones((4, 3, 3, 3))
  expected = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME")
  np.testing.assert_array_equal(channels_last.conv_general_dilated(x, w, (1, 1), "SAME"),
                                expected)
  grouped = dict(dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=2)
  xg, wg = jnp.ones((1, 5, 5, 4)), jnp.ones((3, 3, 2, 6))
  np.testing.assert_array_equal(
      channels_last.conv_general_dilated(xg, wg, (1, 1), "SAME", **grouped),
      jax.lax.conv_general_dilated(xg, wg, (1, 1), "SAME", **grouped))


@pytest.mark.parametrize("strides,padding", list(itertools.product([1, 2], ["SAME", "VALID"])))
def test_conv_module_equals_flax_conv(strides, padding):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 3))
  ours = channels_last.Conv(5, (3, 3), strides=strides, padding=padding)
  theirs = nn.Conv(5, (3, 3), strides=strides, padding=padding)
  params = theirs.init(jax.random.PRNGKey(1), x)
  assert jax.tree.structure(ours.init(jax.random.PRNGKey(1), x)) == jax.tree.structure(params)
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-6,
                             atol=1e-6)
  grads = [jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x) ** 2))(params) for m in (ours, theirs)]
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_jaxgens_trainable_networks_use_it():
  """A raw `nn.Conv` or lax convolution in a network would be slow inside loops again.

  The FID Inception is forward-only (feature extraction) and stays flax's own.
  """
  root = pathlib.Path(channels_last.__file__).resolve().parents[1]
  offenders = []
  for path in sorted(root.glob("**/*.py")):
    if path.name in ("channels_last.py", "inception.py"):
      continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
      code = line.split("#")[0]
      if re.search(r"\bnn\.Conv\(|lax\.conv_general_dilated\(", code) and "channels_last" not in code:
        offenders.append(f"{path.relative_to(root)}:{number}")
  assert not offenders, offenders
