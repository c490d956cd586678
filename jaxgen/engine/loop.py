"""The training loop: one engine for every method.

`fit(config, workdir=...)` builds the dataset and the method named by the config,
places the state on the devices, compiles the train step once, and runs it with
logging, periodic evaluation, sample grids, checkpoints, a NaN guard and clean
interruption by SIGTERM/SIGINT. With `train.seeds` it trains one replica per
seed in the same compiled program (`jax.vmap` over the state).
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from jaxgen.engine import checkpoint as checkpoint_lib
from jaxgen.engine import logs
from jaxgen.engine import parallel
from jaxgen.engine import workdir as workdir_lib
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError, NonFiniteError, choices
from jaxgen.metrics import mode_coverage
from jaxgen.viz import grid

# Salts for the fixed keys of evaluation and sample grids, so that they never
# coincide with training keys and stay the same over a run.
EVAL_SALT = 0x0E7A1
SAMPLE_SALT = 0x5A3B1
COVERAGE_SALT = 0xC0FE1
# Metrics are fetched from the devices in groups of this many steps.
_SYNC_EVERY = 8


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
    status: "completed" or "interrupted".
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


def spec_to_json(spec: Any) -> dict[str, Any]:
  """A DataSpec as JSON-ready values (arrays become lists)."""
  out = {}
  for field in dataclasses.fields(spec):
    value = getattr(spec, field.name)
    out[field.name] = value.tolist() if isinstance(value, np.ndarray) else value
  return json.loads(json.dumps(out, default=lambda o: list(o) if isinstance(
      o, tuple) else (o.tolist() if hasattr(o, "tolist") else str(o))))


def spec_from_json(values: dict[str, Any]) -> Any:
  """Rebuilds the DataSpec saved by `spec_to_json`."""
  kwargs = {}
  for field in dataclasses.fields(data_lib.DataSpec):
    if field.name not in values:
      continue
    value = values[field.name]
    if isinstance(value, list):
      value = (np.asarray(value, np.float32) if field.name == "modes"
               else tuple(tuple(v) if isinstance(v, list) else v for v in value))
    kwargs[field.name] = value
  return data_lib.DataSpec(**kwargs)


def example_batch(spec: Any, batch_size: int) -> dict[str, np.ndarray]:
  """A zero batch with the shapes and dtypes of real batches (for eval_shape)."""
  batch = {"x": np.zeros((batch_size,) + tuple(spec.shape), np.float32)}
  if spec.num_classes:
    batch["label"] = np.zeros((batch_size,), np.int32)
  return batch


def init_keys(seeds: list[int], multi: bool) -> jax.Array:
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
  return keys if multi else keys[0]


def fixed_keys(seeds: list[int], salt: int, multi: bool) -> jax.Array:
  """A key per seed that does not change during the run (eval, sample grids)."""
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), salt) for s in seeds])
  return keys if multi else keys[0]


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
  if tc.seed_strategy not in SEED_STRATEGIES:
    raise ConfigError(f"unknown train.seed_strategy {tc.seed_strategy!r}; "
                      f"valid: {choices(SEED_STRATEGIES)}")
  for key in ("steps", "log_every", "keep_checkpoints"):
    if tc[key] < 1:
      raise ConfigError(f"train.{key} must be at least 1, got {tc[key]}")
  for key in ("eval_every", "sample_every", "checkpoint_every", "num_samples",
              "eval_batch_size", "num_devices", "coverage_samples"):
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


def _window_mean(window: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  return {k: np.mean(np.stack([w[k] for w in window]), axis=0) for k in window[0]}


def _per_seed(values: dict[str, np.ndarray], seeds: list[int], multi: bool
              ) -> list[tuple[int | None, dict[str, float]]]:
  """[(seed, {name: float})], one entry per replica."""
  if not multi:
    return [(None, {k: float(v) for k, v in values.items()})]
  return [(s, {k: float(v[i]) for k, v in values.items()})
          for i, s in enumerate(seeds)]


class Trainer:
  """Runs one configured training job; `fit` is the function to call."""

  def __init__(self, config: ml_collections.ConfigDict,
               workdir: str | pathlib.Path | None, resume: bool, overwrite: bool):
    parallel.maybe_initialize_distributed()
    self.config = config
    self.entry = registry.get(config.method)
    _check_train_config(config)
    self.tc = config.train
    self.seeds = config_lib.seeds_of(config)
    self.multi = bool(config.train.seeds)
    self.config_dict = config_lib.to_dict(config)
    self.is_main = jax.process_index() == 0
    self.strategy = parallel.Strategy(self.tc.strategy, self.tc.num_devices,
                                      seed_axis=self.multi)
    self.strategy.check_batch_size(config.data.batch_size)
    self.dataset = data_lib.from_config(config.data)
    self.spec = self.dataset.spec
    self.method = self.entry.make(config, self.spec)
    self.workdir = (workdir_lib.prepare(workdir, self.config_dict, resume=resume,
                                        overwrite=overwrite)
                    if workdir is not None else None)
    self.resume = resume
    self.writer = logs.MetricWriter(self.workdir, self.tc.tensorboard, self.is_main)
    self.checkpointer = (checkpoint_lib.Checkpointer(
        self.workdir / workdir_lib.CHECKPOINT_DIR, self.tc.keep_checkpoints)
                         if self.workdir is not None else None)
    self.last_checkpoint: int | None = None
    self._eval_fn = None
    self.last_protocol: dict[str, Any] | None = None
    self._sample_fns: dict[int, Callable[..., jax.Array]] = {}
    self._reconstruct_fn = None

  # ------------------------------------------------------------------ data
  def _iterators(self) -> list[Any]:
    return [data_lib.train_iterator(
        self.dataset, batch_size=self.config.data.batch_size, seed=s,
        process_index=jax.process_index(), process_count=jax.process_count())
            for s in self.seeds]

  def _next(self, iterators: list[Any]) -> dict[str, np.ndarray]:
    batches = [next(it) for it in iterators]
    return _stack(batches) if self.multi else batches[0]

  # ----------------------------------------------------------------- state
  def _init_fn(self) -> Callable[[jax.Array, Any], TrainState]:
    return jax.vmap(self.method.init) if self.multi else self.method.init

  def _restore_or_init(self, iterators: list[Any]) -> TrainState:
    keys = init_keys(self.seeds, self.multi)
    # The first batch of each seed's stream, drawn from a separate iterator so
    # the training stream is untouched: data-dependent initialisation sees the
    # same data as the single-seed run with that seed.
    example = self._next(self._iterators())
    latest = self.checkpointer.latest_step() if (
        self.checkpointer and self.resume) else None
    if latest is None:
      return self.strategy.init(self._init_fn(), keys, example)
    abstract = jax.eval_shape(self._init_fn(), keys, example)
    sharding = (self.strategy.replicated_sharding() if self.strategy.name == "jit"
                else jax.sharding.SingleDeviceSharding(self.strategy.devices[0]))
    latest, state, data_states, _ = self.checkpointer.restore_newest(
        checkpoint_lib.abstract_like(abstract, sharding), quarantine=True)
    # Records of the steps after the checkpoint are redone: drop them (and a
    # line torn by a kill) so the log holds each step once.
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
    if self.checkpointer is None or self.last_checkpoint == step:
      return
    self.checkpointer.save(step, self.strategy.unreplicate(state),
                           [it.get_state() for it in iterators], self.config_dict)
    self.last_checkpoint = step

  # ------------------------------------------------------------ evaluation
  def evaluate(self, state: TrainState, step: int,
               split: str = "test") -> dict[str, Any] | None:
    """Evaluates on a whole split, logs one record per seed, returns the means."""
    means: dict[str, np.ndarray] = {}
    count = 0
    if self.method.evaluate is not None:
      if self._eval_fn is None:
        self._eval_fn = compile_evaluate(self.method, self.strategy, self.multi)
      means, count = evaluate_split(
          self._eval_fn, self.strategy.unreplicate(state), self.dataset,
          self.strategy, fixed_keys(self.seeds, EVAL_SALT, self.multi),
          self.tc.eval_batch_size or self.config.data.batch_size, split)
    protocol = eval_protocol(self.method, self.spec, self.config_dict, split,
                             count, step, f"fold_in(PRNGKey(seed), {EVAL_SALT:#x})")
    if self.spec.modes is not None and self.tc.coverage_samples:
      samples = self.sample(state, self.tc.coverage_samples,
                            fixed_keys(self.seeds, COVERAGE_SALT, self.multi))
      coverage, protocol["mode_coverage"] = coverage_metrics(
          samples, self.spec, self.multi)
      means.update(coverage)
    if not means:
      return None
    self.last_protocol = protocol
    return log_eval(self.writer, means, self.seeds, self.multi, step, split, protocol)

  # ---------------------------------------------------------------- images
  def sample(self, state: TrainState, num: int, key: jax.Array | None = None) -> np.ndarray:
    """Samples [num, ...] (or [seeds, num, ...]) from the current state."""
    state = self.strategy.unreplicate(state)
    if num not in self._sample_fns:
      self._sample_fns[num] = compile_sample(self.method, num, self.multi)
    if key is None:
      key = fixed_keys(self.seeds, SAMPLE_SALT, self.multi)
    return np.asarray(jax.device_get(self._sample_fns[num](state, key)))

  def write_images(self, state: TrainState, step: int, final: bool) -> None:
    """Writes the sample grid (and reconstructions) for `step`."""
    if self.workdir is None or not self.is_main or not self.tc.num_samples:
      return
    name = "samples.png" if final else f"samples/step_{step:07d}.png"
    samples = self.sample(state, self.tc.num_samples)
    if self.multi:
      samples = samples[0]  # the first seed's replica; all are in the checkpoint
    write_samples(self.workdir / name, samples, self.spec, self.dataset,
                  title=f"{self.config.method} step {step}")
    if self.method.reconstruct is not None and (
        self.spec.is_image or getattr(self.spec, "image_shape", None) is not None):
      self._write_reconstructions(state, step, final)

  def _write_reconstructions(self, state: TrainState, step: int, final: bool) -> None:
    state = self.strategy.unreplicate(state)
    if self._reconstruct_fn is None:
      fn = self.method.reconstruct
      self._reconstruct_fn = jax.jit(
          jax.vmap(fn, in_axes=(0, None, 0)) if self.multi else fn)
    batch = next(iter(data_lib.eval_batches(self.dataset, split="test",
                                            batch_size=32)))
    batch = {k: v for k, v in batch.items() if k != "mask"}
    recon = np.asarray(self._reconstruct_fn(
        state, batch, fixed_keys(self.seeds, SAMPLE_SALT, self.multi)))
    if self.multi:
      recon = recon[0]
    name = ("reconstructions.png" if final
            else f"reconstructions/step_{step:07d}.png")
    image_shape = getattr(self.spec, "image_shape", None)
    grid.save_pairs(self.workdir / name, grid.as_images(batch["x"], image_shape),
                    grid.as_images(recon, image_shape), columns=8,
                    value_range=self.spec.value_range)

  # ------------------------------------------------------------------ loop
  def run(self) -> RunResult:
    iterators = self._iterators()
    state = self._restore_or_init(iterators)
    start = int(np.asarray(jax.device_get(self.strategy.unreplicate(state).step)).reshape(-1)[0])
    total = self.tc.steps
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
          "data_spec": spec_to_json(self.spec),
      })
    step_fn = self.strategy.compile_step(
        over_seeds(self.method.train_step, self.tc.seed_strategy) if self.multi
        else self.method.train_step)
    progress = logs.Progress(
        total, start, f"{self.config.method} on {self.spec.name}",
        enabled=self.tc.progress and self.is_main)
    global_batch = self.config.data.batch_size
    window: list[dict[str, np.ndarray]] = []
    pending: list[tuple[int, Any]] = []
    last_train: dict[str, Any] = {}
    last_eval: dict[str, Any] | None = None
    status = "completed"
    stop_signal = None
    started = time.perf_counter()
    log_time, log_step = started, start

    diverged: set[int | None] = set()

    def drain(leave: int = 0) -> None:
      """Checks and collects the metrics of all pending steps but the last `leave`.

      One transfer for them all; each step is still checked, so a NaN is
      reported at the step where it appeared.
      """
      ready = pending[:len(pending) - leave]
      fetched = jax.device_get([metrics for _, metrics in ready])
      for (done, _), values in zip(ready, fetched):
        pending.pop(0)
        host = {k: np.asarray(v) for k, v in values.items()}
        bad = [k for k, v in host.items() if not np.all(np.isfinite(v))]
        if bad and self.tc.on_nonfinite == "stop":
          raise self._nonfinite(done, host, bad)
        if bad:
          self._note_divergence(done, host, bad, diverged, progress)
        window.append(host)

    with _StopSignals() as stop, contextlib.ExitStack() as cleanup:
      cleanup.callback(progress.close)
      step = start
      for step in range(start + 1, total + 1):
        batch = self.strategy.put_batch(self._next(iterators))
        state, metrics = step_fn(state, batch)
        pending.append((step, metrics))
        if len(pending) > _SYNC_EVERY:
          # Read metrics a few steps late, so the host never waits for the
          # step it has just dispatched and the devices stay busy.
          drain(leave=1)
          progress.update(step, _last_loss(window))
        interrupted = stop.received is not None
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
          for seed, values in _per_seed(means, self.seeds, self.multi):
            record = {"step": step, "split": "train", **values,
                      "steps_per_sec": rate, "examples_per_sec": rate * global_batch,
                      "time": now - started}
            if seed is not None:
              record["seed"] = seed
            self.writer.write(record)
          last_train = _collect(means, self.multi)
        if interrupted:
          self._save(state, iterators, step)
          status = "interrupted"
          stop_signal = int(stop.received)
          progress.write(
              f"stopped by {signal.Signals(stop.received).name} at step {step}"
              + (f"; checkpoint saved in {self.workdir}; continue with --resume"
                 if self.workdir is not None else ""))
          break
        if _due(step, self.tc.checkpoint_every) or is_last:
          self._save(state, iterators, step)
        if _due(step, self.tc.eval_every) and not is_last:
          last_eval = self.evaluate(state, step)
        if _due(step, self.tc.sample_every) and not is_last:
          self.write_images(state, step, final=False)

    if status == "completed":
      if self.tc.final_eval:
        last_eval = self.evaluate(state, step)
      self.write_images(state, step, final=True)
      if self.workdir is not None and last_eval is not None and self.is_main:
        (self.workdir / workdir_lib.EVAL_FILE).write_text(json.dumps(
            {"step": step, "seeds": self.seeds, "metrics": last_eval,
             "protocol": self.last_protocol}, indent=2) + "\n")
    self.writer.close()
    if self.checkpointer is not None:
      self.checkpointer.close()
    return RunResult(
        state=self.strategy.unreplicate(state),
        metrics={"train": last_train, "eval": last_eval},
        history=self.writer.records, method=self.method, config=self.config,
        spec=self.spec, workdir=self.workdir, status=status,
        stop_signal=stop_signal)

  def _note_divergence(self, step: int, host: dict[str, np.ndarray], bad: list[str],
                       diverged: set[int | None], progress: logs.Progress) -> None:
    """Logs replicas that turned non-finite for the first time (on_nonfinite=continue)."""
    if self.multi:
      seeds = {self.seeds[i] for k in bad for i in np.flatnonzero(~np.isfinite(host[k]))}
    else:
      seeds = {None}
    for seed in sorted(seeds - diverged, key=lambda s: -1 if s is None else s):
      diverged.add(seed)
      record = {"step": step, "split": "train", "event": "nonfinite", "metrics": bad}
      if seed is not None:
        record["seed"] = seed
      self.writer.write(record)
      progress.write(f"non-finite {', '.join(bad)} at step {step}"
                     + (f" for seed {seed}" if seed is not None else "")
                     + "; continuing (train.on_nonfinite='continue')")

  def _nonfinite(self, step: int, host: dict[str, np.ndarray],
                 bad: list[str]) -> NonFiniteError:
    where = ""
    if self.multi:
      seeds = sorted({self.seeds[i] for k in bad
                      for i in np.flatnonzero(~np.isfinite(host[k]))})
      where = f" (seeds {seeds})"
    values = ", ".join(f"{k}={np.asarray(host[k]).tolist()}" for k in bad)
    saved = (f"the last good checkpoint is step {self.last_checkpoint} in "
             f"{self.workdir / workdir_lib.CHECKPOINT_DIR}"
             if self.last_checkpoint is not None else "no checkpoint was saved")
    self.writer.write({"step": step, "split": "train", "event": "nonfinite",
                       "metrics": bad})
    self.writer.close()
    return NonFiniteError(
        f"non-finite {', '.join(bad)} at step {step}{where} ({values}); "
        f"training stopped; {saved}")


def _last_loss(window: list[dict[str, np.ndarray]]) -> float | None:
  if not window or "loss" not in window[-1]:
    return None
  return float(np.mean(window[-1]["loss"]))


def compile_sample(method: Method, num: int, multi: bool):
  """The jitted `sample(state, key)` for `num` samples (vmapped when `multi`)."""
  fn = lambda s, k: method.sample(s, k, num)  # noqa: E731
  return jax.jit(jax.vmap(fn) if multi else fn)


def coverage_metrics(samples: np.ndarray, spec: Any, multi: bool
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Mode coverage of samples ([N, 2], or [K, N, 2] per replica) and its protocol."""
  replicas = samples if multi else samples[None]
  results = [mode_coverage(r.reshape(len(r), -1), spec.modes, spec.mode_std)
             for r in replicas]
  values = {
      "modes_covered": np.array([r["modes_covered"] for r in results], np.float64),
      "high_quality_share": np.array([r["high_quality_share"] for r in results]),
  }
  if not multi:
    values = {k: v[0] for k, v in values.items()}
  protocol = {
      "samples": int(replicas.shape[1]),
      "modes": int(len(spec.modes)),
      "high_quality": "within 3 standard deviations of the nearest mode centre",
      "covered": "at least 20 high-quality samples at the mode (Lin et al. 2018)",
      "sample_key": f"fold_in(PRNGKey(seed), {COVERAGE_SALT:#x})",
  }
  return values, protocol


