"""One evaluation path: the evaluators of a method, run on a state.

`fit` (periodic and final evaluation), `jaxgen eval` and `jaxgen.evaluate` all
call `Evaluation.run`. The evaluators (see `jaxgen.core.evaluators`) are:

* the method's `evaluate`, a per-example evaluator whose protocol
  (`Method.eval_protocol`) is the top level of the saved protocol;
* mode coverage, the first sample-based evaluator, on data with known modes
  (`train.coverage_samples` samples);
* any in `Method.evaluators` (per-example, sample-based, model-level, or
  derived: combined from the others' results after they all ran).

Keys: the per-example keys of example i of a split are
`fold_in(fold_in(PRNGKey(seed), EVAL_SALT), i)` — computed on the devices from
the global index carried with the batch, so they are sharded with it and a
number does not depend on the eval batch size or the device count. Each
replica of a multi-seed run uses its own seed.
"""

from __future__ import annotations

import json
import pathlib
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from jaxgen import data as data_lib
from jaxgen.core import rng
from jaxgen.core.evaluators import Derived, Evaluator, ModelLevel, PerExample, SampleBased
from jaxgen.core.state import Method, TrainState
from jaxgen.engine import logs
from jaxgen.engine import parallel
from jaxgen.errors import ConfigError
from jaxgen.metrics import sample_metrics
from jaxgen.metrics.mode_coverage import evaluator as mode_coverage_evaluator

# Salts of the fixed evaluation keys, so that they never coincide with training
# keys and stay the same over a run.
EVAL_SALT = 0x0E7A1
SAMPLE_EVAL_SALT = 0xC0FE1  # every sample-based evaluator (mode coverage first)
MODEL_EVAL_SALT = 0x30DE1
METHOD_EVALUATOR = "evaluate"


def evaluators_for(method: Method, spec: Any, coverage_samples: int
                   ) -> tuple[Evaluator, ...]:
  """The evaluators of `method` on data `spec`, in the order they run."""
  found: list[Evaluator] = []
  if method.evaluate is not None:
    found.append(PerExample(METHOD_EVALUATOR, method.evaluate,
                            dict(method.eval_protocol or {})))
  if (getattr(spec, "modes", None) is not None and coverage_samples
      and method.sample is not None):
    found.append(mode_coverage_evaluator(spec.modes, spec.mode_std, coverage_samples))
  found.extend(getattr(method, "evaluators", ()) or ())
  names = [e.name for e in found]
  if len(set(names)) != len(names):
    raise ValueError(f"evaluator names must be distinct, got {names}")
  return tuple(found)


def metric_evaluators(method: Method, spec: Any, data_config: dict[str, Any],
                      names: Sequence[str], num_samples: int,
                      options: sample_metrics.MetricOptions, *, seed: int = 0,
                      sampler_settings: dict[str, Any] | None = None,
                      progress: bool = False) -> tuple[Evaluator, ...]:
  """Sample-based evaluators for the metrics `names` (see `sample_metrics.METRICS`).

  The feature metrics share one evaluator per feature network (one pass of
  sampling and features), named after the network; "modes" is mode coverage.
  Everything that can fail for bad input (no sampler, no known modes, missing
  Inception weights) fails here, before any sample is drawn. The real split's
  features are computed now (or read from their cache).
  """
  names = sample_metrics.parse_metrics(names)
  if method.sample is None:
    raise ConfigError(f"method {method.name!r} draws no samples; sample metrics "
                      f"({', '.join(names)}) need a generative model")
  if num_samples < 2:
    raise ConfigError(f"sample metrics need at least 2 samples, got num={num_samples}")
  found: list[Evaluator] = []
  features = [n for n in names if n in sample_metrics.FEATURE_METRICS]
  if features:
    network_name = sample_metrics.choose_network(spec, options)
    if network_name == "raw" and "is" in features:
      raise ConfigError(f"metric 'is' needs class predictions; {spec.name!r} has no "
                        "feature network (its metrics use the raw values)")
    network = sample_metrics.load_network(network_name, options, spec=spec)
    dataset = data_lib.from_config(data_config)
    reference = sample_metrics.reference_features(network, dataset, data_config, options,
                                                  progress=progress)
    found.append(sample_metrics.sample_evaluator(
        features, network, reference, num_samples=num_samples, options=options,
        value_range=spec.value_range, seed=seed,
        extra_protocol={"dataset": spec.name,
                        "sampler_settings": dict(sampler_settings or {})}))
  if "modes" in names:
    if getattr(spec, "modes", None) is None:
      raise ConfigError(f"metric 'modes' needs data with known modes (toy2d:*); "
                        f"{spec.name!r} has none")
    found.append(mode_coverage_evaluator(spec.modes, spec.mode_std, num_samples,
                                         chunk_size=options.chunk_size))
  return tuple(found)


