"""User-given .npz files (images to complete, to project, ...), read safely."""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from jaxgen.errors import ConfigError


def read(path: str | pathlib.Path, what: str) -> dict[str, np.ndarray]:
  """Every array of the .npz file at `path`; nothing is unpickled.

  One-line ConfigErrors, naming the file as `what` (e.g. "images file"), for a
  missing file and one that is not .npz arrays.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ConfigError(f"{what} {str(path)!r} does not exist")
  try:
    with np.load(path, allow_pickle=False) as arrays:
      return {name: np.asarray(arrays[name]) for name in arrays.files}
  except (OSError, ValueError, zipfile.BadZipFile) as error:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise ConfigError(f"cannot read {what} {str(path)!r} as .npz arrays: {first}"
                      ) from None
