"""benchmarks/op_profile.py: the kinds it assigns to XLA's and PyTorch's operations."""

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from benchmarks import op_profile


def _train_step_hlo():
  """A tiny train step's optimized HLO: one convolution, one dense layer, a
  mean-square normalization, and an SGD update outside the model."""
  def loss(params, x):
    h = lax.conv_general_dilated(x, params["conv"], (1, 1), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = h * lax.rsqrt(jnp.mean(h * h, axis=(1, 2, 3), keepdims=True) + 1e-5)
    return jnp.sum(jnp.tanh(h.reshape(h.shape[0], -1) @ params["dense"]))

  def step(params, x):
    grads = jax.grad(loss)(params, x)
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)

  params = {"conv": jnp.ones((3, 3, 2, 4)), "dense": jnp.ones((8 * 8 * 4, 3))}
  return jax.jit(step).lower(params, jnp.ones((2, 8, 8, 2))).compile().as_text()


def test_hlo_kinds_names_every_instruction_of_a_train_step():
  text = _train_step_hlo()
  kinds = op_profile.hlo_kinds(text)
  lines = {line.split("=")[0].strip().removeprefix("ROOT").strip().lstrip("%"): line
           for line in text.splitlines() if " = " in line}
  assert set(kinds.values()) <= set(op_profile.KINDS)
  # Every instruction that is itself a convolution or a dot gets that kind.
  for name, line in lines.items():
    if name in kinds and " convolution(" in line:
      assert kinds[name] == "convolution", line
    if name in kinds and " dot(" in line:
      assert kinds[name] == "matmul", line
  found = set(kinds.values())
  # The forward and both gradients hold convolutions and dots; the mean square,
  # reductions; the update p - 0.1 g is outside the model (no jvp in its op_name).
  assert {"convolution", "matmul", op_profile.NORM, "optimizer (and EMA)"} <= found, found


@pytest.mark.parametrize("op, kind", [
    ("aten::convolution_backward", "convolution"), ("aten::mkldnn_convolution", "convolution"),
    ("aten::addmm", "matmul"), ("aten::bmm", "matmul"),
    ("aten::native_group_norm_backward", op_profile.NORM), ("aten::sum", op_profile.NORM),
    ("aten::_fused_adam_", "optimizer (and EMA)"), ("aten::_foreach_lerp_", "optimizer (and EMA)"),
    ("aten::cat", op_profile.LAYOUT), ("aten::copy_", op_profile.LAYOUT),
    ("aten::silu_backward", "elementwise (model)"), ("aten::mul", "elementwise (model)")])
def test_torch_kind(op, kind):
  assert op_profile.torch_kind(op) == kind


def test_unknown_rows_are_refused_in_one_line(capsys):
  with pytest.raises(SystemExit) as exit_info:
    op_profile.parse_args(["--rows", "ddpm-digits,nonsense"])
  assert exit_info.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert "nonsense" in error and "ddpm-mnist" in error
