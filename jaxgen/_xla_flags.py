"""XLA:CPU flags jaxgen sets by default, before JAX's backend starts.

XLA reads `XLA_FLAGS` once, when the first backend is created; a flag set
after that has no effect. So `apply_default_flags()` must run before the first
JAX computation (creating an array, jitting, listing devices):

  from jaxgen import _xla_flags
  _xla_flags.apply_default_flags()   # at import of jaxgen, before any jax call

What it does, in order:
- `JAXGEN_XLA_FLAGS=none` in the environment: nothing (opt out).
- JAX's backends already initialised: nothing; the flags could no longer take
  effect, and changing `XLA_FLAGS` then would only make it lie about the
  running process. The reason is returned.
- Otherwise each default flag is appended to `XLA_FLAGS` unless the user's
  `XLA_FLAGS` already names that flag (the user's value wins).

The defaults and why:
- `xla_cpu_experimental_ynn_fusion_type=-individual_convolution`: XLA:CPU then
  leaves single convolutions to its default convolution path instead of
  YNNPACK. On the idle 2-core reference machine (benchmarks/ab_conv.py, 5
  interleaved rounds, one process) the train step ran 1.48x faster for the
  conv VAE on MNIST, 1.30x for the DDPM U-Net on digits and 1.14x on MNIST,
  every round faster, with the same CPU time per step (0.91-1.07x: the gain is
  in how the two cores are used) and the same losses to 5 digits; an earlier
  try on the loaded machine could not show it (docs/performance.md). A flag
  goes into DEFAULT_FLAGS only with such a measured, repeated gain on those
  rows and with the tests passing under it (the whole suite runs with it).
  Opt out with JAXGEN_XLA_FLAGS=none, or override by naming the flag in
  XLA_FLAGS.
"""

from __future__ import annotations

import os

OPT_OUT_VARIABLE = "JAXGEN_XLA_FLAGS"

# flag name (without "--") -> value; see the module docstring for the rule.
DEFAULT_FLAGS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution",
}


def backends_initialized() -> bool:
  """Whether JAX has created its backends (then XLA_FLAGS is no longer read)."""
  try:
    from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  except ImportError:  # no jax: nothing has started
    return False
  started = getattr(xla_bridge, "backends_are_initialized", None)
  if started is not None:
    return bool(started())
  # Older or newer JAX without the helper: its backend cache, if it has one.
  return bool(getattr(xla_bridge, "_backends", None))


def _named_flags(xla_flags: str) -> set[str]:
  """The flag names in an XLA_FLAGS string: '--a=1 --b' -> {'a', 'b'}."""
  names = set()
  for token in xla_flags.split():
    if token.startswith("--"):
      names.add(token[2:].split("=", 1)[0])
  return names


def apply_default_flags(environ: dict[str, str] | None = None) -> str:
  """Appends jaxgen's default XLA flags to XLA_FLAGS; returns what it did, in words.

  environ defaults to os.environ (a dict may be passed in tests).
  """
  environ = os.environ if environ is None else environ
  if environ.get(OPT_OUT_VARIABLE, "").strip().lower() == "none":
    return f"skipped: {OPT_OUT_VARIABLE}=none"
  if not DEFAULT_FLAGS:
    return "nothing to set"
  if backends_initialized():
    return ("skipped: JAX's backend has already started, so XLA would not read "
            "new flags; call apply_default_flags() before the first JAX computation")
  current = environ.get("XLA_FLAGS", "")
  present = _named_flags(current)
  added = [f"--{name}={value}" for name, value in DEFAULT_FLAGS.items()
           if name not in present]
  if not added:
    return "kept: XLA_FLAGS already sets every default flag"
  environ["XLA_FLAGS"] = " ".join([current.strip()] + added).strip()
  return "added: " + " ".join(added)
