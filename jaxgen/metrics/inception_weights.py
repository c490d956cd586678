"""Weights of the FID Inception: pytorch-fid's `.pth` file -> `jaxgen.nn.inception` variables.

The standard file is pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the
2015-12-05 TF graph's weights as a PyTorch state dict); jaxgen cannot download it
— the user gives its path. Reading a `.pth` needs PyTorch (an optional
dependency, loaded with `weights_only=True`, which unpickles tensors only); the
converted variables can be exported to `.npz` and read back without PyTorch:

    python -m jaxgen.metrics.inception_weights pt_inception-2015-12-05-6726825d.pth inception.npz

Every tensor's name and shape is checked against the Flax module; the file's
SHA-256 is returned so a metric can record which weights produced it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError
from jaxgen.nn import inception

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILENAME)
ENV_VAR = "JAXGEN_INCEPTION_WEIGHTS"
# torch.hub's convention, which pytorch-fid's file name follows: "-<sha256 prefix>." .
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")
_NPZ_FORMAT = "jaxgen-inception-v1"
# Flax leaf -> (torch suffix, how the tensor is laid out in torch).
_TORCH_LEAF = {
    ("params", "kernel"): "weight",
    ("params", "scale"): "weight",
    ("params", "bias"): "bias",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


class InceptionWeights(NamedTuple):
  """Converted weights: variables for `jaxgen.nn.inception`, and where they came from.

  sha256 identifies the weights: the `.pth` file's SHA-256 (for an `.npz`, the hash
  of the `.pth` it was converted from). file_sha256 is the hash of the file read.
  """

  variables: dict
  sha256: str
  file_sha256: str
  path: str


def _torch_to_flax_layout(array: np.ndarray) -> np.ndarray:
  if array.ndim == 4:  # conv [out, in, kh, kw] -> [kh, kw, in, out]
    return array.transpose(2, 3, 1, 0)
  if array.ndim == 2:  # linear [out, in] -> [in, out]
    return array.T
  return array


def _flax_to_torch_layout(array: np.ndarray) -> np.ndarray:
  if array.ndim == 4:
    return array.transpose(3, 2, 0, 1)
  if array.ndim == 2:
    return array.T
  return array


@functools.cache
def _torch_names() -> list[tuple[str, tuple, tuple[int, ...]]]:
  """(torch key, flax path, torch shape) for every variable."""
  names = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(inception.variable_shapes())[0]:
    keys = tuple(entry.key for entry in path)
    suffix = _TORCH_LEAF[(keys[0], keys[-1])]
    shape = tuple(leaf.shape)
    torch_shape = tuple(_flax_to_torch_layout(np.empty(shape, np.bool_)).shape)
    names.append((".".join(keys[1:-1] + (suffix,)), keys, torch_shape))
  return names


def _set_path(tree: dict, keys: tuple, value) -> None:
  for key in keys[:-1]:
    tree = tree.setdefault(key, {})
  tree[keys[-1]] = value


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray]) -> dict:
  """pytorch-fid's state dict (name -> array, torch layout) -> Flax variables.

  Raises:
    ConfigError: one line naming the first tensor (in the file's order) that is
      unexpected or has the wrong shape, else the first missing one. BatchNorm's
      num_batches_tracked counters are ignored.
  """
  expected = {torch_key: (keys, shape) for torch_key, keys, shape in _torch_names()}
  for key, array in state_dict.items():
    if key.endswith(".num_batches_tracked"):
      continue
    if key not in expected:
      raise ConfigError(f"Inception weights: unexpected tensor {key!r}; is this pytorch-fid's "
                        f"{WEIGHTS_FILENAME}?")
    shape = tuple(np.shape(array))
    if shape != expected[key][1]:
      raise ConfigError(f"Inception weights: tensor {key!r} has shape {shape}, the FID "
                        f"Inception needs {expected[key][1]}")
  variables = {}
  for torch_key, (keys, torch_shape) in expected.items():
    if torch_key not in state_dict:
      raise ConfigError(f"Inception weights: missing tensor {torch_key!r} (shape "
                        f"{torch_shape}); is this pytorch-fid's {WEIGHTS_FILENAME}?")
    array = np.asarray(state_dict[torch_key], np.float32)
    _set_path(variables, keys, jnp.asarray(_torch_to_flax_layout(array)))
  return variables


def variables_to_state_dict(variables: Mapping) -> dict[str, np.ndarray]:
  """Flax variables -> a state dict with pytorch-fid's names and torch layouts (NumPy)."""
  state_dict = {}
  for torch_key, keys, _ in _torch_names():
    leaf = variables
    for key in keys:
      leaf = leaf[key]
    state_dict[torch_key] = np.array(_flax_to_torch_layout(np.asarray(leaf)), order="C")
  return state_dict


def file_sha256(path: str | os.PathLike) -> str:
  """The SHA-256 of a file's bytes, hex."""
  digest = hashlib.sha256()
  with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def resolve_weights_path(path: str | os.PathLike | None = None) -> Path:
  """The weights file: `path` if given, else $JAXGEN_INCEPTION_WEIGHTS.

  Raises:
    ConfigError: one line naming the file to download and where, when neither is
      set or the file does not exist.
  """
  where = (f"download pytorch-fid's {WEIGHTS_FILENAME} from {WEIGHTS_URL} and pass its path "
           f"(metrics.inception_weights=PATH or ${ENV_VAR})")
  if path is None or str(path) == "":
    path = os.environ.get(ENV_VAR) or None
  if path is None:
    raise ConfigError(f"Inception metrics need the FID Inception weights; {where}")
  path = Path(path).expanduser()
  if not path.is_file():
    raise ConfigError(f"Inception weights file {str(path)!r} does not exist; {where}")
  return path


def _read_pth(path: Path) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError(
        f"reading {path.name} needs PyTorch: pip install torch (CPU build is enough), or convert "
        f"it where torch is installed with `python -m jaxgen.metrics.inception_weights "
        f"{path.name} inception.npz` and pass the .npz") from None
  try:
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as error:  # pylint: disable=broad-except
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise ConfigError(f"cannot read Inception weights {str(path)!r} as a PyTorch state dict: "
                      f"{message}") from None
  if not isinstance(state_dict, Mapping):
    raise ConfigError(f"Inception weights {str(path)!r} hold a {type(state_dict).__name__}, "
                      f"not a state dict")
  return {key: value.detach().cpu().numpy() for key, value in state_dict.items()}


def _check_hash_in_name(path: Path, sha256: str) -> None:
  match = _HASH_IN_NAME.search(path.name)
  if match and not sha256.startswith(match.group(1)):
    warnings.warn(f"Inception weights {path.name}: its name says SHA-256 {match.group(1)}…, the "
                  f"content's is {sha256[:len(match.group(1))]}… — a damaged or different file; "
                  f"metrics will not match published ones", RuntimeWarning, stacklevel=3)


def load_inception_weights(path: str | os.PathLike | None = None) -> InceptionWeights:
  """Loads pytorch-fid's `.pth` (needs torch) or a jaxgen `.npz` export, checked.

  Args:
    path: the file; None reads $JAXGEN_INCEPTION_WEIGHTS.

  Warns (RuntimeWarning) when a `.pth` name carries a hash prefix, as pytorch-fid's
  `...-6726825d.pth` does, that the content's SHA-256 does not start with.
  """
  path = resolve_weights_path(path)
  digest = file_sha256(path)
  if path.suffix == ".npz":
    variables, source_sha256 = _read_npz(path)
    return InceptionWeights(variables, source_sha256, digest, str(path))
  _check_hash_in_name(path, digest)
  variables = state_dict_to_variables(_read_pth(path))
  return InceptionWeights(variables, digest, digest, str(path))


def save_npz(path: str | os.PathLike, weights: InceptionWeights) -> None:
  """Writes converted weights (torch names and layouts) and their source hash to `.npz`."""
  arrays = variables_to_state_dict(weights.variables)
  np.savez(path, __format__=np.array(_NPZ_FORMAT), __sha256__=np.array(weights.sha256),
           **arrays)


def _read_npz(path: Path) -> tuple[dict, str]:
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {key: data[key] for key in data.files}
  except (OSError, ValueError) as error:
    raise ConfigError(f"cannot read Inception weights {str(path)!r} as .npz: {error}") from None
  if str(arrays.pop("__format__", "")) != _NPZ_FORMAT:
    raise ConfigError(f"{str(path)!r} is not a jaxgen Inception export ({_NPZ_FORMAT}); write one "
                      f"with `python -m jaxgen.metrics.inception_weights IN.pth OUT.npz`")
  source_sha256 = str(arrays.pop("__sha256__"))
  return state_dict_to_variables(arrays), source_sha256


def main(argv: list[str] | None = None) -> int:
  """`python -m jaxgen.metrics.inception_weights IN.pth OUT.npz`: convert for torch-free use."""
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) != 2:
    print("usage: python -m jaxgen.metrics.inception_weights IN.pth OUT.npz", file=sys.stderr)
    return 2
  try:
    weights = load_inception_weights(argv[0])
    save_npz(argv[1], weights)
  except ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    return error.exit_code
  print(f"wrote {argv[1]} (weights sha256 {weights.sha256})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
