"""`jaxgen.project`, `jaxgen.train_encoder`, edits and `jaxgen project` on trained runs.

The runs are tiny (a VAE with an MLP decoder on digits, a Gaussian mixture
on toy2d), trained a few steps in-process; the projection's own oracles are
in tests/core/test_projection.py.
"""

import numpy as np
import pytest

import jaxgen
from jaxgen import cli, projection
from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.metrics import lenet

SMALL_VAE = {"model.hidden": (32,), "model.latent_dim": 2, "data.batch_size": 32,
             "train.progress": False, "train.final_eval": False}
FAST = {"steps": 20, "restarts": 2, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("project") / "vae"
  jaxgen.train("vae", data="digits", workdir=workdir, steps=2, overrides=SMALL_VAE)
  return jaxgen.load(workdir)


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("project") / "gmm"
  jaxgen.train("gmm", data="toy2d:ring8", workdir=workdir, steps=1,
               overrides={"train.progress": False, "train.final_eval": False})
  return workdir


@pytest.fixture(scope="module")
def test_digits():
  x, y = data_lib.eval_arrays(data_lib.from_config(jaxgen.get_config("vae").data), "test")
  return x[:6].astype(np.float32), y[:6]


def test_api_projection_is_deterministic_and_matches_the_decoder(vae_run, test_digits):
  x, _ = test_digits
  z, reconstructions, losses = jaxgen.project(vae_run, x, seed=1, **FAST)
  again = jaxgen.project(vae_run, x, seed=1, **FAST)
  np.testing.assert_array_equal(z, again[0])
  decoded = np.asarray(vae_run.method.decode(vae_run.state, z))
  np.testing.assert_allclose(reconstructions, decoded, atol=1e-5)
  np.testing.assert_allclose(losses["pixel"], ((decoded - x) ** 2).reshape(6, -1).mean(1),
                             rtol=1e-4)
  assert np.all(losses["curve"][-1] <= losses["curve"][0])
  with pytest.raises(ConfigError, match="does not condition on labels"):
    jaxgen.project(vae_run, x, labels=np.zeros(6, int), **FAST)


def test_feature_loss_is_the_digit_lenets(vae_run, test_digits):
  x, _ = test_digits
  _, reconstructions, losses = jaxgen.project(vae_run, x, steps=0, restarts=1,
                                              feature_weight=0.5)
  network = lenet.load("digits")
  value_range = vae_run.spec.value_range
  expected = np.mean((lenet.features(network, reconstructions, value_range=value_range)
                      - lenet.features(network, x, value_range=value_range)) ** 2, axis=-1)
  np.testing.assert_allclose(losses["feature"], expected, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(losses["total"], losses["pixel"] + 0.5 * expected, rtol=1e-4)


def test_encoder_edit_and_direction(vae_run, test_digits):
  x, y = test_digits
  encoder = jaxgen.train_encoder(vae_run, steps=30, batch_size=32, hidden=(32,),
                                 progress=False)
  assert encoder.losses.shape == (30,) and np.all(np.isfinite(encoder.losses))
  assert projection.encode(encoder, x).shape == (6, 2)
  z, _, _ = jaxgen.project(vae_run, x, encoder=encoder, **FAST)
  labels = np.array([0, 0, 1, 1, 2, 2])
  direction = projection.class_direction(z, labels, source=0, target=1)
  np.testing.assert_allclose(direction, z[2:4].mean(0) - z[:2].mean(0), rtol=1e-6)
  edited = projection.edit(vae_run, z, direction, amounts=[0.0, 1.0])
  assert edited.shape == (2, 6, 8, 8, 1)
  np.testing.assert_allclose(edited[0], vae_run.method.decode(vae_run.state, z), atol=1e-6)
  np.testing.assert_allclose(
      edited[1], vae_run.method.decode(vae_run.state, z + direction), atol=1e-6)
  with pytest.raises(ConfigError, match="no code of class 7"):
    projection.class_direction(z, labels, source=7, target=1)
  del y


def test_cli_writes_codes_reconstructions_and_a_grid(capsys, vae_run, test_digits, tmp_path):
  x, y = test_digits
  images = tmp_path / "images.npz"
  # Grey images without the channel axis; labels, unused by an unconditional model.
  np.savez(images, x=x[..., 0], labels=y)
  out = tmp_path / "out" / "proj.npz"
  code = cli.main(["project", "--workdir", str(vae_run.workdir), "--images", str(images),
                   "--out", str(out), "--steps", "20", "--restarts", "2",
                   "--learning-rate", "0.1", "--no-compile-cache"])
  stdout, _ = capsys.readouterr()
  assert code == 0 and "wrote" in stdout
  with np.load(out, allow_pickle=False) as saved:
    assert saved["z"].shape == (6, 2) and saved["reconstructions"].shape == (6, 8, 8, 1)
    z, _, losses = jaxgen.project(vae_run, x, **FAST)
    np.testing.assert_array_equal(saved["z"], z)
    np.testing.assert_array_equal(saved["losses_total"], losses["total"])
  assert out.with_suffix(".png").stat().st_size > 0


def _bad_input(tmp_path, name, **arrays):
  path = tmp_path / name
  np.savez(path, **arrays)
  return path


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"),
    ("shape", "images must have shape [N, 8, 8, 1]"),
    ("nonfinite", "non-finite"),
    ("no_x", "holds no array 'x'"),
    ("no_generator", "has no generator to project onto"),
    ("options", "projection restarts must be"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(capsys, vae_run, gmm_run, tmp_path,
                                                      case, message):
  x = np.full((3, 8, 8, 1), 0.5, np.float32)
  workdir = vae_run.workdir
  extra = []
  if case == "missing":
    images = tmp_path / "absent.npz"
  elif case == "shape":
    images = _bad_input(tmp_path, "a.npz", x=np.zeros((3, 7, 7, 1)))
  elif case == "nonfinite":
    x[1, 2, 3] = np.nan
    images = _bad_input(tmp_path, "a.npz", x=x)
  elif case == "no_x":
    images = _bad_input(tmp_path, "a.npz", images=x)
  elif case == "no_generator":
    images, workdir = _bad_input(tmp_path, "a.npz", x=np.zeros((3, 2))), gmm_run
  else:
    images, extra = _bad_input(tmp_path, "a.npz", x=x), ["--restarts", "0"]
  out = tmp_path / "out" / "p.npz"
  code = cli.main(["project", "--workdir", str(workdir), "--images", str(images),
                   "--out", str(out), "--no-compile-cache", *extra])
  _, err = capsys.readouterr()
  assert code == 2 and message in err, err
  assert len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / "out").exists()
