"""`jaxgen sample --workdir D --complete FILE`: completion of images from the command line.

Marked slow: the module's fixtures compile and train a tiny PixelCNN and a GMM.
"""

import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen import config as config_lib
from jaxgen import data as data_lib

from tests.families.pixelcnn.test_pixelcnn_training import tiny

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def run_main(capsys, *argv):
  code = cli.main([str(a) for a in argv])
  out, err = capsys.readouterr()
  return code, out, err


@pytest.fixture(scope="module")
def pixelcnn_run(tmp_path_factory):
  """A tiny PixelCNN on binarized digits, saved, and six binarized test digits."""
  workdir = tmp_path_factory.mktemp("pixelcnn") / "run"
  config = tiny(3, final_eval=False)
  jaxgen.fit(config, workdir=workdir)
  x, _ = data_lib.eval_arrays(data_lib.from_config(config.data), "test")
  return workdir, x[:6]


def test_completes_the_bottom_half_and_writes_grid_and_arrays(capsys, pixelcnn_run, tmp_path):
  workdir, x = pixelcnn_run
  np.savez(tmp_path / "digits.npz", x=x)
  out = tmp_path / "out" / "done.png"
  code, stdout, err = run_main(capsys, "sample", "--workdir", workdir, "--complete",
                               tmp_path / "digits.npz", "--out", out, "--seed", 2)
  assert code == 0, err
  assert "6 completions" in stdout
  assert out.read_bytes()[:8] == PNG and out.stat().st_size < 100_000
  with np.load(out.with_suffix(".npz")) as saved:
    completions, mask = saved["completions"], saved["mask"]
    np.testing.assert_array_equal(saved["x"], x)
  assert completions.shape == (6, 8, 8, 1) and set(np.unique(completions)) <= {0.0, 1.0}
  # Default mask: the top half observed and kept, the bottom half drawn.
  assert mask[:, :4].all() and not mask[:, 4:].any()
  np.testing.assert_array_equal(completions[:, :4], x[:, :4])
  # The same call through the Python API gives the same completions.
  again, _ = jaxgen.complete(workdir, x, seed=2)
  np.testing.assert_array_equal(again, completions)


def test_a_mask_without_channels_and_num(capsys, pixelcnn_run, tmp_path):
  workdir, x = pixelcnn_run
  left = np.zeros(x.shape[:-1], np.int64)
  left[:, :, :3] = 1                                      # [N, H, W]: the left 3 columns
  np.savez(tmp_path / "left.npz", x=x, mask=left)
  out = tmp_path / "left.npz.out.npz"
  code, stdout, err = run_main(capsys, "sample", "--workdir", workdir, "--complete",
                               tmp_path / "left.npz", "--num", 2, "--out", out)
  assert code == 0 and "2 completions" in stdout, err
  completions = np.load(out)["completions"]
  assert completions.shape == (2, 8, 8, 1)
  np.testing.assert_array_equal(completions[:, :, :3], x[:2, :, :3])
  assert out.with_suffix(".png").exists()


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("gmm") / "run"
  config = config_lib.get_config("gmm")
  config_lib.apply_overrides(config, [
      "data.num_examples=200", "data.batch_size=40", "model.num_components=2",
      "model.em=stepwise", "train.steps=1", "train.progress=False",
      "train.final_eval=False", "train.num_samples=0"])
  jaxgen.fit(config, workdir=workdir)
  return workdir


def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, pixelcnn_run, gmm_run,
                                                         tmp_path):
  workdir, x = pixelcnn_run
  files = {
      "good": dict(x=x), "nox": dict(images=x), "shape": dict(x=x[:, :6]),
      "grey": dict(x=0.5 * x), "mask": dict(x=x, mask=2 * np.ones_like(x)),
      "maskshape": dict(x=x, mask=np.ones((6, 8))),
  }
  for name, arrays in files.items():
    np.savez(tmp_path / f"{name}.npz", **arrays)
  (tmp_path / "text.npz").write_text("not a zip")
  cases = [
      (workdir, "missing.npz", "does not exist"),
      (workdir, "text.npz", "cannot read completion file"),
      (workdir, "nox.npz", "holds no array 'x'"),
      (workdir, "shape.npz", "must have shape [N, 8, 8, 1]"),
      (workdir, "grey.npz", "is binary: images to complete must be 0 or 1"),
      (workdir, "mask.npz", "mask values must be 1 (observed) or 0"),
      (workdir, "maskshape.npz", "mask must have the images' shape"),
      (gmm_run, "good.npz", "method 'gmm' cannot complete images; methods that can: "
                            "'pixelcnn'"),
  ]
  out = tmp_path / "never" / "c.png"
  for run_dir, name, fragment in cases:
    code, _, err = run_main(capsys, "sample", "--workdir", run_dir, "--complete",
                            tmp_path / name, "--out", out)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, (name, err)
  assert not out.parent.exists()
