"""The training loop: one engine for every method.

`fit(config, workdir=...)` builds the dataset and the method named by the config,
places the state on the devices, compiles the train step once, and runs it with
logging, periodic evaluation, sample grids, checkpoints, a NaN guard and clean
interruption by SIGTERM/SIGINT. With `train.seeds` it trains one replica per
seed in the same compiled program (`jax.vmap` over the state).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import pathlib
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen import viz
from jaxgen.core import precision
from jaxgen.core.state import Method, TrainState
from jaxgen.engine import checkpoint as checkpoint_lib
from jaxgen.engine import evaluation as evaluation_lib
from jaxgen.engine import logs
from jaxgen.engine import parallel
from jaxgen.engine import runs
from jaxgen.engine import workdir as workdir_lib
from jaxgen.errors import (ConfigError, NonFiniteError, TrainingInterrupted, UserError,
                           WorkdirError, choices)
from jaxgen.metrics import sample_metrics

# Salt of the fixed key of sample grids and reconstructions, so that it never
# coincides with training keys and stays the same over a run. (Evaluation
# keys: see engine.evaluation.)
SAMPLE_SALT = 0x5A3B1
# Metrics are fetched from the devices in groups of this many steps.
_SYNC_EVERY = 8
# With several processes, whether a stop signal arrived (at any of them) is
# agreed every this many steps, so that all stop and save at the same step.
_STOP_AGREE_EVERY = 8


@dataclasses.dataclass
class RunResult:
  """What `fit` returns.

  Attributes:
    state: the final TrainState (with a leading seed axis for multi-seed runs).
    metrics: {"train": last logged train means, "eval": final evaluation};
      values are floats, or lists with one entry per seed.
    history: every record written to metrics.jsonl.
    method, config, spec: the method, effective config and data spec.
    workdir: the run directory, or None for an in-memory run.
    status: "completed", or "interrupted" in the result a TrainingInterrupted
      carries (`fit` raises it when a signal stopped the run).
    stop_signal: the signal number that interrupted the run, else None.
  """

  state: TrainState
  metrics: dict[str, Any]
  history: list[dict[str, Any]]
  method: Method
  config: ml_collections.ConfigDict
  spec: Any
  workdir: pathlib.Path | None
  status: str
  stop_signal: int | None = None


def fixed_keys(seeds: list[int], salt: int, multi: bool) -> jax.Array:
  """A key per seed that does not change during the run (eval, sample grids)."""
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), salt) for s in seeds])
  return keys if multi else keys[0]


def split_batch(dataset: data_lib.Dataset) -> dict[str, np.ndarray]:
  """The whole training split as one batch {"x", "label"?, "source"?}
  (`init_data="split"`; "source" for paired data).

  Fixed order and fixed transforms (`data.eval_split`), so every process,
  device count and seed sees the same arrays.
  """
  return data_lib.eval_split(dataset, "train")


def _stack(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


SEED_STRATEGIES = ("vmap", "loop")


def over_seeds(fn: Callable[..., Any], strategy: str = "vmap") -> Callable[..., Any]:
  """`fn` applied to each replica along the leading seed axis of every argument.

  "vmap" batches the replicas; "loop" runs them one after the other inside the
  same compiled program (`lax.map`), which keeps each replica's operations the
  shape of a single-seed run's.
  """
  if strategy == "vmap":
    return jax.vmap(fn)
  return lambda *args: jax.lax.map(lambda xs: fn(*xs), args)


def _check_train_config(config: ml_collections.ConfigDict) -> None:
  tc = config.train
  if tc.on_nonfinite not in ("stop", "continue"):
    raise ConfigError(f"train.on_nonfinite must be 'stop' or 'continue', got "
                      f"{tc.on_nonfinite!r}")
  precision.check(tc.get("compute_dtype", precision.DEFAULT))
  if tc.get("keep_best_mode", "min") not in ("min", "max"):
    raise ConfigError(f"train.keep_best_mode must be 'min' or 'max', got "
                      f"{tc.keep_best_mode!r}")
  if tc.get("keep_best") and not (tc.eval_every or tc.final_eval):
    raise ConfigError("train.keep_best needs evaluations: set train.eval_every or "
                      "train.final_eval=True")
  if tc.seed_strategy not in SEED_STRATEGIES:
    raise ConfigError(f"unknown train.seed_strategy {tc.seed_strategy!r}; "
                      f"valid: {choices(SEED_STRATEGIES)}")
  for key in ("steps", "log_every", "keep_checkpoints"):
    if tc[key] < 1:
      raise ConfigError(f"train.{key} must be at least 1, got {tc[key]}")
  for key in ("eval_every", "sample_every", "checkpoint_every", "num_samples",
              "eval_batch_size", "num_devices", "coverage_samples",
              "eval_metric_samples"):
    if tc[key] < 0:
      raise ConfigError(f"train.{key} must be 0 or more, got {tc[key]}")


class _StopSignals:
  """Turns SIGTERM/SIGINT into a request to save and stop after this step.

  A second SIGINT while stopping raises KeyboardInterrupt as usual.
  """

  def __init__(self):
    self.received: int | None = None
    self._previous: dict[int, Any] = {}

  def __enter__(self) -> _StopSignals:
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.received is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signum

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _due(step: int, every: int) -> bool:
  return every > 0 and step % every == 0


def _metric_names(tc: ml_collections.ConfigDict, spec: Any) -> tuple[str, ...]:
  """train.eval_metrics, parsed; 'modes' is left out where mode coverage already
  runs (data with known modes and train.coverage_samples > 0)."""
  if not tc.eval_metrics:
    return ()
  try:
    names = sample_metrics.parse_metrics(tc.eval_metrics)
  except ConfigError as error:
    raise ConfigError(f"train.eval_metrics: {error}") from None
  if getattr(spec, "modes", None) is not None and tc.coverage_samples:
    names = tuple(n for n in names if n != "modes")
  return names


def _window_mean(window: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  return {k: np.mean(np.stack([w[k] for w in window]), axis=0) for k in window[0]}


class Trainer:
  """Runs one configured training job; `fit` is the function to call."""

  def __init__(self, config: ml_collections.ConfigDict,
               workdir: str | pathlib.Path | None, resume: bool, overwrite: bool):
    parallel.maybe_initialize_distributed()
    self.entry = registry.get(config.method)
    _check_train_config(config)
    # Values derived from others (a schedule's decay length from train.steps)
    # are written into the config before it is saved, from the saved run on
    # resume, so that `--steps` never changes what the saved config means.
    config = copy.deepcopy(config)
    config_lib.resolve_derived(
        config, _saved_config(workdir) if resume and workdir is not None else None)
    self.config = config
    self.tc = config.train
    self.seeds = config_lib.seeds_of(config)
    self.multi = bool(config.train.seeds)
    self.config_dict = config_lib.to_dict(config)
    self.is_main = jax.process_index() == 0
    self.strategy = parallel.Strategy(self.tc.strategy, self.tc.num_devices,
                                      seed_axis=self.multi)
    self.strategy.check_batch_size(config.data.batch_size)
    if self.tc.eval_batch_size:
      self.strategy.check_batch_size(self.tc.eval_batch_size, "train.eval_batch_size")
    self.data_source = None
    self.dataset = self._load_data(config, workdir, resume)
    self.spec = self.dataset.spec
    self.method = runs.build_method(config, self.spec)
    # Sample metrics at each evaluation (train.eval_metrics): checked, and the
    # reference features computed or read from their cache, before the workdir
    # is written.
    names = _metric_names(self.tc, self.spec)
    self.metric_evaluators = (evaluation_lib.metric_evaluators(
        self.method, self.spec, self.config_dict["data"], names,
        self.tc.eval_metric_samples, sample_metrics.MetricOptions(),
        seed=self.seeds[0], sampler_settings=self.config_dict.get("model", {}),
        progress=bool(self.tc.progress) and self.is_main) if names else ())
    self.workdir = (self._prepare_workdir(workdir, resume, overwrite)
                    if workdir is not None else None)
    self.resume = resume
    self.writer = logs.MetricWriter(self.workdir, self.tc.tensorboard, self.is_main)
    self.checkpointer = (checkpoint_lib.Checkpointer(
        self.workdir / workdir_lib.CHECKPOINT_DIR, self.tc.keep_checkpoints)
                         if self.workdir is not None else None)
    self.last_checkpoint: int | None = None
    self.best = (_BestCheckpoint(self.workdir, self.tc, self.is_main)
                 if self.workdir is not None and self.tc.get("keep_best") else None)
    self.evaluation = evaluation_lib.Evaluation(
        self.method, self.spec,
        evaluation_lib.evaluators_for(self.method, self.spec, self.tc.coverage_samples)
        + self.metric_evaluators,
        strategy=self.strategy, seeds=self.seeds, multi=self.multi,
        batch_size=self.tc.eval_batch_size or config.data.batch_size,
        progress=bool(self.tc.progress) and self.is_main)
    self.last_protocol: dict[str, Any] | None = None
    self.diverged: set[int | None] = set()
    self._sample_fns: dict[int, Callable[..., jax.Array]] = {}
    self._reconstruct_fn = None
    self._progress: logs.Progress | None = None

  def _prepare_workdir(self, workdir: str | pathlib.Path, resume: bool,
                       overwrite: bool) -> pathlib.Path:
    """Checks, locks and prepares the workdir: on process 0 only, the others
    learn whether it succeeded (a run needs one shared workdir)."""
    if jax.process_count() == 1:
      return workdir_lib.prepare(workdir, self.config_dict, resume=resume,
                                 overwrite=overwrite)
    error = None
    if self.is_main:
      try:
        workdir_lib.prepare(workdir, self.config_dict, resume=resume, overwrite=overwrite)
      except UserError as caught:
        error = caught
    if not parallel.broadcast_from_main(error is None):
      raise error or WorkdirError(f"process 0 refused workdir {str(workdir)!r} "
                                  "(its error says why)")
    return pathlib.Path(workdir)

  # ------------------------------------------------------------------ data
  def _iterators(self) -> list[Any]:
    index, count = self.strategy.data_shard()
    return [data_lib.train_iterator(
        self.dataset, batch_size=self.config.data.batch_size, seed=s,
        process_index=index, process_count=count)
            for s in self.seeds]

  def _next(self, iterators: list[Any]) -> dict[str, np.ndarray]:
    batches = [next(it) for it in iterators]
    return _stack(batches) if self.multi else batches[0]

  def _load_data(self, config: ml_collections.ConfigDict,
                 workdir: str | pathlib.Path | None, resume: bool):
    """The data section to load: on resume, a relative file path that is not
    found from here is looked up where the run was started (`data.relocate`),
    and the run's original data record is kept. The saved config is unchanged."""
    name = config.data.name
    if not (resume and workdir is not None):
      return data_lib.from_config(config.data)
    prefix, _, argument = name.partition(":")
    run_file = pathlib.Path(workdir) / workdir_lib.RUN_FILE
    if (prefix not in data_lib._registry.FILE_PREFIXES or not argument or not run_file.exists()
        or pathlib.Path(argument).expanduser().exists()):
      return data_lib.from_config(config.data)
    try:
      record = json.loads(run_file.read_text(encoding="utf-8")).get("data_source")
    except (OSError, ValueError):
      return data_lib.from_config(config.data)
    located = data_lib.relocate(name, record, workdir)
    if located == name:
      return data_lib.from_config(config.data)
    self.data_source = record
    section = copy.deepcopy(config.data)
    with section.unlocked():
      section.name = located
    dataset = data_lib.from_config(section)
    # The same data under the run's own name: the saved data position and
    # the logs name the dataset as the run was started.
    return dataclasses.replace(dataset, spec=dataclasses.replace(dataset.spec, name=name))

  # ----------------------------------------------------------------- state
  def _init_fn(self) -> Callable[[jax.Array, Any], TrainState]:
    return runs.init_function(self.method, self.multi)

  def _restore_or_init(self, iterators: list[Any]) -> TrainState:
    keys = runs.init_keys(self.seeds, self.multi)
    whole_split = self.method.init_data == "split"
    latest = self.checkpointer.latest_step() if (
        self.checkpointer and self.resume) else None
    if whole_split and latest is None:
      return self.strategy.init(self._init_fn(), keys, split_batch(self.dataset),
                                replicated_batch=True)
    # The first batch of each seed's stream, drawn from a separate iterator so
    # the training stream is untouched: data-dependent initialisation sees the
    # same data as the single-seed run with that seed. (A whole-split init
    # restores from shapes alone: a state's shapes never depend on its rows.)
    example = self._next(self._iterators())
    if whole_split:
      example = jax.tree.map(lambda v: v[0], example) if self.multi else example
    if latest is None:
      return self.strategy.init(self._init_fn(), keys, example)
    # Shapes from the global batch (a process holds only its rows of `example`).
    abstract = jax.eval_shape(self._init_fn(), keys, self.strategy.put_batch(example)
                              if self.strategy.on_mesh else example)
    latest, state, data_states, _ = self.checkpointer.restore_newest(
        checkpoint_lib.abstract_like(abstract, self.strategy.restore_sharding(abstract)),
        quarantine=self.is_main)
    # Records of the steps after the checkpoint are redone: drop them (and a
    # line torn by a kill) so the log holds each step once.
    if self.is_main:
      workdir_lib.truncate_log(self.workdir, latest)
    if len(data_states) != len(iterators):
      raise ConfigError(f"checkpoint {latest} holds {len(data_states)} data "
                        f"streams, the config trains {len(iterators)} seeds")
    for iterator, position in zip(iterators, data_states):
      iterator.set_state(position)
    if self.strategy.name == "pmap":
      state = self.strategy.put_state(state)
    self.last_checkpoint = latest
    return state

  def _save(self, state: TrainState, iterators: list[Any], step: int) -> None:
    """Saves checkpoint `step`, once its state has been checked finite.

    A non-finite state is never saved (so it can never rotate a good
    checkpoint out): with train.on_nonfinite="stop" the run stops here naming
    the last good checkpoint; with "continue" the diverged replicas are logged
    and the others' progress is saved.
    """
    if self.checkpointer is None or self.last_checkpoint == step:
      return
    state = self.strategy.unreplicate(state)
    finite = np.asarray(jax.device_get(_finite_replicas(
        (state.params, state.opt_state, state.model_state), self.multi))).reshape(-1)
    if not finite.all():
      seeds = ([s for s, ok in zip(self.seeds, finite) if not ok] if self.multi
               else [None])
      if self.tc.on_nonfinite == "stop":
        raise self._nonfinite(step, {}, ["state"], seeds=seeds)
      self._note_divergence(step, ["state"], seeds)
    self.checkpointer.save(step, state, [it.get_state() for it in iterators],
                           self.config_dict)
    self.last_checkpoint = step

  def _keep_best(self, state: TrainState, iterators: list[Any], step: int,
                 evaluation: dict[str, Any] | None) -> None:
    """Saves `state` into best/ when `evaluation` improves on the best so far."""
    if self.best is None or evaluation is None or not self.best.improves(evaluation):
      return
    state = self.strategy.unreplicate(state)
    finite = np.asarray(jax.device_get(_finite_replicas(
        (state.params, state.opt_state, state.model_state), self.multi)))
    if finite.all():
      self.best.save(step, state, [it.get_state() for it in iterators],
                     self.config_dict, evaluation)

  # ------------------------------------------------------------ evaluation
  def evaluate(self, state: TrainState, step: int,
               split: str = "test") -> dict[str, Any] | None:
    """Runs the evaluators, logs one record per seed, returns the means."""
    means, protocol = self.evaluation.run(
        self.strategy.unreplicate(state), self.dataset, step, split, self.config_dict)
    if not means:
      return None
    self.last_protocol = protocol
    return evaluation_lib.log_eval(self.writer, means, self.seeds, self.multi, step,
                                   split, protocol)

  # ---------------------------------------------------------------- images
  def sample(self, state: TrainState, num: int, key: jax.Array | None = None) -> np.ndarray:
    """Samples [num, ...] (or [seeds, num, ...]) from the current state."""
    state = self.strategy.unreplicate(state)
    if num not in self._sample_fns:
      fn = lambda s, k: self.method.sample(s, k, num)  # noqa: E731
      self._sample_fns[num] = self.strategy.compile_replicated(
          jax.vmap(fn) if self.multi else fn)
    if key is None:
      key = fixed_keys(self.seeds, SAMPLE_SALT, self.multi)
    return np.asarray(jax.device_get(self._sample_fns[num](state, key)))

  def write_images(self, state: TrainState, step: int, final: bool) -> None:
    """Writes the sample grid (and reconstructions) for `step`."""
    if self.workdir is None or not self.tc.num_samples or self.method.sample is None:
      return
    name = "samples.png" if final else f"samples/step_{step:07d}.png"
    # Every process samples (one program over all devices); process 0 writes.
    samples = self.sample(state, self.tc.num_samples)
    if self.method.reconstruct is not None and viz.samples.shows_images(self.spec):
      self._write_reconstructions(state, step, final)
    if not self.is_main:
      return
    if self.multi:
      samples = samples[0]  # the first seed's replica; all are in the checkpoint
    reference = None
    if not viz.samples.shows_images(self.spec) and self.spec.dim == 2:
      reference = next(iter(data_lib.eval_batches(
          self.dataset, split="test", batch_size=min(2000, self.spec.num_test))))["x"]
    viz.write_samples(self.workdir / name, samples, self.spec, reference,
                      title=f"{self.config.method} step {step}")

  def _write_reconstructions(self, state: TrainState, step: int, final: bool) -> None:
    state = self.strategy.unreplicate(state)
    if self._reconstruct_fn is None:
      fn = self.method.reconstruct
      self._reconstruct_fn = self.strategy.compile_replicated(
          jax.vmap(fn, in_axes=(0, None, 0)) if self.multi else fn)
    batch = next(iter(data_lib.eval_batches(self.dataset, split="test",
                                            batch_size=32)))
    batch = {k: v for k, v in batch.items() if k != "mask"}
    recon = np.asarray(self._reconstruct_fn(
        state, batch, fixed_keys(self.seeds, SAMPLE_SALT, self.multi)))
    if not self.is_main:
      return
    if self.multi:
      recon = recon[0]
    name = ("reconstructions.png" if final
            else f"reconstructions/step_{step:07d}.png")
    viz.write_reconstructions(self.workdir / name, batch["x"], recon, self.spec)

  # ------------------------------------------------------------------ loop
  def _record_session(self, start: int) -> None:
    if self.workdir is not None and self.is_main:
      changes = workdir_lib.version_changes(self.workdir, _versions()) if start else []
      if changes:
        warnings.warn(f"resuming with other library versions than the last session "
                      f"({'; '.join(changes)}): the run continues, but need not match "
                      "an uninterrupted one bit for bit", stacklevel=2)
      workdir_lib.record_session(self.workdir, {
          "method": self.config.method,
          "resumed_from": start if start else None,
          "devices": [str(d) for d in self.strategy.devices],
          "strategy": self.strategy.name,
          "process_count": jax.process_count(),
          "versions": _versions(),
          "data_spec": self.spec.to_json(),
          "data_source": (self.data_source or
                          data_lib.source_record(self.config.data.name, self.workdir)),
      })

  def _log_train(self, step: int, means: dict[str, np.ndarray], rate: float,
                 elapsed: float) -> None:
    """Writes one train record per seed: window means and throughput."""
    for seed, values in logs.per_seed(means, self.seeds, self.multi):
      record = {"step": step, "split": "train", **values, "steps_per_sec": rate,
                "examples_per_sec": rate * self.config.data.batch_size,
                "time": elapsed}
      if seed is not None:
        record["seed"] = seed
      self.writer.write(record)

  def _checks(self, window: list[dict[str, np.ndarray]],
              pending: list[tuple[int, Any]]) -> Callable[[int], None]:
    """`drain(leave)`: checks and collects the metrics of pending steps.

    All but the last `leave` are fetched in one transfer; each step is still
    checked, so a NaN is reported at the step where it appeared.
    """

    def drain(leave: int = 0) -> None:
      ready = pending[:len(pending) - leave]
      fetched = jax.device_get([metrics for _, metrics in ready])
      for (done, _), values in zip(ready, fetched):
        pending.pop(0)
        host = {k: np.asarray(v) for k, v in values.items()}
        bad = [k for k, v in host.items() if not np.all(np.isfinite(v))]
        if bad and self.tc.on_nonfinite == "stop":
          raise self._nonfinite(done, host, bad)
        if bad:
          self._note_divergence(done, bad, self._bad_seeds(host, bad))
        window.append(host)

    return drain

  def run(self) -> RunResult:
    """Trains to train.steps (or a stop signal), then evaluates and writes images."""
    iterators = self._iterators()
    state = self._restore_or_init(iterators)
    start = int(np.asarray(jax.device_get(self.strategy.unreplicate(state).step)).reshape(-1)[0])
    self._record_session(start)
    state, step, last_train, last_eval, stop_signal = self._train(state, iterators, start)
    status = "completed" if stop_signal is None else "interrupted"
    if status == "completed":
      if self.tc.final_eval:
        last_eval = self.evaluate(state, step)
        self._keep_best(state, iterators, step, last_eval)
      self.write_images(state, step, final=True)
      if self.workdir is not None and last_eval is not None and self.is_main:
        evaluation_lib.write_eval_file(self.workdir / workdir_lib.EVAL_FILE, step,
                                       self.seeds, last_eval, self.last_protocol)
    self.writer.close()
    if self.checkpointer is not None:
      self.checkpointer.close()
    if self.best is not None:
      self.best.close()
    return RunResult(
        state=self.strategy.unreplicate(state),
        metrics={"train": last_train, "eval": last_eval},
        history=self.writer.records, method=self.method, config=self.config,
        spec=self.spec, workdir=self.workdir, status=status,
        stop_signal=stop_signal)

  def _train(self, state: TrainState, iterators: list[Any], start: int):
    """The loop; returns (state, last step, train means, last eval, stop signal)."""
    total = self.tc.steps
    step_fn = self.strategy.compile_step(
        over_seeds(self.method.train_step, self.tc.seed_strategy) if self.multi
        else self.method.train_step)
    progress = logs.Progress(
        total, start, f"{self.config.method} on {self.spec.name}",
        enabled=self.tc.progress and self.is_main)
    self._progress = progress
    window: list[dict[str, np.ndarray]] = []
    pending: list[tuple[int, Any]] = []
    drain = self._checks(window, pending)
    last_train: dict[str, Any] = {}
    last_eval: dict[str, Any] | None = None
    stop_signal = None
    started = time.perf_counter()
    log_time, log_step = started, start
    with _StopSignals() as stop, contextlib.ExitStack() as cleanup:
      cleanup.callback(progress.close)
      step = start
      for step in range(start + 1, total + 1):
        batch = self.strategy.put_batch(self._next(iterators))
        state, metrics = step_fn(state, batch)
        if step == start + 1:
          progress.start(step)   # compiled: the step bar's clock starts here
        pending.append((step, metrics))
        if len(pending) > _SYNC_EVERY:
          # Read metrics a few steps late, so the host never waits for the
          # step it has just dispatched and the devices stay busy.
          drain(leave=1)
          progress.update(step, _last_loss(window))
        interrupted = self._stop_requested(stop, step)
        is_last = step == total
        if not (interrupted or is_last or _due(step, self.tc.log_every)
                or _due(step, self.tc.eval_every) or _due(step, self.tc.sample_every)
                or _due(step, self.tc.checkpoint_every)):
          continue
        drain()
        progress.update(step, _last_loss(window))
        if window and (_due(step, self.tc.log_every) or is_last or interrupted):
          now = time.perf_counter()
          rate = (step - log_step) / max(now - log_time, 1e-9)
          log_time, log_step = now, step
          means = _window_mean(window)
          window.clear()
          self._log_train(step, means, rate, now - started)
          last_train = _collect(means, self.multi)
        if interrupted:
          self._save(state, iterators, step)
          stop_signal = int(interrupted)
          progress.write(
              f"stopped by {signal.Signals(stop_signal).name} at step {step}"
              + (f"; checkpoint saved in {self.workdir}; continue with --resume"
                 if self.workdir is not None else ""))
          break
        if _due(step, self.tc.checkpoint_every) or is_last:
          self._save(state, iterators, step)
        if _due(step, self.tc.eval_every) and not is_last:
          last_eval = self.evaluate(state, step)
          self._keep_best(state, iterators, step, last_eval)
        if _due(step, self.tc.sample_every) and not is_last:
          self.write_images(state, step, final=False)
      if stop_signal is None and step == total:
        # A signal that came after the last step's check (while its checkpoint
        # was being written) still stops the run: no final evaluation, and the
        # caller learns that it was interrupted, not that the run completed.
        late = (stop.received or 0) if jax.process_count() == 1 else \
            parallel.max_over_processes(stop.received or 0)
        if late:
          stop_signal = int(late)
          progress.write(f"stopped by {signal.Signals(stop_signal).name} after the last "
                         f"step ({step}), before the final evaluation"
                         + (f"; checkpoint saved in {self.workdir}"
                            if self.workdir is not None else ""))
    return state, step, last_train, last_eval, stop_signal

  def _stop_requested(self, stop: _StopSignals, step: int) -> int:
    """The signal that stops the run after `step`, or 0.

    One process: as soon as one arrived. Several: every _STOP_AGREE_EVERY
    steps the processes agree (a collective) on whether any of them received
    one, so that all stop, save and exit at the same step.
    """
    if jax.process_count() == 1:
      return stop.received or 0
    if step % _STOP_AGREE_EVERY:
      return 0
    return parallel.max_over_processes(stop.received or 0)

  def _bad_seeds(self, host: dict[str, np.ndarray], bad: list[str]) -> list[int | None]:
    """The seeds whose replicas have a non-finite value among `bad` metrics."""
    if not self.multi:
      return [None]
    return sorted({self.seeds[i] for k in bad
                   for i in np.flatnonzero(~np.isfinite(host[k]))})

  def _note_divergence(self, step: int, bad: list[str],
                       seeds: list[int | None]) -> None:
    """Logs replicas that turned non-finite for the first time (on_nonfinite=continue)."""
    for seed in sorted(set(seeds) - self.diverged, key=lambda s: -1 if s is None else s):
      self.diverged.add(seed)
      record = {"step": step, "split": "train", "event": "nonfinite", "metrics": bad}
      if seed is not None:
        record["seed"] = seed
      self.writer.write(record)
      if self._progress is not None:
        self._progress.write(f"non-finite {', '.join(bad)} at step {step}"
                             + (f" for seed {seed}" if seed is not None else "")
                             + "; continuing (train.on_nonfinite='continue')")

  def _nonfinite(self, step: int, host: dict[str, np.ndarray], bad: list[str],
                 seeds: list[int | None] | None = None) -> NonFiniteError:
    """The error that stops a run; `bad` == ["state"] for a non-finite state."""
    seeds = self._bad_seeds(host, bad) if seeds is None else seeds
    where = f" (seeds {seeds})" if self.multi else ""
    if bad == ["state"]:
      what = (f"non-finite parameters or optimizer state after step {step}{where}, "
              "not saved")
    else:
      values = ", ".join(f"{k}={np.asarray(host[k]).tolist()}" for k in bad)
      what = f"non-finite {', '.join(bad)} at step {step}{where} ({values})"
    saved = (f"the last good checkpoint is step {self.last_checkpoint} in "
             f"{self.workdir / workdir_lib.CHECKPOINT_DIR}"
             if self.last_checkpoint is not None else "no checkpoint was saved")
    self.writer.write({"step": step, "split": "train", "event": "nonfinite",
                       "metrics": bad})
    self.writer.close()
    return NonFiniteError(f"{what}; training stopped; {saved}")


