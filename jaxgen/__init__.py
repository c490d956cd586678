"""jaxgen: deep generative models in JAX under one functional contract.

  import jaxgen
  result = jaxgen.train("vae", steps=2000, workdir="runs/vae")
  print(result.metrics["eval"])          # test ELBO and friends
  images = jaxgen.sample("runs/vae", num=16)

See README.md for the quickstart and docs/architecture.md for the contract.
"""

from jaxgen import _xla_flags

# Before anything below can start a JAX backend: XLA reads its flags once.
_xla_flags.apply_default_flags()

from jaxgen.api import (LoadedRun, RunResult, build_config, complete, evaluate, fit,
                        get_config, list_datasets, list_methods, load, project, sample,
                        train, train_encoder)
from jaxgen.core.state import Method, TrainState
from jaxgen.registry import register

__version__ = "0.1.0"

__all__ = [
    "LoadedRun", "Method", "RunResult", "TrainState", "build_config", "complete", "evaluate",
    "fit", "get_config", "list_datasets", "list_methods", "load", "project", "register",
    "sample", "train", "train_encoder",
]
