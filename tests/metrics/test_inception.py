"""The FID Inception port without pytorch-fid: structure, weight files, errors, shapes.

Parity with pytorch-fid itself is in test_inception_parity.py (needs the `parity` extra).
"""

import hashlib
import sys
import warnings

import jax
import numpy as np
import pytest

from jaxgen import metrics
from jaxgen.errors import ConfigError
from jaxgen.metrics import inception_weights
from jaxgen.nn import inception

# torchvision's inception_v3 (27,161,264 parameters with its aux head and 1000
# classes) less the aux head (3,326,696) plus 8 more classes (8 × 2048 + 8).
FID_INCEPTION_PARAMETERS = 27_161_264 - 3_326_696 + 8 * 2048 + 8


@pytest.fixture(scope="module")
def variables():
  return inception.random_variables(0)


@pytest.fixture(scope="module")
def state_dict(variables):
  return inception_weights.variables_to_state_dict(variables)


def test_parameter_count_and_names_match_torchvision(state_dict):
  trainable = [k for k in state_dict if not k.endswith(("running_mean", "running_var"))]
  assert sum(state_dict[k].size for k in trainable) == FID_INCEPTION_PARAMETERS
  # 94 conv + BatchNorm layers (conv weight, bn weight/bias/running mean/var) and fc.
  assert len(state_dict) == 94 * 5 + 2
  assert state_dict["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  assert state_dict["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
  assert state_dict["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
  assert state_dict["fc.weight"].shape == (1008, 2048)


def test_state_dict_round_trip_is_exact(variables, state_dict):
  again = inception_weights.state_dict_to_variables(state_dict)
  assert jax.tree.structure(again) == jax.tree.structure(variables)
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(variables)):
    np.testing.assert_array_equal(a, b)


def test_npz_round_trip_keeps_arrays_and_source_hash(variables, tmp_path):
  source = inception_weights.InceptionWeights(variables, "ab" * 32, "ab" * 32, "x.pth")
  path = tmp_path / "inception.npz"
  inception_weights.save_npz(path, source)
  loaded = metrics.load_inception_weights(path)
  assert loaded.sha256 == "ab" * 32
  assert loaded.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
  for a, b in zip(jax.tree.leaves(loaded.variables), jax.tree.leaves(variables)):
    np.testing.assert_array_equal(a, b)


def test_convert_command_writes_a_loadable_npz(variables, tmp_path, capsys):
  source = tmp_path / "in.npz"
  inception_weights.save_npz(source, inception_weights.InceptionWeights(variables, "cd" * 32,
                                                                        "", ""))
  assert inception_weights.main([str(source), str(tmp_path / "out.npz")]) == 0
  assert metrics.load_inception_weights(tmp_path / "out.npz").sha256 == "cd" * 32
  assert inception_weights.main([str(tmp_path / "missing.pth"), str(tmp_path / "o.npz")]) == 2
  assert "does not exist" in capsys.readouterr().err


def test_wrong_shape_names_the_first_bad_tensor(state_dict):
  bad = dict(state_dict)
  bad["Mixed_6c.branch7x7_2.conv.weight"] = np.zeros((160, 160, 7, 1), np.float32)
  bad["fc.weight"] = np.zeros((1000, 2048), np.float32)  # later in the file: not named
  with pytest.raises(ConfigError, match=r"'Mixed_6c.branch7x7_2.conv.weight' has shape "
                     r"\(160, 160, 7, 1\), the FID Inception needs \(160, 160, 1, 7\)$"):
    inception_weights.state_dict_to_variables(bad)


def test_missing_and_unexpected_tensors_are_named(state_dict):
  missing = dict(state_dict)
  del missing["Mixed_5b.branch_pool.bn.running_var"]
  with pytest.raises(ConfigError, match="missing tensor 'Mixed_5b.branch_pool.bn.running_var'"):
    inception_weights.state_dict_to_variables(missing)
  extra = dict(state_dict)
  extra["AuxLogits.conv0.conv.weight"] = np.zeros((128, 768, 1, 1), np.float32)
  with pytest.raises(ConfigError, match="unexpected tensor 'AuxLogits.conv0.conv.weight'"):
    inception_weights.state_dict_to_variables(extra)
  # BatchNorm's step counter (in files saved by newer torch) is not a weight.
  counted = dict(state_dict, **{"Conv2d_1a_3x3.bn.num_batches_tracked": np.array(0)})
  inception_weights.state_dict_to_variables(counted)


def test_missing_file_names_the_download(tmp_path, monkeypatch):
  monkeypatch.delenv(inception_weights.ENV_VAR, raising=False)
  with pytest.raises(ConfigError) as error:
    metrics.load_inception_weights(None)
  message = str(error.value)
  assert "\n" not in message
  assert "pt_inception-2015-12-05-6726825d.pth" in message
  assert "github.com/mseitzer/pytorch-fid/releases" in message
  assert "JAXGEN_INCEPTION_WEIGHTS" in message and "metrics.inception_weights" in message
  monkeypatch.setenv(inception_weights.ENV_VAR, str(tmp_path / "absent.pth"))
  with pytest.raises(ConfigError, match=r"absent.pth' does not exist; download pytorch-fid"):
    metrics.load_inception_weights()


def test_environment_variable_gives_the_path(variables, tmp_path, monkeypatch):
  path = tmp_path / "inception.npz"
  inception_weights.save_npz(path, inception_weights.InceptionWeights(variables, "ef" * 32, "",
                                                                      ""))
  monkeypatch.setenv(inception_weights.ENV_VAR, str(path))
  assert metrics.resolve_weights_path() == path
  assert metrics.load_inception_weights().path == str(path)


def test_pth_without_torch_says_how_to_install(tmp_path, monkeypatch):
  path = tmp_path / "weights.pth"
  path.write_bytes(b"not read")
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
  with pytest.raises(ConfigError, match=r"needs PyTorch: pip install torch.*\.npz"):
    metrics.load_inception_weights(path)


def test_not_an_npz_export_is_refused(tmp_path):
  path = tmp_path / "other.npz"
  np.savez(path, weights=np.zeros(3))
  with pytest.raises(ConfigError, match="not a jaxgen Inception export"):
    metrics.load_inception_weights(path)


def test_pth_loads_and_a_hash_in_the_name_is_checked(state_dict, tmp_path):
  torch = pytest.importorskip("torch")
  tensors = {k: torch.from_numpy(v) for k, v in state_dict.items()}
  plain = tmp_path / "random.pth"
  torch.save(tensors, plain)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    loaded = metrics.load_inception_weights(plain)
  assert loaded.sha256 == loaded.file_sha256 == hashlib.sha256(plain.read_bytes()).hexdigest()
  np.testing.assert_array_equal(loaded.variables["params"]["fc"]["kernel"],
                                state_dict["fc.weight"].T)
  # pytorch-fid's name carries the SHA-256 prefix of the real file; this one differs.
  named = tmp_path / inception_weights.WEIGHTS_FILENAME
  named.write_bytes(plain.read_bytes())
  with pytest.warns(RuntimeWarning, match="its name says SHA-256 6726825d"):
    metrics.load_inception_weights(named)
  corrupt = tmp_path / "corrupt.pth"
  corrupt.write_bytes(b"not a pickle")
  with pytest.raises(ConfigError, match="cannot read Inception weights"):
    metrics.load_inception_weights(corrupt)


@pytest.mark.slow  # compiles the network twice: ~15 s on 2 busy cores
def test_output_shapes_chunks_grey_and_value_range(variables):
  """At 75×75 without resizing (the smallest size the network takes)."""
  rng = np.random.default_rng(0)
  grey = rng.uniform(size=(3, 75, 75, 1)).astype(np.float32)
  out = metrics.inception_features(variables, grey, resize=False, chunk_size=2)
  assert out["pool3"].shape == (3, 2048) and out["logits"].shape == (3, 1008)
  assert out["pool3"].dtype == np.float32
  assert np.all(out["pool3"] >= 0)  # the mean of ReLU outputs
  assert np.std(out["pool3"]) > 0
  # The padded last chunk does not leak: one chunk of 3 gives the same rows.
  whole = metrics.inception_features(variables, np.repeat(grey, 3, -1), resize=False,
                                     chunk_size=3)
  np.testing.assert_allclose(whole["pool3"], out["pool3"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(whole["logits"], out["logits"], rtol=1e-5, atol=1e-5)
  pixels = np.round(grey[:, :, :, 0] * 255).astype(np.uint8)  # [N, H, W] uint8
  as_bytes = metrics.inception_features(variables, pixels, resize=False, chunk_size=3,
                                        value_range=(0, 255))
  as_floats = metrics.inception_features(variables, pixels / 255, resize=False, chunk_size=3)
  np.testing.assert_allclose(as_bytes["pool3"], as_floats["pool3"], rtol=1e-5, atol=1e-6)


def test_bad_images_are_refused(variables):
  with pytest.raises(ValueError, match=r"\[N, H, W, C\] with C = 1 or 3"):
    metrics.inception_features(variables, np.zeros((2, 75, 75, 4)))
  with pytest.raises(ValueError, match="value_range"):
    metrics.inception_features(variables, np.zeros((2, 75, 75, 3)), value_range=(1, 1))