def _salt(name: str) -> int:
  """A fixed salt per evaluator name (for the keys of extra evaluators)."""
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


class Evaluation:
  """Runs a method's evaluators on states of one run; compiled functions are cached.

  Args:
    method, spec: the method and its data spec.
    evaluators: from `evaluators_for`.
    strategy: where the per-example evaluation runs (`compile_eval`).
    seeds, multi: the run's seeds; `multi` when states carry a seed axis.
    batch_size: the evaluation batch size (global).
    seed: None to key every replica with its own seed (the run's evaluation);
      else this seed for every replica.
    num_examples: evaluate only the first this many examples of the split
      (None: all); each keeps the key of its index.
    progress: show a bar with an ETA over the examples and sample chunks.
  """

  def __init__(self, method: Method, spec: Any, evaluators: Sequence[Evaluator], *,
               strategy: parallel.Strategy, seeds: list[int], multi: bool,
               batch_size: int, seed: int | None = None,
               num_examples: int | None = None, progress: bool = False):
    self.method = method
    self.spec = spec
    self.evaluators = tuple(evaluators)
    self.strategy = strategy
    self.seeds = list(seeds)
    self.multi = multi
    self.batch_size = batch_size
    self.seed = seed
    self.num_examples = num_examples
    self.progress = progress
    self._per_example_fn = None
    self._sample_fns: dict[int, Any] = {}
    self._model_fns: dict[str, Any] = {}

  @property
  def per_example(self) -> list[PerExample]:
    return [e for e in self.evaluators if isinstance(e, PerExample)]

  def base_keys(self, salt: int) -> tuple[jax.Array, str]:
    """The key of each replica for `salt` ([2] or [K, 2]) and its rule in words."""
    if self.seed is None:
      keys = np.stack([np.asarray(jax.random.fold_in(jax.random.PRNGKey(s), salt))
                       for s in self.seeds])
      rule = f"fold_in(PRNGKey(seed), {salt:#x})"
      if self.multi:
        rule += " per replica seed"
    else:
      key = np.asarray(jax.random.fold_in(jax.random.PRNGKey(self.seed), salt))
      keys = np.stack([key] * len(self.seeds))
      rule = f"fold_in(PRNGKey({self.seed}), {salt:#x})"
      if self.multi:
        rule += " for every replica"
    return (keys if self.multi else keys[0]), rule

  # -------------------------------------------------------------- run them
  def run(self, state: TrainState, dataset: Any | None, step: int,
          split: str = "test", config_dict: dict[str, Any] | None = None
          ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Runs every evaluator on `state` (one copy, not pmap-replicated).

    Returns ({name: mean, or [seeds] means}, protocol). `dataset` may be None
    when there is no per-example evaluator.
    """
    means: dict[str, np.ndarray] = {}
    count = 0
    eval_keys, eval_rule = self.base_keys(EVAL_SALT)
    if self.per_example:
      means, count = self._run_per_example(state, dataset, eval_keys, split)
    data_cfg = (config_dict or {}).get("data", {})
    protocol: dict[str, Any] = {
        **next((dict(e.protocol) for e in self.per_example
                if e.name == METHOD_EVALUATOR), {}),
        "split": split,
        "num_examples": count,
        "dataset": self.spec.name,
        "data_transforms": {k: data_cfg.get(k) for k in (
            "scale", "binarize", "dequantize", "flatten", "pair") if k in data_cfg},
        "eval_key": (f"fold_in({eval_rule}, index of the example in the split), "
                     "one key per example"),
        "checkpoint_step": step,
    }
    for evaluator in self.evaluators:
      if isinstance(evaluator, PerExample) and evaluator.name != METHOD_EVALUATOR:
        protocol[evaluator.name] = {
            **evaluator.protocol,
            "eval_key": f"fold_in(fold_in({eval_rule}, {_salt(evaluator.name):#x}), "
                        "index of the example in the split)"}
      elif isinstance(evaluator, SampleBased):
        values, protocol[evaluator.name] = self._run_sample_based(evaluator, state)
        _merge(means, values, evaluator.name)
      elif isinstance(evaluator, ModelLevel):
        values, protocol[evaluator.name] = self._run_model_level(evaluator, state)
        _merge(means, values, evaluator.name)
    for evaluator in self.evaluators:   # after every other kind: they read its results
      if isinstance(evaluator, Derived):
        missing = sorted(set(evaluator.needs) - set(means))
        if missing:
          raise ValueError(f"derived evaluator {evaluator.name!r} needs {missing}, which "
                           "no evaluator returned")
        _merge(means, self._run_derived(evaluator, means), evaluator.name)
        protocol[evaluator.name] = dict(evaluator.protocol)
    return means, protocol

  def _run_derived(self, evaluator: Derived, means: dict[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """`fn` on each seed's {name: float} of the names it needs."""
    seeds = range(len(self.seeds)) if self.multi else [None]
    pick = lambda v, i: float(v if i is None else v[i])  # noqa: E731
    return self._stack([evaluator.fn({k: pick(means[k], i) for k in evaluator.needs})
                        for i in seeds])

  def _compiled_per_example(self):
    if self._per_example_fn is None:
      evaluators = self.per_example

      def per_batch(state, batch, base_key):
        index = batch["index"]
        inputs = {k: v for k, v in batch.items() if k != "index"}
        out: dict[str, jax.Array] = {}
        for evaluator in evaluators:
          key = (base_key if evaluator.name == METHOD_EVALUATOR
                 else jax.random.fold_in(base_key, _salt(evaluator.name)))
          _merge(out, evaluator.fn(state, inputs, rng.index_keys(key, index)),
                 evaluator.name)
        return out

      fn = jax.vmap(per_batch, in_axes=(0, None, 0)) if self.multi else per_batch
      self._per_example_fn = self.strategy.compile_eval(fn)
    return self._per_example_fn

  def _run_per_example(self, state: TrainState, dataset: Any, keys: jax.Array,
                       split: str) -> tuple[dict[str, np.ndarray], int]:
    """Exact means of per-example values over every example of `split`.

    Padding rows of the last batch are masked out; sums are taken in float64.
    """
    batch_size = self.batch_size
    self.strategy.check_batch_size(batch_size, "the evaluation batch size")
    eval_fn = self._compiled_per_example()
    totals: dict[str, np.ndarray] = {}
    count = 0.0
    # Each process reads only the rows of every batch that its devices hold.
    process, processes = self.strategy.data_shard()
    share = slice(process * batch_size // processes, (process + 1) * batch_size // processes)
    batches = data_lib.eval_batches(dataset, split=split, batch_size=batch_size,
                                    process_index=process, process_count=processes)
    limit = self.num_examples
    size = len(dataset.split(split))
    size = size if limit is None else min(size, limit)
    bar = logs.phase_bar(f"evaluating on the {split} split", size, "example",
                         self.progress)
    for start, batch in zip(range(0, 1 << 62, batch_size), batches):
      if limit is not None and start >= limit:
        break
      # The global index of every row (padding rows run past the split and
      # are masked out), sharded with the batch.
      index = np.arange(start, start + batch_size, dtype=np.int32)
      # The mask of the whole global batch, known on every process: the
      # evaluation's values come back whole (replicated).
      mask = (index < size).astype(np.float64)
      batch = {**batch, "index": index[share]}
      if limit is not None:
        batch["mask"] = batch["mask"] * (index[share] < limit).astype(batch["mask"].dtype)
      device_batch = self.strategy.put_eval_batch(batch)
      values = jax.device_get(eval_fn(state, device_batch, keys))
      for name, per_example in values.items():
        per_example = np.asarray(per_example, np.float64)
        # np.where, not a product: a padding row's value may be inf or NaN
        # (it is not an example), and inf * 0 would poison the sum.
        totals[name] = totals.get(name, 0.0) + np.where(mask > 0, per_example, 0.0).sum(-1)
      count += mask.sum()
      bar.update(min(batch_size, size - bar.n))
    bar.close()
    return {k: v / count for k, v in totals.items()}, int(count)

  def _replicas(self, state: TrainState) -> list[TrainState]:
    if not self.multi:
      return [state]
    return [jax.tree.map(lambda x, i=i: x[i], state) for i in range(len(self.seeds))]

  def _run_sample_based(self, evaluator: SampleBased, state: TrainState
                        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Draws `num_samples` per replica in chunks and feeds them to the evaluator."""
    keys, rule = self.base_keys(SAMPLE_EVAL_SALT)
    sizes = evaluator.chunk_sizes()
    for size in sizes:
      if size not in self._sample_fns:
        self._sample_fns[size] = self.strategy.compile_replicated(
            lambda s, k, n=size: self.method.sample(s, k, n))

    replicas = self._replicas(state)
    bar = logs.phase_bar(f"{evaluator.name}: sampling", evaluator.num_samples
                         * len(replicas), "sample", self.progress)

    def chunks(replica: TrainState, key: jax.Array) -> Iterator[np.ndarray]:
      for c, size in enumerate(sizes):
        chunk_key = key if len(sizes) == 1 else jax.random.fold_in(key, c)
        yield np.asarray(jax.device_get(self._sample_fns[size](replica, chunk_key)))
        bar.update(size)

    replica_keys = keys if self.multi else keys[None]
    try:
      results = [evaluator.fn(chunks(r, replica_keys[i]))
                 for i, r in enumerate(replicas)]
    finally:
      bar.close()
    protocol = {
        **evaluator.protocol,
        "samples": evaluator.num_samples,
        "chunk_size": evaluator.chunk_size,
        "sample_key": rule + ("" if len(sizes) == 1 else "; chunk c: fold_in(key, c)"),
    }
    return self._stack(results), protocol

  def _run_model_level(self, evaluator: ModelLevel, state: TrainState
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    keys, rule = self.base_keys(MODEL_EVAL_SALT)
    if evaluator.name not in self._model_fns:
      # compiled=False: a host-driven loop over compiled chunks (AIS).
      self._model_fns[evaluator.name] = (self.strategy.compile_replicated(evaluator.fn)
                                         if evaluator.compiled else evaluator.fn)
    fn = self._model_fns[evaluator.name]
    replica_keys = keys if self.multi else keys[None]
    results = [jax.device_get(fn(r, jax.random.fold_in(replica_keys[i],
                                                       _salt(evaluator.name))))
               for i, r in enumerate(self._replicas(state))]
    protocol = {**evaluator.protocol,
                "key": f"fold_in({rule}, {_salt(evaluator.name):#x})"}
    return self._stack(results), protocol

  def _stack(self, results: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """{name: value} per replica -> {name: value, or [K] values when multi}."""
    stacked = {k: np.array([np.asarray(r[k], np.float64) for r in results])
               for k in results[0]}
    return stacked if self.multi else {k: v[0] for k, v in stacked.items()}


def _merge(into: dict[str, Any], values: dict[str, Any], source: str) -> None:
  clash = set(into) & set(values)
  if clash:
    raise ValueError(f"evaluator {source!r} returns {sorted(clash)}, which another "
                     "evaluator already returned")
  into.update(values)


def log_eval(writer: logs.MetricWriter, means: dict[str, np.ndarray], seeds: list[int],
             multi: bool, step: int, split: str, protocol: dict[str, Any]
             ) -> dict[str, Any]:
  """Writes one evaluation record per seed; returns floats (lists when multi)."""
  result = {}
  for seed, values in logs.per_seed(means, seeds, multi):
    record = {"step": step, "split": split, **values, "protocol": protocol}
    if seed is not None:
      record["seed"] = seed
    writer.write(record)
    result[seed] = values
  if not multi:
    return result[None]
  return {k: [result[s][k] for s in seeds] for k in means}


def json_safe(value: Any) -> Any:
  """`value` with every NaN/Inf float replaced by None (JSON has no NaN)."""
  return logs.plain(value, nonfinite="null")


def write_eval_file(path: pathlib.Path, step: int, seeds: list[int],
                    metrics: dict[str, Any], protocol: dict[str, Any]) -> None:
  """Writes eval.json: the numbers and their protocol; NaN/Inf become null."""
  content = json_safe({"step": step, "seeds": seeds, "metrics": metrics,
                       "protocol": protocol})
  path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n",
                  encoding="utf-8")
