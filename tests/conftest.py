"""Test-session setup: four fake CPU devices, so sharding and pmap paths run here.

The flag must be set before jax is imported anywhere in the session.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# XLA's backend optimizations (LLVM -O2 and its expensive passes) off: the
# test models are tiny, so compiling dominates their cost, and the programs
# compute the same operations (JAX's own test suite does this on CPU). Measured
# on 129 tests with a cold cache: 169 s with, 546 s without. Subprocesses
# (the CLI, several processes) inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")


def pytest_configure(config):
  """A persistent XLA compilation cache for the session.

  Each `fit` builds fresh closures, so jax's in-memory cache misses; identical
  programs (same model, same shapes) then hit this on-disk cache instead.
  """
  import jax  # pylint: disable=import-outside-toplevel
  # One cache per pytest-xdist worker (`-n 2`), so that two processes never
  # write and read the same entries at once.
  worker = os.environ.get("PYTEST_XDIST_WORKER", "")
  name = f"xla_cache_{worker}" if worker else "xla_cache"
  cache = config.cache.mkdir(name) if getattr(config, "cache", None) else None
  if cache is not None:
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_collection_modifyitems(config, items):
  """Modules with the most `slow` tests run first, each module's tests together.

  With two xdist workers the suite's wall time is about half its summed time
  only when no long test is left for the end, when the other worker would idle
  through it; collection order put the notebooks (16-115 s each) last. Whole
  modules move, in their own order, so module-scoped fixtures are set up once.
  """
  del config
  slow_per_module: dict = {}
  for item in items:
    count = slow_per_module.setdefault(item.module.__name__, 0)
    slow_per_module[item.module.__name__] = count + (item.get_closest_marker("slow") is not None)
  items.sort(key=lambda item: -slow_per_module[item.module.__name__])   # stable