def compile_evaluate(method: Method, strategy: parallel.Strategy, multi: bool):
  """The jitted evaluation of one batch (vmapped over replicas when `multi`)."""
  fn = method.evaluate
  if multi:
    fn = jax.vmap(fn, in_axes=(0, None, 0))
  return strategy.compile_eval(fn)


def evaluate_split(eval_fn, state: TrainState, dataset: Any,
                   strategy: parallel.Strategy, keys: jax.Array, batch_size: int,
                   split: str = "test") -> tuple[dict[str, np.ndarray], int]:
  """Exact means of per-example metrics over every example of `split`.

  Padding rows of the last batch are masked out; sums are taken in float64.
  Returns ({name: mean, or [seeds] means}, number of examples).
  """
  strategy.check_batch_size(batch_size)
  totals: dict[str, np.ndarray] = {}
  count = 0.0
  process, processes = jax.process_index(), jax.process_count()
  for batch in data_lib.eval_batches(dataset, split=split, batch_size=batch_size):
    if processes > 1:
      share = batch_size // processes
      batch = {k: v[process * share:(process + 1) * share] for k, v in batch.items()}
    device_batch = strategy.put_eval_batch(batch)
    values = jax.device_get(eval_fn(state, device_batch, keys))
    mask = np.asarray(jax.device_get(device_batch["mask"]), np.float64)
    for name, per_example in values.items():
      per_example = np.asarray(per_example, np.float64)
      totals[name] = totals.get(name, 0.0) + (per_example * mask).sum(-1)
    count += mask.sum()
  return {k: v / count for k, v in totals.items()}, int(count)


