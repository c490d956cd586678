"""Dataset names: what `name` may be, and which loader reads it."""

from __future__ import annotations

from collections.abc import Callable

from jaxgen.data import _files, _tfds, _toy2d
from jaxgen.data._options import DataOptions
from jaxgen.data._splits import RawData
from jaxgen.errors import DataError, choices

# Sources named by a prefix and an argument: 'tfds:mnist', 'idx:/data/mnist'.
_PREFIXED: dict[str, tuple[str, Callable[[str, DataOptions], RawData]]] = {
    "tfds": ("<name>", _tfds.load),
    "idx": ("<path>", _files.load_idx),
    "npz": ("<file.npz>", _files.load_npz),
    "images": ("<dir>", _files.load_images),
}

_DESCRIPTIONS = {
    "digits": "scikit-learn digits: 1,797 8x8 grey images, 17 levels, 10 classes "
              "(embedded; fixed stratified 80/20 split)",
    **{f"toy2d:{kind}": text for kind, text in _toy2d.KINDS.items()},
    "tfds:<name>": "a tensorflow-datasets image dataset prepared as array_record "
                   "(e.g. tfds:mnist, tfds:cifar10, tfds:celeb_a) under data_dir",
    "idx:<path>": "MNIST-format IDX files (gzip or raw): a folder with "
                  "*images*idx3* (+ *labels*idx1*) files, or one images file",
    "npz:<file.npz>": "numpy arrays x|images (+ y|labels), or x_train/x_test "
                      "(+ y_train/y_test); NHWC images or [N, D] vectors",
    "images:<dir>": "a folder of PNG/JPEG images; subfolders are classes",
}


def list_datasets() -> dict[str, str]:
  """Dataset name or pattern -> one-line description (for `jaxgen list`)."""
  return dict(_DESCRIPTIONS)


def load_raw(options: DataOptions) -> RawData:
  """Reads the raw splits of options.name; unknown names raise DataError."""
  name = options.name
  if name == "digits":
    return _files.load_digits(options)
  prefix, _, argument = name.partition(":")
  if prefix == "toy2d" and argument in _toy2d.KINDS:
    return _toy2d.load(argument, options)
  if prefix in _PREFIXED and argument:
    return _PREFIXED[prefix][1](argument, options)
  if prefix in _PREFIXED:
    raise DataError(f"dataset {name!r} needs an argument: "
                    f"{prefix}:{_PREFIXED[prefix][0]}")
  raise DataError(f"unknown dataset {name!r}; choose {choices(list(_DESCRIPTIONS))}")
