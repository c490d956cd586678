"""The training engine: state, keys, devices, checkpoints, logging, the loop.

It knows no family: methods come through `jaxgen.registry`.
"""

from jaxgen.core.state import Method, TrainState

__all__ = ["Method", "TrainState"]
