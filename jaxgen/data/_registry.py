"""Dataset names: what `name` may be, and which loader reads it."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

from jaxgen.data import _files, _seq1d, _tfds, _toy2d
from jaxgen.data._options import DataOptions
from jaxgen.data._splits import RawData
from jaxgen.errors import DataError, choices

# Sources named by a prefix and an argument: 'tfds:mnist', 'idx:/data/mnist'.
_PREFIXED: dict[str, tuple[str, Callable[[str, DataOptions], RawData]]] = {
    "tfds": ("<name>", _tfds.load),
    "idx": ("<path>", _files.load_idx),
    "npz": ("<file.npz>", _files.load_npz),
    "images": ("<dir>", _files.load_images),
    "pairs": ("<source_dir>,<target_dir>", _files.load_pairs),
}

_DESCRIPTIONS = {
    "digits": "scikit-learn digits: 1,797 8x8 grey images, 17 levels, 10 classes "
              "(embedded; fixed stratified 80/20 split)",
    **{f"toy2d:{kind}": text for kind, text in _toy2d.KINDS.items()},
    **{f"seq1d:{kind}": text for kind, text in _seq1d.KINDS.items()},
    "tfds:<name>": "a tensorflow-datasets image dataset prepared as array_record "
                   "(e.g. tfds:mnist, tfds:cifar10, tfds:celeb_a) under data_dir",
    "idx:<path>": "MNIST-format IDX files (gzip or raw): a folder with "
                  "*images*idx3* (+ *labels*idx1*) files, or one images file",
    "npz:<file.npz>": "numpy arrays x|images (+ y|labels), or x_train/x_test "
                      "(+ y_train/y_test); NHWC images or [N, D] vectors; with a "
                   "'sample_rate' entry, signals [N, T] or [N, T, C]; paired "
                   "images: a 'source' array (source_train/source_test) beside x",
    "images:<dir>": "a folder of PNG/JPEG images; subfolders are classes",
    "pairs:<source_dir>,<target_dir>": "paired PNG/JPEG images for image-to-image "
                                       "translation, matched by file name; the target "
                                       "is x, the other batch['source']",
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
  if prefix == "seq1d" and argument in _seq1d.KINDS:
    return _seq1d.load(argument, options)
  if prefix in _PREFIXED and argument:
    return _PREFIXED[prefix][1](argument, options)
  if prefix in _PREFIXED:
    raise DataError(f"dataset {name!r} needs an argument: "
                    f"{prefix}:{_PREFIXED[prefix][0]}")
  raise DataError(f"unknown dataset {name!r}; choose {choices(list(_DESCRIPTIONS))}")


# Sources whose argument is a path on this machine.
FILE_PREFIXES = ("idx", "npz", "images")


def source_record(name: str, workdir: str | pathlib.Path) -> dict[str, Any] | None:
  """Where a file dataset of a run lives, for `relocate`; None for other sources.

  {"typed": name as given, "absolute": the name with its path resolved,
   "origin": the working directory at training, "workdir": the run's folder}.
  """
  prefix, _, argument = name.partition(":")
  if prefix not in FILE_PREFIXES or not argument:
    return None
  path = pathlib.Path(argument).expanduser()
  return {"typed": name, "absolute": f"{prefix}:{path.resolve()}",
          "origin": str(pathlib.Path.cwd().resolve()),
          "workdir": str(pathlib.Path(workdir).resolve())}


def relocate(name: str, record: dict[str, Any] | None,
             workdir: str | pathlib.Path) -> str:
  """The dataset name that finds a run's file data from here.

  The absolute path recorded at training when it still exists; else, when
  the run's folder has moved (a project copied elsewhere), the typed relative
  path taken from where the working directory at training now is relative to
  the run's folder; else `name` unchanged (its loader then says what is missing).
  """
  if not record or record.get("typed") != name:
    return name
  prefix, _, absolute = record["absolute"].partition(":")
  if pathlib.Path(absolute).exists():
    return record["absolute"]
  typed = pathlib.Path(name.partition(":")[2]).expanduser()
  if typed.is_absolute():
    return name
  origin_from_workdir = os.path.relpath(record["origin"], record["workdir"])
  origin = pathlib.Path(workdir).resolve() / origin_from_workdir
  moved = pathlib.Path(os.path.normpath(origin / typed))
  return f"{prefix}:{moved}" if moved.exists() else name
