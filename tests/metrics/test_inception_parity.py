"""Parity of jaxgen's Inception port with pytorch-fid's FID Inception (issue #13).

pytorch-fid's own network (`pytorch_fid.inception.InceptionV3`, its FID variant)
is built with RANDOM weights — the weights loader is patched, nothing is
downloaded — and BatchNorm scales, shifts and running statistics set to random
values so that every part of every layer matters. Its state dict is saved as a
`.pth` in the format of pytorch-fid's weights file and loaded by jaxgen's loader;
then pool3 features and logits must agree within 1e-4 relative (max |Δ| / max
|reference|) on random and real (digit) images at several sizes, and jaxgen's
FID must equal pytorch-fid's `calculate_frechet_distance` on the same features.

Needs the `parity` extra (torch, torchvision, pytorch-fid); skipped without it:
  pip install -e ".[test,parity]"
  PYTHONPATH=$PWD python -m pytest tests/metrics/test_inception_parity.py
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("torchvision", reason="the parity test needs the `parity` extra "
                    "(pip install -e '.[parity]'): torch, torchvision, pytorch-fid")
pytorch_fid_inception = pytest.importorskip(
    "pytorch_fid.inception", reason="the parity test needs the `parity` extra "
    "(pip install -e '.[parity]'): torch, torchvision, pytorch-fid")
import jax  # pylint: disable=g-import-not-at-top
import scipy.ndimage  # pylint: disable=g-import-not-at-top
import sklearn.datasets  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top
import torchvision  # pylint: disable=g-import-not-at-top
from pytorch_fid import fid_score  # pylint: disable=g-import-not-at-top

from jaxgen import metrics  # pylint: disable=g-import-not-at-top
from jaxgen.nn import inception  # pylint: disable=g-import-not-at-top

pytestmark = pytest.mark.slow  # ~1-2 minutes on 2 busy CPU cores: two Inceptions at 299×299

TOLERANCE = 1e-4
FID_TOLERANCE = 1e-6
SIZES = (32, 75, 299, 341)  # 341 > 299: the resize shrinks, where antialiasing would differ
PER_KIND = 2  # random and digit images per size


def _relative_difference(actual, expected):
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def _randomize(model, generator):
  """Random BatchNorm affine params and running stats (positive variances), in place.

  Running statistics come from one train-mode pass over random images (so
  activations stay O(1) through ~90 layers) and are then perturbed at random.
  """
  batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  for bn in batch_norms:
    bn.reset_running_stats()
    bn.momentum = None  # cumulative average: one pass sets the stats exactly
  model.train()
  with torch.no_grad():
    model(torch.rand(4, 3, 299, 299, generator=generator) * 2 - 1)
  model.eval()
  with torch.no_grad():
    for bn in batch_norms:
      size = bn.num_features
      bn.weight.copy_(0.5 + torch.rand(size, generator=generator))
      bn.bias.copy_(0.2 * torch.randn(size, generator=generator))
      bn.running_mean.add_(0.1 * torch.randn(size, generator=generator))
      bn.running_var.mul_(0.5 + torch.rand(size, generator=generator))
    model.fc.bias.copy_(torch.randn(model.fc.bias.shape, generator=generator))


def _pytorch_fid_model(monkeypatch):
  """pytorch-fid's InceptionV3 (FID variant) with random weights, and its full Inception3.

  fid_inception_v3() downloads the weights and loads them strictly; patched here to
  load nothing, so the network keeps torchvision's random init. The wrapper's
  blocks share their modules with the captured Inception3, whose `fc` gives logits.
  """
  monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                      lambda *args, **kwargs: {})
  monkeypatch.setattr(torchvision.models.inception.Inception3, "load_state_dict",
                      lambda self, state_dict, *args, **kwargs: None)
  captured = []
  original = pytorch_fid_inception.fid_inception_v3

  def capture():
    captured.append(original())
    return captured[-1]

  monkeypatch.setattr(pytorch_fid_inception, "fid_inception_v3", capture)
  torch.manual_seed(0)
  wrapper = pytorch_fid_inception.InceptionV3([3]).eval()
  (full,) = captured
  _randomize(full, torch.Generator().manual_seed(1))
  return wrapper, full


def _images(size, rng):
  """PER_KIND random RGB images in [0, 1] and PER_KIND digits in [0, 255] (grey), [N, H, W, C]."""
  random_images = rng.uniform(size=(PER_KIND, size, size, 3)).astype(np.float32)
  digits = sklearn.datasets.load_digits().images[:PER_KIND] * (255 / 16)
  digits = np.stack([scipy.ndimage.zoom(d, size / 8, order=1) for d in digits])
  digits = np.clip(digits, 0, 255).astype(np.float32)[..., None]
  return random_images, digits


def _torch_outputs(wrapper, full, images_nhwc, resize=True):
  x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  wrapper.resize_input = resize
  with torch.no_grad():
    pool3 = wrapper(x)[0].flatten(1)
    logits = full.fc(pool3)  # torchvision's Inception3: flatten, dropout (off), fc
  return {"pool3": pool3.numpy(), "logits": logits.numpy()}


def _cases(rng):
  """{case: (images [N, H, W, C], inception_features keyword arguments)}."""
  cases = {}
  for size in SIZES:
    random_images, digits = _images(size, rng)
    cases[f"random{size}"] = (random_images, {})
    cases[f"digits{size}"] = (digits, {"value_range": (0, 255)})
  cases["random75_no_resize"] = (_images(75, rng)[0], {"resize": False})
  return cases


def _reference_outputs(wrapper, full, images, options):
  scale = options.get("value_range", (0, 1))[1]
  return _torch_outputs(wrapper, full, images / scale, resize=options.get("resize", True))


@pytest.fixture(scope="module")
def network(tmp_path_factory):
  """(jaxgen variables loaded from the saved .pth, pytorch-fid wrapper, its Inception3)."""
  monkeypatch = pytest.MonkeyPatch()
  try:
    wrapper, full = _pytorch_fid_model(monkeypatch)
  finally:
    monkeypatch.undo()
  path = tmp_path_factory.mktemp("weights") / "pt_inception-random.pth"
  torch.save(full.state_dict(), path)  # the layout of pytorch-fid's weights file
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no hash warning: the name carries no hash prefix
    weights = metrics.load_inception_weights(path)
  assert weights.sha256 == weights.file_sha256 and len(weights.sha256) == 64
  return weights.variables, wrapper, full


@pytest.fixture(scope="module")
def inputs():
  return _cases(np.random.default_rng(0))


@pytest.fixture(scope="module")
def outputs(network, inputs):
  """{case: (jaxgen outputs, pytorch-fid outputs)} for every input kind and size."""
  variables, wrapper, full = network
  return {case: (inception.inception_features(variables, images, chunk_size=4, **options),
                 _reference_outputs(wrapper, full, images, options))
          for case, (images, options) in inputs.items()}


@pytest.mark.parametrize("output", ["pool3", "logits"])
def test_features_match_pytorch_fid(outputs, output):
  differences = {case: _relative_difference(ours[output], reference[output])
                 for case, (ours, reference) in outputs.items()}
  print(f"{output}: max relative differences {differences}")
  for case, (ours, reference) in outputs.items():
    assert ours[output].shape == reference[output].shape, case
    assert np.std(reference[output]) > 0, case  # the random network is not degenerate
  assert max(differences.values()) < TOLERANCE, differences


def test_fid_matches_pytorch_fid_on_the_same_features(outputs):
  # Set 1: the random images; set 2: the digits (8 each, all sizes). Only the
  # first feature dimensions, fewer than the images so that the covariances have
  # full rank (with 8 samples in 64+ dims both implementations reject the
  # product's complex square root), and because scipy's sqrtm of a 2048×2048
  # product takes minutes on this CPU.
  ours = {kind: np.concatenate([o[0]["pool3"] for c, o in outputs.items()
                                if c.startswith(kind) and "no_resize" not in c])
          for kind in ("random", "digits")}
  for dims in (2, 6):
    first, second = ours["random"][:, :dims], ours["digits"][:, :dims]
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      expected = fid_score.calculate_frechet_distance(
          np.mean(first, axis=0), np.cov(first, rowvar=False),
          np.mean(second, axis=0), np.cov(second, rowvar=False))
      actual = metrics.fid_from_features(first, second)
    assert expected > 0
    assert abs(actual - expected) <= FID_TOLERANCE * abs(expected), (dims, actual, expected)


def test_fid_of_both_networks_features_agree(outputs):
  # End to end: jaxgen's FID on jaxgen's features vs pytorch-fid's on its own.
  # Feature differences of ~1e-6 relative move this FID by about as much.
  # 6 dimensions, for the reasons in the test above.
  def fid(which):
    sets = [np.concatenate([o[which]["pool3"][:, :6] for c, o in outputs.items()
                            if c.startswith(kind) and "no_resize" not in c])
            for kind in ("random", "digits")]
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      return metrics.fid_from_features(*sets)

  ours, reference = fid(0), fid(1)
  print(f"FID(6 dims) jaxgen {ours!r}, pytorch-fid {reference!r}")
  assert abs(ours - reference) <= 1e-3 * reference


def _mutate(monkeypatch, mutation):
  """Swaps one detail of the port for the plain-Inception / plain-JAX choice."""
  if mutation == "pools_count_padding":  # torchvision's InceptionA/C/E, not pytorch-fid's patch
    monkeypatch.setattr(inception, "_avg_pool_3x3_same", lambda x: inception.nn.avg_pool(
        x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True))
  elif mutation == "mixed_7c_average_pool":  # FIDInceptionE_1 where E_2 belongs
    original = inception.InceptionE
    monkeypatch.setattr(inception, "InceptionE",
                        lambda max_pool, name: original(max_pool=False, name=name))
  elif mutation == "antialiased_resize":  # jax.image.resize's default
    monkeypatch.setattr(inception, "_resize_bilinear_jit", jax.jit(
        lambda images, size: jax.image.resize(
            images, (images.shape[0], size, size, images.shape[3]), method="bilinear"),
        static_argnums=1))
  # A fresh jit, so the patched module functions are traced again.
  monkeypatch.setattr(inception, "_apply", jax.jit(
      lambda variables, images: inception.InceptionV3().apply(variables, images)))


@pytest.mark.parametrize("mutation, case", [("pools_count_padding", "random75_no_resize"),
                                            # At 75×75 Mixed_7c sees 1×1 maps, where
                                            # max and average pools agree: use 299.
                                            ("mixed_7c_average_pool", "random32"),
                                            ("antialiased_resize", "random341")])
def test_the_tolerance_catches_each_fid_specific_detail(network, inputs, outputs, monkeypatch,
                                                        mutation, case):
  """Without one of pytorch-fid's details the same comparison fails by far."""
  variables = network[0]
  images, options = inputs[case]
  _mutate(monkeypatch, mutation)
  mutant = inception.inception_features(variables, images, chunk_size=4, **options)
  reference = outputs[case][1]
  difference = _relative_difference(mutant["pool3"], reference["pool3"])
  print(f"{mutation}: pool3 max relative difference {difference:.3g}")
  assert difference > 100 * TOLERANCE
