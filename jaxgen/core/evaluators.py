"""The evaluator protocol: three kinds of evaluation, one path that runs them.

`fit` (periodic and final evaluation), `jaxgen eval` and `jaxgen.evaluate` all
run evaluators through `jaxgen.engine.evaluation`; a family or the metrics layer
only declares them (a method's `evaluate` is its per-example evaluator; extra
ones go in `Method.evaluators`).

* `PerExample`: `fn(state, batch, keys) -> {name: [batch]}` — one value per
  example (an ELBO, a bound in bits/dim, an exact NLL). `keys[i]` is the key of
  example i, `fold_in(eval_key, global_index_i)`, so a number does not depend on
  the eval batch size or the device count. The runner averages exactly over the
  whole split (padding masked, sums in float64).
* `SampleBased`: `fn(chunks) -> {name: float}` — a function of `num_samples`
  samples from the model, handed over as an iterator of host arrays of at most
  `chunk_size` samples each, so memory is bounded by a chunk when `fn` streams
  (mode coverage, FID, precision/recall).
* `ModelLevel`: `fn(state, key) -> {name: scalar}` — a function of the model
  alone (a partition-function estimate by AIS, a parameter count).
* `Derived`: `fn(values) -> {name: float}` — numbers combined from what the
  other evaluators returned (a test log-likelihood = the per-example mean of
  -F(v) minus a model-level log Ẑ), run after all of them, once per seed.

Each carries a `protocol` dict that is saved beside its numbers in eval.json
(under the evaluator's name, except the per-example evaluator of the method,
whose protocol is the top level).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
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
  """A function of `num_samples` samples, fed in chunks of `chunk_size`.

  Chunk c is drawn with `method.sample(state, key_c, size_c)`; a draw that fits
  in one chunk uses the evaluator's key itself, chunk c of a longer draw
  `fold_in(key, c)`.
  """

  name: str
  fn: Callable[[Iterator[np.ndarray]], dict[str, float]]
  num_samples: int
  chunk_size: int = 2500
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.num_samples < 1 or self.chunk_size < 1:
      raise ValueError(f"{self.name}: num_samples and chunk_size must be >= 1, "
                       f"got {self.num_samples} and {self.chunk_size}")

  def chunk_sizes(self) -> list[int]:
    """The number of samples in each chunk."""
    full, rest = divmod(self.num_samples, self.chunk_size)
    return [self.chunk_size] * full + ([rest] if rest else [])


@dataclasses.dataclass(frozen=True)
class ModelLevel:
  """A function of the state and a key, returning scalars.

  `compiled=False`: the runner calls `fn` as it is, not under `jax.jit` — for
  an evaluator that drives its own loop of compiled pieces from the host (AIS
  over chunks of temperatures, with a progress bar).
  """

  name: str
  fn: Callable[[Any, jax.Array], dict[str, jax.Array]]
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
  compiled: bool = True


@dataclasses.dataclass(frozen=True)
class Derived:
  """Numbers derived from other evaluators' results, after every other evaluator ran.

  `fn` gets {name: float} (the values of one seed: the per-example means and
  the other evaluators' scalars) and returns {name: float}; `needs`: the names
  it reads (one that no evaluator returned is an error). Derived evaluators
  run in their order and may read earlier ones' results; their protocol is
  saved under their name, like the others'.
  """

  name: str
  fn: Callable[[dict[str, float]], dict[str, float]]
  needs: tuple[str, ...]
  protocol: dict[str, Any] = dataclasses.field(default_factory=dict)


Evaluator = PerExample | SampleBased | ModelLevel | Derived