def eval_protocol(method: Method, spec: Any, config_dict: dict[str, Any], split: str,
                  count: int, step: int, key_rule: str) -> dict[str, Any]:
  """How an evaluation was obtained, saved beside its numbers."""
  data_cfg = config_dict.get("data", {})
  return {
      **(method.eval_protocol or {}),
      "split": split,
      "num_examples": count,
      "dataset": spec.name,
      "data_transforms": {k: data_cfg.get(k) for k in (
          "scale", "binarize", "dequantize", "flatten") if k in data_cfg},
      "eval_key": key_rule,
      "checkpoint_step": step,
  }


def log_eval(writer: logs.MetricWriter, means: dict[str, np.ndarray], seeds: list[int],
             multi: bool, step: int, split: str, protocol: dict[str, Any]
             ) -> dict[str, Any]:
  """Writes one evaluation record per seed; returns floats (lists when multi)."""
  result = {}
  for seed, values in _per_seed(means, seeds, multi):
    record = {"step": step, "split": split, **values, "protocol": protocol}
    if seed is not None:
      record["seed"] = seed
    writer.write(record)
    result[seed] = values
  if not multi:
    return result[None]
  return {k: [result[s][k] for s in seeds] for k in means}


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


def write_samples(path: pathlib.Path, samples: np.ndarray, spec: Any,
                  dataset: Any | None = None, title: str = "") -> pathlib.Path:
  """Writes samples as an image grid, or as a scatter plot for 2-D data."""
  image_shape = getattr(spec, "image_shape", None)
  if spec.is_image or image_shape is not None:
    return grid.save_image_grid(path, grid.as_images(samples, image_shape),
                                value_range=spec.value_range)
  samples = np.asarray(samples).reshape(len(samples), -1)
  if samples.shape[1] == 2:
    reference = None
    if dataset is not None:
      reference = next(iter(data_lib.eval_batches(
          dataset, split="test", batch_size=min(2000, spec.num_test))))["x"]
    return grid.save_scatter(path, samples, reference, spec.modes, title)
  # Other vectors: show them as rows of an image.
  return grid.save_image_grid(path, samples[:, None, :, None],
                              columns=1, value_range=spec.value_range)


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

  Returns a RunResult. A run stopped by SIGTERM/SIGINT returns normally with
  `status == "interrupted"` (and `stop_signal` set) after saving a checkpoint:
  scripts that go on to use the state should check the status.
  Raises NonFiniteError when a metric becomes NaN/Inf (train.on_nonfinite="stop").
  """
  try:
    trainer = Trainer(config, workdir, resume, overwrite)
    return trainer.run()
  finally:
    if workdir is not None:
      workdir_lib.unlock(workdir)


def iterate_records(path: str | pathlib.Path) -> Iterator[dict[str, Any]]:
  """The records of a run's metrics.jsonl, in order."""
  yield from logs.read_jsonl(pathlib.Path(path) / workdir_lib.METRICS_FILE)


__all__ = ["RunResult", "Trainer", "fit", "write_samples", "spec_to_json",
           "spec_from_json", "example_batch", "iterate_records", "evaluate_split",
           "compile_evaluate", "compile_sample", "coverage_metrics", "eval_protocol",
           "log_eval"]