@functools.partial(jax.jit, static_argnums=1)
def _finite_replicas(tree: Any, multi: bool) -> jax.Array:
  """Whether every float in `tree` is finite: a bool, or one per replica when `multi`."""
  flags = []
  for leaf in jax.tree.leaves(tree):
    if not jnp.issubdtype(leaf.dtype, jnp.inexact):
      continue
    finite = jnp.isfinite(leaf)
    flags.append(finite.reshape(finite.shape[0], -1).all(axis=1) if multi
                 else finite.all())
  if not flags:
    return jnp.ones((), bool)
  return jnp.stack(flags).all(axis=0)


class _BestCheckpoint:
  """The checkpoint with the best `train.keep_best` metric so far, in best/.

  best/best.json names its step, the metric, its value (the mean over seeds)
  and the values per seed; a resumed run reads it back, so the best is the
  best over the whole run. `jaxgen.load(workdir, step="best")` restores it.
  """

  def __init__(self, workdir: pathlib.Path, tc: ml_collections.ConfigDict,
               is_main: bool):
    self.metric, self.mode, self.is_main = tc.keep_best, tc.keep_best_mode, is_main
    self.folder = workdir / workdir_lib.BEST_DIR
    self.checkpointer: checkpoint_lib.Checkpointer | None = None   # at the first save
    record = workdir_lib.read_best(workdir)
    self.value = (record["value"] if record and record.get("metric") == self.metric
                  and record.get("mode") == self.mode else None)

  def improves(self, evaluation: dict[str, Any]) -> bool:
    if self.metric not in evaluation:
      raise ConfigError(f"train.keep_best={self.metric!r} is not a metric of this "
                        f"run's evaluation; valid: {choices(sorted(evaluation))}")
    value = float(np.mean(np.asarray(evaluation[self.metric], np.float64)))
    if not np.isfinite(value):
      return False
    return self.value is None or (value < self.value if self.mode == "min"
                                  else value > self.value)

  def save(self, step: int, state: TrainState, data_states: list[dict[str, Any]],
           config: dict[str, Any], evaluation: dict[str, Any]) -> None:
    values = np.asarray(evaluation[self.metric], np.float64)
    if self.checkpointer is None:
      self.checkpointer = checkpoint_lib.Checkpointer(self.folder, keep=1)
    if step not in self.checkpointer.all_steps():   # a resumed run redoing a step
      self.checkpointer.save(step, state, data_states, config)
    self.value = float(np.mean(values))
    if self.is_main:
      record = {"step": step, "metric": self.metric, "mode": self.mode,
                "value": self.value, "values": values.reshape(-1).tolist()}
      target = self.folder / workdir_lib.BEST_FILE
      temporary = target.with_suffix(".json.tmp")
      temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
      temporary.replace(target)

  def close(self) -> None:
    if self.checkpointer is not None:
      self.checkpointer.close()


