"""The evaluator protocol: three kinds of evaluation, one path that runs them.

`fit` (periodic and final evaluation), `jaxgen eval` and `jaxgen.evaluate` all
run evaluators through `jaxgen.engine.evaluation`; a family or the metrics layer
only declares them.

* `PerExample`: `fn(state, batch, keys) -> {name: [batch]}` — one value per
  example (an ELBO, a bound in bits/dim, an exact NLL). `keys[i]` is the key of
  example i, `fold_in(eval_key, global_index_i)`, so a number does not depend on
  the eval batch size or the device count. The runner averages exactly over the
  whole split (padding masked).
* `SampleBased`: `fn(samples, spec) -> ({name: float}, protocol)` — a function
  of N samples drawn from the model in chunks (mode coverage, FID, precision/
  recall); `num_samples` is N.
* `ModelLevel`: `fn(state, key) -> {name: scalar}` — a function of the model
  alone (a partition-function estimate by AIS, a parameter count).

Each carries a `protocol` dict that is saved beside its numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class PerExample:
  """Per-example values averaged exactly over a split."""

  name: str
  fn: Callable[[Any, dict[str, jax.Array], jax.Array], dict[str, jax.Array]]
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SampleBased:
  """A function of `num_samples` samples from the model."""

  name: str
  fn: Callable[[np.ndarray, Any], tuple[dict[str, float], dict[str, Any]]]
  num_samples: int
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelLevel:
  """A function of the state and a key, returning scalars."""

  name: str
  fn: Callable[[Any, jax.Array], dict[str, jax.Array]]
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)


Evaluator = PerExample | SampleBased | ModelLevel
