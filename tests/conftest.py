"""Test-session setup: four fake CPU devices, so sharding and pmap paths run here.

The flag must be set before jax is imported anywhere in the session.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
