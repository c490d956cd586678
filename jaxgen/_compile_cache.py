"""The CLI's persistent XLA compilation cache (on by default).

A `jaxgen train` (or `sample`, `eval`) spends its first seconds compiling; JAX
can keep the compiled programs on disk and load them in the next process that
compiles the same program (same model, shapes, flags, JAX version and
devices). The CLI turns this on by default:

  where:  $JAXGEN_COMPILE_CACHE if set to a path,
          else $XDG_CACHE_HOME/jaxgen/xla, else ~/.cache/jaxgen/xla
  off:    `--no-compile-cache`, or JAXGEN_COMPILE_CACHE=off (also 0, no,
          none, false)

A cache the user configured for JAX already (`JAX_COMPILATION_CACHE_DIR`, or
`jax.config.update("jax_compilation_cache_dir", ...)` before calling
`jaxgen.cli.main`) is left alone, as JAX's own setting: jaxgen neither
relocates nor turns it off. Every program is cached, however fast it
compiled (`jax_persistent_cache_min_compile_time_secs=0`): on a CPU a model's
programs take a fraction of a second to a few seconds each, and it is their sum
that a run waits for. The Python API (`jaxgen.fit`) does not turn the cache
on; call `enable(...)` from a script for the same behaviour.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

VARIABLE = "JAXGEN_COMPILE_CACHE"
_OFF = ("off", "0", "no", "none", "false")


def default_dir(environ: Mapping[str, str] | None = None) -> pathlib.Path:
  """$XDG_CACHE_HOME/jaxgen/xla, or ~/.cache/jaxgen/xla."""
  environ = os.environ if environ is None else environ
  base = environ.get("XDG_CACHE_HOME") or str(pathlib.Path("~/.cache").expanduser())
  return pathlib.Path(base) / "jaxgen" / "xla"


def choose(disabled: bool = False, environ: Mapping[str, str] | None = None,
           configured: str | None = None) -> pathlib.Path | None:
  """The cache folder to use, or None for no cache (pure: sets nothing).

  Args:
    disabled: the `--no-compile-cache` flag.
    environ: the environment (os.environ by default).
    configured: a cache folder JAX is already configured with (it wins).
  """
  environ = os.environ if environ is None else environ
  if disabled:
    return None
  value = environ.get(VARIABLE, "").strip()
  if value.lower() in _OFF:
    return None
  if configured:
    return pathlib.Path(configured)
  if value:
    return pathlib.Path(value).expanduser()
  return default_dir(environ)


def enable(disabled: bool = False) -> pathlib.Path | None:
  """Turns JAX's persistent compilation cache on (see the module doc); returns its folder.

  Call it before the first compilation of the process: JAX opens the cache
  when it first compiles.
  """
  import jax  # pylint: disable=import-outside-toplevel
  configured = jax.config.jax_compilation_cache_dir
  folder = choose(disabled, configured=configured)
  if folder is None or configured:   # off, or the user's own cache and thresholds
    return folder
  jax.config.update("jax_compilation_cache_dir", str(folder))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return folder
