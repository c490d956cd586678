"""What families import: state, keys, collectives, optimizers, settings, evaluators,
mixed precision.

The core knows no family and no runner. A family imports only from here (and
from `jaxgen.nn`, `jaxgen.distributions`, `jaxgen.metrics`); the runner in
`jaxgen.engine` (loop, strategies, checkpoints, logs, workdir) is never
imported by a family — `tests/test_imports.py` enforces it.
"""

from jaxgen.core import collectives, evaluators, optim, precision, rng, settings
from jaxgen.core.state import Method, TrainState

__all__ = ["Method", "TrainState", "collectives", "evaluators", "optim", "precision", "rng",
           "settings"]
