"""jaxgen._xla_flags: default XLA flags, appended only when they can still act."""

import os
import subprocess
import sys

import pytest

from jaxgen import _xla_flags

FLAG = "xla_cpu_experimental_ynn_fusion_type"


@pytest.fixture
def defaults(monkeypatch):
  """One known default flag, and a backend that has not started."""
  monkeypatch.setattr(_xla_flags, "DEFAULT_FLAGS", {FLAG: "-individual_convolution"})
  monkeypatch.setattr(_xla_flags, "backends_initialized", lambda: False)


def test_appends_the_default_flags_to_the_users_flags(defaults):
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  message = _xla_flags.apply_default_flags(environ)
  assert environ["XLA_FLAGS"] == (
      f"--xla_force_host_platform_device_count=4 --{FLAG}=-individual_convolution")
  assert message.startswith("added")


def test_sets_xla_flags_when_the_user_set_none(defaults):
  environ = {}
  _xla_flags.apply_default_flags(environ)
  assert environ["XLA_FLAGS"] == f"--{FLAG}=-individual_convolution"


def test_the_users_value_of_a_flag_wins(defaults):
  environ = {"XLA_FLAGS": f"--{FLAG}=+individual_dot"}
  assert _xla_flags.apply_default_flags(environ).startswith("kept")
  assert environ["XLA_FLAGS"] == f"--{FLAG}=+individual_dot"


def test_opt_out_leaves_xla_flags_alone(defaults):
  environ = {"XLA_FLAGS": "--a=1", "JAXGEN_XLA_FLAGS": "none"}
  assert _xla_flags.apply_default_flags(environ).startswith("skipped")
  assert environ["XLA_FLAGS"] == "--a=1"


def test_does_nothing_once_the_backend_has_started(monkeypatch):
  monkeypatch.setattr(_xla_flags, "DEFAULT_FLAGS", {FLAG: "-individual_convolution"})
  import jax  # pylint: disable=import-outside-toplevel
  jax.devices()  # the test session's backend is up
  assert _xla_flags.backends_initialized()
  environ = {"XLA_FLAGS": "--a=1"}
  assert "already started" in _xla_flags.apply_default_flags(environ)
  assert environ["XLA_FLAGS"] == "--a=1"


_CHILD = """
import os
import jaxgen  # sets jaxgen's default XLA flags at import, before any backend
print(os.environ.get("XLA_FLAGS", "") or "-")
import jax, jax.numpy as jnp
conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
x, w = jnp.ones((8, 14, 14, 16)), jnp.ones((3, 3, 16, 32))
print("ynn_fusion" in conv.lower(x, w).compile().as_text())
print(float(conv(x, w)[0, 2, 2, 0]))
"""


@pytest.mark.parametrize("opt_out", [False, True])
def test_in_a_fresh_process_the_flag_reaches_xla(opt_out):
  """`import jaxgen` sets the default flag before the backend starts, and it
  changes what XLA compiles: XLA:CPU runs a lone convolution as a YNNPACK
  fusion by default; -individual_convolution takes it out. With the opt-out
  the fusion stays.
  """
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXGEN_XLA_FLAGS")}
  if opt_out:
    env["JAXGEN_XLA_FLAGS"] = "none"
  out = subprocess.run([sys.executable, "-c", _CHILD], env=env, check=True,
                       capture_output=True, text=True, timeout=300).stdout.splitlines()
  assert (f"--{FLAG}=-individual_convolution" in out[0]) != opt_out
  assert out[1] == str(opt_out)        # a YNNPACK convolution fusion only without the flag
  assert out[2] == "144.0"             # a 3x3x16 window of ones, either way
