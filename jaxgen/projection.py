"""Projection onto a trained generator and editing in its latent space (iGAN).

The user-level side of `Method.project` (`jaxgen.core.projection`): checks the
images against the run, picks the feature network, trains the encoder of the
initialisation, and moves codes along directions.

  run = jaxgen.load("runs/dcgan")
  encoder = jaxgen.train_encoder(run, steps=2000)          # optional
  z, reconstructions, losses = jaxgen.project(run, images, steps=200, restarts=4,
                                              encoder=encoder)
  d = projection.class_direction(z, labels, source=3, target=8)
  edited = projection.edit(run, z, d, amounts=[0.0, 0.5, 1.0])  # [3, N, *shape]

`jaxgen project --workdir D --images FILE.npz --out OUT.npz` is the command.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from jaxgen import _npz
from jaxgen.core import projection as core
from jaxgen.engine import runs as runs_lib
from jaxgen.errors import ConfigError, choices
from jaxgen.metrics import lenet

LoadedRun = runs_lib.LoadedRun

# Methods whose generator takes the images' labels (held fixed while z moves).
LABELLED = ("cgan", "acgan", "cvae")
# The shipped LeNet that serves as the feature network, by image shape.
FEATURE_NETWORKS = {(8, 8, 1): "digits", (28, 28, 1): "mnist"}


class Encoder(NamedTuple):
  """E(x) ≈ z trained on a generator's samples (`train_encoder`)."""

  module: core.LatentEncoder
  params: Any
  losses: np.ndarray        # the training loss of every step
  protocol: dict


def _as_run(run: LoadedRun | str | pathlib.Path, step: int | None = None) -> LoadedRun:
  return run if isinstance(run, LoadedRun) else runs_lib.load(run, step)


def check_generator(run: LoadedRun) -> None:
  """A one-line error for a run whose method has no generator."""
  if run.method.project is None:
    raise ConfigError(f"method {run.config.method!r} has no generator to project onto; "
                      "projection works for gan, cgan, acgan, infogan, ssgan, pggan and "
                      "the vae family")


def read_images_file(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray | None]:
  """(x, labels or None) from an .npz file with 'x' (and 'labels'); nothing unpickled."""
  contents = _npz.read(path, "images file")
  if "x" not in contents:
    raise ConfigError(f"images file {str(path)!r} holds no array 'x' (images [N, *shape]); "
                      f"it holds: {choices(sorted(contents)) or 'nothing'}")
  return contents["x"], contents.get("labels")


def check_images(run: LoadedRun, images: Any) -> np.ndarray:
  """`images` as float32 [N, *data_shape]; one-line errors for what does not fit."""
  shape = tuple(run.spec.shape)
  x = np.asarray(images)
  if x.dtype.kind not in "fiub":
    raise ConfigError(f"images must be numbers, got dtype {x.dtype}")
  x = x.astype(np.float32)
  if x.ndim >= 1 and shape[-1:] == (1,) and x.shape[1:] == shape[:-1]:
    x = x[..., None]                       # grey images given without the channel axis
  if x.ndim < 2 or x.shape[1:] != shape or x.shape[0] < 1:
    raise ConfigError(f"images must have shape [N, {', '.join(map(str, shape))}] like "
                      f"the run's data {run.spec.name!r}, got {list(x.shape)}")
  if not np.all(np.isfinite(x)):
    raise ConfigError(f"images hold {int(np.sum(~np.isfinite(x)))} non-finite values "
                      "(NaN or Inf)")
  return x


def feature_function(spec: Any):
  """The digit LeNet's features for images of `spec` (8x8 or 28x28 grey)."""
  return _features(tuple(spec.shape), tuple(float(v) for v in spec.value_range))


@functools.lru_cache(maxsize=4)
def _features(shape: tuple[int, ...], value_range: tuple[float, float]):
  if shape not in FEATURE_NETWORKS:
    raise ConfigError(f"the feature loss uses the digit LeNet, for images of shape "
                      f"{choices(list(FEATURE_NETWORKS))}; the run's data has {shape}")
  params = lenet.load(FEATURE_NETWORKS[shape])

  def features(images):
    out = params.module.apply(params.variables, lenet.prepare(images, value_range))
    return out["features"]
  return features


def check_labels(run: LoadedRun, labels: Any, num: int) -> dict[str, Any]:
  """{'labels': [N] int32} for a labelled generator, {} without labels; one-line errors."""
  if labels is None:
    return {}
  if run.config.method not in LABELLED:
    raise ConfigError(f"method {run.config.method!r} does not condition on labels; "
                      f"labels= applies to {choices(LABELLED)}")
  values = np.asarray(labels)
  classes = run.spec.num_classes
  if values.shape != (num,) or not np.issubdtype(values.dtype, np.integer):
    raise ConfigError(f"labels must be {num} integers (one per image), got shape "
                      f"{list(values.shape)} of {values.dtype}")
  if classes and (values.min() < 0 or values.max() >= classes):
    raise ConfigError(f"labels must lie in 0 to {classes - 1}")
  return {"labels": jnp.asarray(values, jnp.int32)}


