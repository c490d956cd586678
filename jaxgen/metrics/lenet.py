"""The digit feature network: trained LeNet weights shipped with jaxgen.

FID/KID/precision-recall on digits and MNIST need a feature network that knows
digits; Inception, trained on ImageNet photographs, sees 8x8 digits upsampled to
299x299. jaxgen ships a small LeNet (`jaxgen.nn.lenet.LeNet`) trained by
`experiments/train_lenet.py` (fixed seed) for each of

* "mnist":  28x28 images; trained on the 8,000 training images of the fixed
  8,000/2,000 split of MNIST's t10k file (`idx:../shared/data/mnist-t10k`),
  accuracy measured on the 2,000 held out;
* "digits": sklearn digits, 8x8; the fixed 1,438/359 split of `digits`.

    from jaxgen.metrics import lenet
    params = lenet.load("digits")                 # hash checked
    feats = lenet.features(params, images, value_range=(0, 1))   # [N, 128]
    logits = lenet.logits(params, images, value_range=(0, 1))    # [N, 10]

Images are as jaxgen's data pipeline gives them: [N, H, W, 1], [N, H, W] or
flattened [N, H*W], in `value_range` (the data spec's, (0, 1) by default for
images; (-1, 1) with `data.scale='symmetric'`); they are mapped to [0, 1] and
clipped before the network. The accuracy, the training protocol and the
SHA-256 of each `.npz` are in `weights/lenet.json`; `load` refuses a file whose
hash differs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError, choices
from jaxgen.nn.lenet import LeNet, prepare

WEIGHTS_DIR = pathlib.Path(__file__).parent / "weights"
RECORD_FILE = "lenet.json"
_NPZ_FORMAT = "jaxgen-lenet-v1"

# The architecture of each shipped network; the training script reads it too.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "mnist": {"channels": (16, 32), "kernel_size": 5, "hidden": 128,
              "num_classes": 10, "image_shape": (28, 28, 1)},
    "digits": {"channels": (16, 32), "kernel_size": 3, "hidden": 128,
               "num_classes": 10, "image_shape": (8, 8, 1)},
}


class LeNetParams(NamedTuple):
  """Trained weights of one LeNet and where they came from."""

  name: str              # "mnist" or "digits"
  variables: dict        # Flax variables of `module`
  sha256: str            # of the .npz file
  module: LeNet
  image_shape: tuple[int, int, int]
  record: dict           # the entry of weights/lenet.json (accuracy, protocol)

  @property
  def network(self) -> str:
    """The metric-name suffix: 'lenet_mnist' or 'lenet_digits'."""
    return f"lenet_{self.name}"


def module_for(name: str, dropout: float = 0.0) -> LeNet:
  """The LeNet architecture shipped for `name`."""
  arch = _architecture(name)
  return LeNet(channels=arch["channels"], kernel_size=arch["kernel_size"],
               hidden=arch["hidden"], num_classes=arch["num_classes"], dropout=dropout)


def _architecture(name: str) -> dict[str, Any]:
  if name not in ARCHITECTURES:
    raise ConfigError(f"no LeNet for {name!r}; choose {choices(ARCHITECTURES)}")
  return ARCHITECTURES[name]


def file_sha256(path: str | pathlib.Path) -> str:
  """The SHA-256 of a file, hex."""
  return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def save_variables(path: str | pathlib.Path, variables: Mapping[str, Any]) -> str:
  """Writes variables as a flat .npz ("params/conv0/kernel", ...); returns its SHA-256."""
  flat = {"/".join(k): np.asarray(v, np.float32)
          for k, v in flax.traverse_util.flatten_dict(
              flax.core.unfreeze(variables)).items()}
  with open(path, "wb") as f:
    np.savez(f, __format__=np.array(_NPZ_FORMAT), **flat)
  return file_sha256(path)


def _read_npz(path: pathlib.Path) -> dict:
  with np.load(path, allow_pickle=False) as npz:
    if "__format__" not in npz.files or str(npz["__format__"]) != _NPZ_FORMAT:
      raise ConfigError(f"{str(path)!r} is not a jaxgen LeNet weights file")
    flat = {tuple(k.split("/")): np.asarray(npz[k]) for k in npz.files
            if k != "__format__"}
  return flax.traverse_util.unflatten_dict(flat)


def records(weights_dir: str | pathlib.Path = WEIGHTS_DIR) -> dict[str, dict]:
  """The recorded accuracy, protocol and SHA-256 of every shipped LeNet."""
  path = pathlib.Path(weights_dir) / RECORD_FILE
  if not path.is_file():
    return {}
  return json.loads(path.read_text(encoding="utf-8"))


def load(dataset: str, weights_dir: str | pathlib.Path = WEIGHTS_DIR) -> LeNetParams:
  """The trained LeNet for "mnist" or "digits", its file hash checked against lenet.json.

  Raises:
    ConfigError: unknown name, missing file, or a hash that differs from the record.
  """
  module = module_for(dataset)
  weights_dir = pathlib.Path(weights_dir)
  path = weights_dir / f"lenet_{dataset}.npz"
  record = records(weights_dir).get(dataset)
  if record is None or not path.is_file():
    raise ConfigError(f"the LeNet weights for {dataset!r} are not in {str(weights_dir)!r}; "
                      "train them with `python experiments/train_lenet.py`")
  digest = file_sha256(path)
  if digest != record["sha256"]:
    raise ConfigError(f"{str(path)!r} has SHA-256 {digest[:16]}..., but "
                      f"{RECORD_FILE} records {record['sha256'][:16]}...: a damaged or "
                      "different file; reinstall jaxgen or retrain")
  variables = _read_npz(path)
  expected = jax.eval_shape(
      module.init, jax.random.PRNGKey(0),
      jnp.zeros((1, *ARCHITECTURES[dataset]["image_shape"]), jnp.float32))
  if jax.tree.map(lambda a: a.shape, expected) != jax.tree.map(np.shape, variables):
    raise ConfigError(f"{str(path)!r} does not hold the LeNet architecture of {dataset!r}")
  return LeNetParams(dataset, variables, digest, module,
                     tuple(ARCHITECTURES[dataset]["image_shape"]), record)


@functools.partial(jax.jit, static_argnames=("module", "value_range"))
def _apply(module: LeNet, variables: dict, images: jax.Array,
           value_range: tuple[float, float]) -> dict[str, jax.Array]:
  return module.apply(variables, prepare(images, value_range))


def outputs(params: LeNetParams, images: np.ndarray, *,
            value_range: tuple[float, float] = (0.0, 1.0),
            chunk_size: int = 500) -> dict[str, np.ndarray]:
  """{"features": [N, 128], "logits": [N, 10]} float32, `chunk_size` images at a time.

  The last chunk is zero-padded, so the network compiles once per chunk size.
  """
  images = np.asarray(images)
  shape = tuple(images.shape[1:])
  h, w, c = params.image_shape
  if shape not in ((h, w, c), (h, w), (h * w,)):
    raise ConfigError(f"LeNet {params.name!r} takes {h}x{w} grey images, got "
                      f"examples of shape {shape}")
  value_range = (float(value_range[0]), float(value_range[1]))
  if not value_range[1] > value_range[0]:
    raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
  parts: dict[str, list[np.ndarray]] = {"features": [], "logits": []}
  for start in range(0, len(images), chunk_size):
    chunk = images[start:start + chunk_size]
    size = len(chunk)
    if size < chunk_size:
      chunk = np.concatenate([chunk, np.zeros((chunk_size - size, *shape), chunk.dtype)])
    out = jax.device_get(_apply(params.module, params.variables, chunk, value_range))
    for k in parts:
      parts[k].append(np.asarray(out[k][:size], np.float32))
  width = {"features": params.module.hidden, "logits": params.module.num_classes}
  return {k: (np.concatenate(v) if v else np.zeros((0, width[k]), np.float32))
          for k, v in parts.items()}


def features(params: LeNetParams, images: np.ndarray, *,
             value_range: tuple[float, float] = (0.0, 1.0),
             chunk_size: int = 500) -> np.ndarray:
  """Penultimate-layer features [N, 128] of images in `value_range`."""
  return outputs(params, images, value_range=value_range,
                 chunk_size=chunk_size)["features"]


def logits(params: LeNetParams, images: np.ndarray, *,
           value_range: tuple[float, float] = (0.0, 1.0),
           chunk_size: int = 500) -> np.ndarray:
  """Class logits [N, 10] of images in `value_range`."""
  return outputs(params, images, value_range=value_range, chunk_size=chunk_size)["logits"]
