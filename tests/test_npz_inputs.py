"""Image files given to `jaxgen sample` (`--source` for pix2pix, `--low-res` for
srgan): read by the shared safe reader (jaxgen/_npz.py), never unpickled, each
error one line naming the file by its role; through the CLI, exit status 2 and
nothing written."""

import pathlib

import numpy as np
import pytest

from jaxgen import api
from jaxgen import cli
from jaxgen.errors import ConfigError

# (CLI flag, reader, the file's name in errors, the array it reads)
READERS = [("--source", api.read_source_file, "source file", "source"),
           ("--low-res", api.read_low_res_file, "low-res file", "x")]


class _Trap:
  """Unpickling this touches `marker`: a file that must never appear."""

  def __init__(self, marker: pathlib.Path):
    self.marker = marker

  def __reduce__(self):
    return (pathlib.Path.touch, (self.marker,))


def _bad_files(folder: pathlib.Path, key: str) -> list[tuple[pathlib.Path, str]]:
  """(file, what its one-line error says) for each kind of bad file."""
  cases = {
      "missing.npz": "does not exist",
      "nokey.npz": f"holds no array {key!r}",
      "flat.npz": "must be images [N, H, W(, C)] with N >= 1, got shape [4, 16]",
      "empty.npz": "with N >= 1, got shape [0, 4, 4, 1]",
      "text.npz": "must hold numbers, got dtype <U1",
      "nan.npz": "holds 1 non-finite value(s)",
      "pickled.npz": "as .npz arrays: Object arrays cannot be loaded",
      "garbage.npz": "as .npz arrays",
  }
  np.savez(folder / "nokey.npz", labels=np.zeros(3))
  np.savez(folder / "flat.npz", **{key: np.zeros((4, 16), np.float32)})
  np.savez(folder / "empty.npz", **{key: np.zeros((0, 4, 4, 1), np.float32)})
  np.savez(folder / "text.npz", **{key: np.array([["a", "b"]] * 4)[..., None, None]})
  nan = np.zeros((2, 4, 4, 1), np.float32)
  nan[1, 2, 3, 0] = np.nan
  np.savez(folder / "nan.npz", **{key: nan})
  np.savez(folder / "pickled.npz",
           **{key: np.array([_Trap(folder / "unpickled")], dtype=object)})
  (folder / "garbage.npz").write_text("not a zip file")
  return [(folder / name, fragment) for name, fragment in cases.items()]


@pytest.mark.parametrize("flag,read,name,key", READERS)
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, flag, read, name, key):
  del flag
  for path, fragment in _bad_files(tmp_path, key):
    with pytest.raises(ConfigError) as error:
      read(path)
    message = str(error.value)
    assert fragment in message and message.count("\n") == 0, (path.name, message)
    assert f"{name} {str(path)!r}" in message, message
  assert not (tmp_path / "unpickled").exists()   # the object array was never unpickled


@pytest.mark.parametrize("flag,read,name,key", READERS)
def test_good_files_give_float32_images(tmp_path, flag, read, name, key):
  del flag, name
  grey = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
  np.savez(tmp_path / "grey.npz", **{key: grey})
  images = read(tmp_path / "grey.npz")
  assert images.dtype == np.float32 and images.shape == (2, 4, 4, 1)
  np.testing.assert_array_equal(images[..., 0], grey)
  rgb = np.random.default_rng(0).uniform(-1, 1, size=(3, 4, 4, 3))
  np.savez(tmp_path / "rgb.npz", **{key: rgb})
  np.testing.assert_array_equal(read(tmp_path / "rgb.npz"), rgb.astype(np.float32))


def test_source_file_falls_back_to_x_and_prefers_source(tmp_path):
  np.savez(tmp_path / "x.npz", x=np.ones((1, 2, 2, 1)))
  np.testing.assert_array_equal(api.read_source_file(tmp_path / "x.npz"), 1.0)
  np.savez(tmp_path / "both.npz", x=np.ones((1, 2, 2, 1)), source=np.zeros((1, 2, 2, 1)))
  np.testing.assert_array_equal(api.read_source_file(tmp_path / "both.npz"), 0.0)


@pytest.mark.parametrize("flag,read,name,key", READERS)
def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, flag, read, name,
                                                      key):
  del read
  files = tmp_path / "files"
  files.mkdir()
  workdir = tmp_path / "run"
  workdir.mkdir()
  out = tmp_path / "never" / "samples.png"
  for path, fragment in _bad_files(files, key):
    code = cli.main(["sample", "--workdir", str(workdir), flag, str(path),
                     "--out", str(out)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (path.name, err)
    assert lines[0].startswith("jaxgen: error: ") and fragment in lines[0], err
    assert f"{name} {str(path)!r}" in lines[0], err
    assert "completion file" not in err
  assert not (files / "unpickled").exists()
  assert not out.parent.exists() and not list(workdir.iterdir())
  code = cli.main(["sample", "--workdir", str(workdir), flag, str(files / "nan.npz"),
                   "--num", "0", "--out", str(out)])
  assert code == 2 and "--num must be at least 1, got 0" in capsys.readouterr().err
