"""jaxgen's Inception port against RECORDED pytorch-fid outputs: the parity check CI runs.

`data/inception_reference.npz` holds what pytorch-fid's FID Inception computed
(`make_inception_reference.py`, run by hand with the `parity` extra) for weights
drawn from NumPy with a fixed seed (plus stored BatchNorm statistics) on fixed
random and digit images at the live test's sizes. Here, without torch, the same
weights are regenerated and checked against the recorded SHA-256, written as the
converted `.npz` a user would pass, read back by `load_inception_weights`, and
jaxgen's features, logits and FID must match the recording (issue #13's
tolerances: 1e-4 relative for features and logits, 1e-6 for the FID).

The live comparison with pytorch-fid itself is test_inception_parity.py.
"""

import warnings

import jax
import numpy as np
import pytest

from jaxgen import metrics
from jaxgen.metrics import inception_weights
from jaxgen.nn import inception

from tests.metrics import make_inception_reference as reference_lib

pytestmark = pytest.mark.slow  # the Inception at 299×299, compiled twice (299 and 75)

TOLERANCE = 1e-4
FID_TOLERANCE = 1e-6


def _relative_difference(actual, expected):
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="module")
def reference():
  return reference_lib.load()


@pytest.fixture(scope="module")
def weights(reference, tmp_path_factory):
  """The recorded weights, regenerated, saved as a converted .npz and loaded back."""
  state_dict = reference_lib.recorded_state_dict(reference)
  sha256 = reference_lib.tensors_sha256(state_dict)
  path = tmp_path_factory.mktemp("weights") / "inception-reference.npz"
  variables = inception_weights.state_dict_to_variables(state_dict)
  inception_weights.save_npz(path, inception_weights.InceptionWeights(variables, sha256, "", ""))
  del variables, state_dict
  return sha256, metrics.load_inception_weights(path)


@pytest.fixture(scope="module")
def inputs(reference):
  return reference_lib.inputs(int(reference["inputs_seed"]))


@pytest.fixture(scope="module")
def features(reference, weights, inputs):
  """{case: jaxgen's {"pool3", "logits"}}, in the recording's case order."""
  loaded = weights[1]
  per_kind = int(reference["per_kind"])
  return {case: metrics.inception_features(loaded.variables, images, chunk_size=per_kind,
                                           **options)
          for case, (images, options) in inputs.items()}


def test_weights_and_inputs_are_the_recorded_ones(reference, weights, inputs):
  """The seeds regenerate the same arrays (a NumPy stream change would show here)."""
  tensors = reference_lib.numpy_tensors(int(reference["weights_seed"]))
  assert reference_lib.tensors_sha256(tensors) == str(reference["numpy_tensors_sha256"]), (
      "NumPy draws other weights from the seed than when the reference was recorded; "
      "regenerate it (tests/metrics/make_inception_reference.py)")
  sha256, loaded = weights
  assert sha256 == str(reference["weights_sha256"])
  assert loaded.sha256 == sha256                          # the .npz carries the source hash
  assert reference_lib.inputs_sha256(inputs) == str(reference["inputs_sha256"])
  assert list(inputs) == [str(c) for c in reference["cases"]]
  assert tuple(reference["sizes"]) == reference_lib.SIZES
  # Every tensor was drawn: no placeholder left (a scale of 0 or a constant tensor).
  assert all(np.std(v) > 0 for k, v in tensors.items() if v.size > 1), "constant tensor"


def test_the_recorded_network_is_not_degenerate(reference):
  pool3, logits = reference["pool3"], reference["logits"]
  assert np.all(np.isfinite(pool3)) and np.all(np.isfinite(logits))
  # O(1) activations after ~90 layers: neither vanished nor exploded.
  assert 0.01 < float(np.mean(pool3)) < 100, np.mean(pool3)
  assert np.all(np.std(pool3, axis=-1) > 0.01) and np.all(np.std(logits, axis=-1) > 0.1)
  # The cases differ from each other (the inputs reach the features).
  flat = pool3.reshape(-1, pool3.shape[-1])
  assert len(np.unique(flat, axis=0)) == len(flat)
  assert float(np.max(np.ptp(flat, axis=0))) > 0.01


@pytest.mark.parametrize("output", ["pool3", "logits"])
def test_features_match_recorded_pytorch_fid(reference, features, output):
  recorded = dict(zip((str(c) for c in reference["cases"]), reference[output]))
  differences = {case: _relative_difference(ours[output], recorded[case])
                 for case, ours in features.items()}
  print(f"{output}: max relative differences {differences}")
  for case, ours in features.items():
    assert ours[output].shape == recorded[case].shape, case
  assert max(differences.values()) < TOLERANCE, differences


def test_fid_matches_recorded_pytorch_fid(reference, features):
  """jaxgen's FID on pytorch-fid's recorded features equals pytorch-fid's to 1e-6.

  End to end (jaxgen's FID of jaxgen's features) the features' float32 differences
  (up to ~5e-5 relative, see docs/metrics.md) move the FID by ~2e-6: 1e-4 there.
  """
  recorded = dict(zip((str(c) for c in reference["cases"]), reference["pool3"]))
  theirs = reference_lib.fid_sets(recorded)
  ours = reference_lib.fid_sets({case: out["pool3"] for case, out in features.items()})
  for dims, expected in zip(reference["fid_dims"], reference["fid_pytorch_fid"]):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      on_recorded = metrics.fid_from_features(*(s[:, :dims] for s in theirs))
      end_to_end = metrics.fid_from_features(*(s[:, :dims] for s in ours))
    print(f"FID({dims} dims): pytorch-fid {expected!r}, jaxgen on the same features "
          f"{on_recorded!r}, end to end {end_to_end!r}")
    assert expected > 0
    assert abs(on_recorded - expected) <= FID_TOLERANCE * expected, (dims, on_recorded)
    assert abs(end_to_end - expected) <= TOLERANCE * expected, (dims, end_to_end)


def test_the_recorded_comparison_catches_a_fid_specific_detail(reference, weights, inputs,
                                                              monkeypatch):
  """With torchvision's padded average pools instead of pytorch-fid's (TF's), the
  same comparison fails by far (at 75×75 without resizing: a cheap compile)."""
  case = "random75_no_resize"
  monkeypatch.setattr(inception, "_avg_pool_3x3_same", lambda x: inception.nn.avg_pool(
      x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True))
  # A fresh jit, so the patched pool is traced.
  monkeypatch.setattr(inception, "_apply", jax.jit(
      lambda variables, images: inception.InceptionV3().apply(variables, images)))
  images, options = inputs[case]
  mutant = metrics.inception_features(weights[1].variables, images, chunk_size=len(images),
                                      **options)
  recorded = dict(zip((str(c) for c in reference["cases"]), reference["pool3"]))[case]
  difference = _relative_difference(mutant["pool3"], recorded)
  print(f"padded average pools: pool3 max relative difference {difference:.3g}")
  assert difference > 100 * TOLERANCE