def project(run: LoadedRun | str | pathlib.Path, images: Any, *, seed: int = 0,
            replica: int = 0, step: int | None = None, labels: Any = None,
            encoder: Encoder | None = None, **options: Any
            ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
  """Projects `images` [N, *data_shape] onto a trained run's generator.

  Returns (z [N, d], reconstructions [N, *shape], losses) as numpy arrays (see
  `jaxgen.core.projection.project`). options: steps, restarts, learning_rate,
  feature_weight (the digit LeNet's features), prior_weight. `labels` [N]:
  conditional generators (cgan, acgan, cvae). `encoder`: restart 0 starts at
  its codes. Deterministic for a run, images, seed and options.
  """
  run = _as_run(run, step)
  check_generator(run)
  x = check_images(run, images)
  opts = core.options(**options)
  conditioning = check_labels(run, labels, len(x))
  features = feature_function(run.spec) if opts.feature_weight > 0 else None
  init = None if encoder is None else encode(encoder, x)
  state = run.replica(replica)
  fn = _compiled(run.method.project, features, tuple(sorted(dataclasses.asdict(opts).items())))
  z, reconstructions, losses = fn(state, x, jax.random.PRNGKey(seed), init, conditioning)
  return np.asarray(z), np.asarray(reconstructions), jax.tree.map(np.asarray, losses)


@functools.lru_cache(maxsize=16)
def _compiled(project_fn, features, option_items):
  """One jitted projection per method, feature network and options (reused across calls)."""
  def run_projection(state, images, key, init, conditioning):
    return project_fn(state, images, key, init=init, features=features, **conditioning,
                      **dict(option_items))
  return jax.jit(run_projection)


@functools.lru_cache(maxsize=16)
def _jitted_decode(decode_fn):
  return jax.jit(decode_fn)


def encode(encoder: Encoder, images: Any) -> np.ndarray:
  """The encoder's codes [N, d] for images [N, *shape]."""
  return np.asarray(_apply(encoder.module, encoder.params, jnp.asarray(images, jnp.float32)))


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, x):
  return module.apply({"params": params}, x)


def train_encoder(run: LoadedRun | str | pathlib.Path, *, steps: int = 2000,
                  batch_size: int = 128, learning_rate: float = 1e-3,
                  hidden: Sequence[int] = (256, 256), seed: int = 0, replica: int = 0,
                  progress: bool = True, **conditioning: Any) -> Encoder:
  """Trains E(x) ≈ z on the generator's own samples (z ~ N(0, I), x = G(z)).

  Adam on `core.encoder_loss` (||E(G(z)) − z||² / d), a fresh batch of z
  every step from fold_in(PRNGKey(seed), step). Conditional generators decode
  with their default conditioning (labels cycling 0, 1, ...) unless given;
  the style generator needs noise_key=.
  """
  run = _as_run(run)
  check_generator(run)
  if steps < 1 or batch_size < 1:
    raise ConfigError(f"train_encoder needs steps >= 1 and batch_size >= 1, got "
                      f"{steps} and {batch_size}")
  latent_dim = _latent_dim(run)
  state = run.replica(replica)
  module = core.LatentEncoder(latent_dim=latent_dim, hidden=tuple(hidden))
  key = jax.random.PRNGKey(seed)
  k_init, k_steps = jax.random.split(key)
  params = module.init(k_init, jnp.zeros((1, *run.spec.shape)))["params"]
  optimizer = optax.adam(learning_rate)
  opt_state = optimizer.init(params)
  decode = functools.partial(run.method.decode, state, **conditioning)
  step_fn = jax.jit(functools.partial(core.encoder_train_step, module, decode, optimizer,
                                      batch_size=batch_size))
  losses = []
  for t in tqdm.trange(steps, desc="encoder", disable=not progress, leave=False):
    params, opt_state, loss = step_fn(params, opt_state, jax.random.fold_in(k_steps, t))
    losses.append(loss)
  protocol = {"loss": "||E(G(z)) - z||^2 / latent_dim, z ~ N(0, I)", "steps": steps,
              "batch_size": batch_size, "learning_rate": learning_rate,
              "hidden": list(hidden), "seed": seed, "run_step": run.step}
  return Encoder(module, params, np.asarray(jnp.stack(losses)), protocol)


def _latent_dim(run: LoadedRun) -> int:
  """The generator's code size (model.latent_dim of the run's config)."""
  model = run.config.model
  if "latent_dim" in model:
    return int(model.latent_dim)
  raise ConfigError(f"method {run.config.method!r} has no model.latent_dim")


def class_direction(z: Any, labels: Any, *, source: int, target: int) -> np.ndarray:
  """mean(z | target) − mean(z | source): the edit that moves source towards target."""
  z, labels = np.asarray(z), np.asarray(labels)
  for c in (source, target):
    if not np.any(labels == c):
      raise ConfigError(f"no code of class {c} to average")
  return z[labels == target].mean(0) - z[labels == source].mean(0)


def edit(run: LoadedRun | str | pathlib.Path, z: Any, direction: Any,
         amounts: Sequence[float], *, replica: int = 0, **conditioning: Any) -> np.ndarray:
  """Decodes z + a · direction for each a in `amounts`: [len(amounts), N, *shape].

  `direction`: one [d] vector, or one per code [N, d].
  """
  run = _as_run(run)
  check_generator(run)
  z = np.asarray(z, np.float32)
  direction = np.broadcast_to(np.asarray(direction, np.float32), z.shape)
  codes = np.concatenate([z + a * direction for a in amounts])    # one call for all
  repeated = {k: (np.tile(np.asarray(v), len(amounts)) if np.ndim(v) else v)
              for k, v in conditioning.items() if k != "noise_key"}
  repeated.update({k: v for k, v in conditioning.items() if k == "noise_key"})
  decoded = _jitted_decode(run.method.decode)(run.replica(replica), codes, **repeated)
  return np.asarray(decoded).reshape((len(amounts),) + z.shape[:1] + decoded.shape[1:])