def _saved_config(workdir: str | pathlib.Path) -> dict[str, Any] | None:
  """The config saved in `workdir`, if it holds a readable one."""
  path = pathlib.Path(workdir) / workdir_lib.CONFIG_FILE
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return None


def _last_loss(window: list[dict[str, np.ndarray]]) -> float | None:
  if not window or "loss" not in window[-1]:
    return None
  return float(np.mean(window[-1]["loss"]))


def _collect(means: dict[str, np.ndarray], multi: bool) -> dict[str, Any]:
  if multi:
    return {k: [float(x) for x in np.asarray(v)] for k, v in means.items()}
  return {k: float(v) for k, v in means.items()}


def _versions() -> dict[str, str]:
  import importlib.metadata as md  # pylint: disable=import-outside-toplevel
  out = {}
  for name in ("jaxgen", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint",
               "grain", "numpy"):
    try:
      out[name] = md.version(name)
    except md.PackageNotFoundError:
      out[name] = "not installed"
  return out


def fit(config: ml_collections.ConfigDict, *, workdir: str | pathlib.Path | None = None,
        resume: bool = False, overwrite: bool = False) -> RunResult:
  """Trains the method named by `config.method`; see `jaxgen.train` for the short form.

  Args:
    config: a full config (`jaxgen.get_config(method)` plus your changes).
    workdir: where checkpoints, metrics and images go; None trains in memory
      and writes nothing.
    resume: continue the run in `workdir` from its latest checkpoint (starts
      fresh when there is none).
    overwrite: replace a run already in `workdir`.

  Returns a RunResult of the completed run.
  Raises TrainingInterrupted (a KeyboardInterrupt) when SIGTERM/SIGINT stopped
  the run, after the checkpoint of the step it stopped at is saved: it names
  the step and holds the RunResult (`error.result`), so a script never goes on
  as if training had finished. Raises NonFiniteError when a metric becomes
  NaN/Inf (train.on_nonfinite="stop").
  """
  try:
    trainer = Trainer(config, workdir, resume, overwrite)
    result = trainer.run()
  finally:
    if workdir is not None:
      workdir_lib.unlock(workdir)
  if result.status == "interrupted":
    raise TrainingInterrupted(result.stop_signal, _step_of(result.state),
                              result.workdir, result)
  return result


def _step_of(state: TrainState) -> int:
  """The step of a state (the first replica's for multi-seed runs)."""
  return int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])


def iterate_records(path: str | pathlib.Path) -> Iterator[dict[str, Any]]:
  """The records of a run's metrics.jsonl, in order."""
  yield from logs.read_jsonl(pathlib.Path(path) / workdir_lib.METRICS_FILE)


__all__ = ["RunResult", "Trainer", "fit", "iterate_records"]
