"""Recorded pytorch-fid outputs for the torch-free Inception parity test (issue #13).

CI installs no PyTorch, so `test_inception_parity.py` (which runs pytorch-fid
live) is skipped there. This script, run by hand where the `parity` extra is
installed, records what pytorch-fid's FID Inception computes for deterministic
random weights and inputs; `test_inception_reference.py` then checks jaxgen's
port against the recording on every CI run.

Nothing here uses torch's random number generator: the weights and inputs come
from NumPy (`np.random.default_rng`) and are regenerated bit for bit in the test
from the seeds. Only the BatchNorm running statistics come from a torch pass (one
train-mode pass over random images, so activations stay O(1) through the ~90
layers, over white noise and blocky images); they are stored in the file as
float16 (the weights use exactly those float16 values): 69 KB of statistics
instead of the 95 MB of weights.
SHA-256s of the weights and of the inputs are stored too, so a change in NumPy's
random streams (or in scikit-learn's digits) is detected, not compared silently.

Regenerate (in a venv with the parity extra, from the repository root):

    PYTHONPATH=$PWD python tests/metrics/make_inception_reference.py

The torch-free functions (`state_dict`, `inputs`, the hashes) are what the test
imports; torch and pytorch-fid are imported only by `record`.
"""

from __future__ import annotations

import hashlib
import pathlib
import platform
import sys
import warnings

import numpy as np

from jaxgen.metrics import inception_weights

PATH = pathlib.Path(__file__).resolve().parent / "data" / "inception_reference.npz"
FORMAT = "jaxgen-inception-reference-v1"
WEIGHTS_SEED = 13
INPUTS_SEED = 2015
CALIBRATION_SEED = 1205
SIZES = (32, 75, 299, 341)  # as the live test: 341 > 299 checks the non-antialiased shrink
PER_KIND = 1                # random and digit images per size (the file stays small)
NO_RESIZE_SIZE = 75         # one case fed at its own size (resize=False)
FID_DIMS = (2, 3)           # first pool3 dimensions for the FID: fewer than the 4 images a set
CALIBRATION_IMAGES = 4


def tensor_names() -> list[tuple[str, tuple[int, ...]]]:
  """(torch name, torch shape) of every tensor of pytorch-fid's weights file, in order."""
  names = inception_weights._torch_names()  # pylint: disable=protected-access
  return [(name, shape) for name, _, shape in names]


def _is_statistic(name: str) -> bool:
  return name.endswith((".running_mean", ".running_var"))


def numpy_tensors(seed: int = WEIGHTS_SEED) -> dict[str, np.ndarray]:
  """Every tensor but the BatchNorm running statistics, float32 in torch layout.

  Convs: He-scaled normals (std sqrt(2 / fan_in)); BatchNorm scale 0.5 + U(0, 1),
  shift 0.2 N(0, 1); fc weight N(0, 1/2048), bias N(0, 1). Drawn in the order of
  `tensor_names()` from one `default_rng(seed)`.
  """
  rng = np.random.default_rng(seed)
  tensors = {}
  for name, shape in tensor_names():
    if _is_statistic(name):
      continue
    if name == "fc.weight" or name.endswith(".conv.weight"):
      fan_in = int(np.prod(shape[1:]))
      gain = 1.0 if name == "fc.weight" else 2.0
      value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(gain / fan_in))
    elif name.endswith(".bn.weight"):
      value = np.float32(0.5) + rng.random(shape, dtype=np.float32)
    elif name.endswith(".bn.bias"):
      value = np.float32(0.2) * rng.standard_normal(shape, dtype=np.float32)
    elif name == "fc.bias":
      value = rng.standard_normal(shape, dtype=np.float32)
    else:
      raise AssertionError(f"no rule for tensor {name!r}")
    tensors[name] = value
  return tensors


def state_dict(tensors: dict[str, np.ndarray], running_mean: np.ndarray,
               running_var: np.ndarray) -> dict[str, np.ndarray]:
  """The full state dict: `tensors` plus the statistics (concatenated in name order)."""
  out, offset = {}, 0
  for name, shape in tensor_names():
    if name.endswith(".running_mean"):
      size = shape[0]
      out[name] = np.asarray(running_mean[offset:offset + size], np.float32)
      out[name.replace(".running_mean", ".running_var")] = np.asarray(
          running_var[offset:offset + size], np.float32)
      offset += size
    elif not _is_statistic(name):
      out[name] = tensors[name]
  if offset != len(running_mean) or len(running_var) != len(running_mean):
    raise ValueError(f"{len(running_mean)} running means for {offset} BatchNorm channels")
  return {name: out[name] for name, _ in tensor_names()}


def tensors_sha256(tensors: dict[str, np.ndarray]) -> str:
  """SHA-256 of names, shapes and little-endian float32 bytes, in the dict's order."""
  digest = hashlib.sha256()
  for name, value in tensors.items():
    value = np.ascontiguousarray(value, dtype="<f4")
    digest.update(f"{name}:{value.shape};".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def _upsample_nearest(image: np.ndarray, size: int) -> np.ndarray:
  # Integer index arithmetic: the same pixels on every machine (scipy's zoom
  # could change between versions).
  index = (np.arange(size) * image.shape[0]) // size
  return image[np.ix_(index, index)]


def inputs(seed: int = INPUTS_SEED) -> dict[str, tuple[np.ndarray, dict]]:
  """{case: (images [N, H, W, C], inception_features keyword arguments)}.

  Per size: PER_KIND random RGB float32 images in [0, 1], and PER_KIND
  scikit-learn digits (grey, uint8 0-255, upsampled nearest-neighbour); and one
  random image fed without resizing.
  """
  import sklearn.datasets  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  digits = sklearn.datasets.load_digits().images  # [1797, 8, 8], integers 0-16
  cases, next_digit = {}, 0
  for size in SIZES:
    cases[f"random{size}"] = (rng.random((PER_KIND, size, size, 3), dtype=np.float32), {})
    chosen = digits[next_digit:next_digit + PER_KIND]
    next_digit += PER_KIND
    grey = np.stack([_upsample_nearest(d, size) for d in chosen])
    pixels = np.round(grey * (255 / 16)).astype(np.uint8)[..., None]
    cases[f"digits{size}"] = (pixels, {"value_range": (0, 255)})
  size = NO_RESIZE_SIZE
  cases[f"random{size}_no_resize"] = (
      rng.random((PER_KIND, size, size, 3), dtype=np.float32), {"resize": False})
  return cases


def inputs_sha256(cases: dict[str, tuple[np.ndarray, dict]]) -> str:
  digest = hashlib.sha256()
  for case, (images, options) in cases.items():
    digest.update(f"{case}:{images.dtype}:{images.shape}:{sorted(options.items())};".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
  return digest.hexdigest()


def fid_sets(features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(random images' pool3, digits' pool3), resized cases only, all sizes."""
  return tuple(np.concatenate([features[f"{kind}{size}"] for size in SIZES])
               for kind in ("random", "digits"))


def load(path: pathlib.Path = PATH) -> dict[str, np.ndarray]:
  """The recorded reference (arrays; nothing unpickled)."""
  with np.load(path, allow_pickle=False) as data:
    arrays = {key: data[key] for key in data.files}
  if str(arrays["format"]) != FORMAT:
    raise ValueError(f"{path} is not a {FORMAT} file")
  return arrays


def recorded_state_dict(reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The recorded weights, regenerated: NumPy tensors from the seed + stored statistics."""
  tensors = numpy_tensors(int(reference["weights_seed"]))
  return state_dict(tensors, reference["running_mean"].astype(np.float32),
                    reference["running_var"].astype(np.float32))


# ---- Below: needs torch, torchvision and pytorch-fid (the `parity` extra). ----


def _pytorch_fid_model(tensors: dict[str, np.ndarray]):
  """pytorch-fid's InceptionV3([pool3]) with `tensors` as its weights file, and its Inception3.

  fid_inception_v3() downloads the weights file and loads it strictly; only the
  download is replaced (by these tensors), so pytorch-fid's own strict
  `load_state_dict` checks every name and shape. The wrapper's blocks share
  their modules with the captured Inception3, whose names are the file's and
  whose `fc` gives the logits.
  """
  import torch  # pylint: disable=import-outside-toplevel
  # pylint: disable-next=import-outside-toplevel
  from pytorch_fid import inception as pytorch_fid_inception
  originals = (pytorch_fid_inception.load_state_dict_from_url,
               pytorch_fid_inception.fid_inception_v3)
  captured = []

  def capture():
    captured.append(originals[1]())
    return captured[-1]

  pytorch_fid_inception.load_state_dict_from_url = lambda *args, **kwargs: {
      name: torch.from_numpy(np.array(value)) for name, value in tensors.items()}
  pytorch_fid_inception.fid_inception_v3 = capture
  try:
    wrapper = pytorch_fid_inception.InceptionV3([3], resize_input=True, normalize_input=True)
  finally:
    (pytorch_fid_inception.load_state_dict_from_url,
     pytorch_fid_inception.fid_inception_v3) = originals
  (full,) = captured
  return wrapper.eval(), full.eval()


def _channels() -> int:
  return sum(shape[0] for name, shape in tensor_names() if name.endswith(".running_mean"))


def _calibrate(tensors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """BatchNorm running statistics from one train-mode pass, as float16.

  Over white noise and blocky (upsampled 8×8) random images, so that both the
  noise and the smooth, upsampled test images keep O(1) activations.
  """
  import torch  # pylint: disable=import-outside-toplevel
  placeholder = state_dict(tensors, np.zeros(_channels()), np.ones(_channels()))
  wrapper, full = _pytorch_fid_model(placeholder)
  batch_norms = {name: m for name, m in full.named_modules()
                 if isinstance(m, torch.nn.BatchNorm2d)}
  for bn in batch_norms.values():
    bn.reset_running_stats()
    bn.momentum = None  # cumulative average: one pass sets the statistics exactly
  rng = np.random.default_rng(CALIBRATION_SEED)
  noise = rng.random((CALIBRATION_IMAGES // 2, 299, 299, 3), dtype=np.float32)
  blocky = np.stack([_upsample_nearest(image, 299) for image in
                     rng.random((CALIBRATION_IMAGES // 2, 8, 8, 3), dtype=np.float32)])
  images = np.concatenate([noise, blocky]).transpose(0, 3, 1, 2)
  wrapper.train()
  with torch.no_grad():
    wrapper(torch.from_numpy(np.ascontiguousarray(images)))
  order = [name[:-len(".running_mean")] for name, _ in tensor_names()
           if name.endswith(".running_mean")]
  mean = np.concatenate([batch_norms[n].running_mean.numpy() for n in order]).astype(np.float64)
  var = np.concatenate([batch_norms[n].running_var.numpy() for n in order]).astype(np.float64)
  return mean.astype(np.float16), var.astype(np.float16)


def _torch_outputs(wrapper, full, images: np.ndarray, options: dict):
  import torch  # pylint: disable=import-outside-toplevel
  x = images.astype(np.float32)
  if "value_range" in options:
    x = x / np.float32(options["value_range"][1])
  x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  wrapper.resize_input = options.get("resize", True)
  with torch.no_grad():
    pool3 = wrapper(x)[0].flatten(1)
    logits = full.fc(pool3)  # torchvision's Inception3: flatten, dropout (off), fc
  return pool3.numpy(), logits.numpy()


def record(path: pathlib.Path = PATH) -> dict[str, np.ndarray]:
  """Runs pytorch-fid on the seeded weights and inputs and writes the reference file."""
  import scipy  # pylint: disable=import-outside-toplevel
  import sklearn  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel
  import pytorch_fid  # pylint: disable=import-outside-toplevel
  from pytorch_fid import fid_score  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(max(1, torch.get_num_threads()))
  tensors = numpy_tensors(WEIGHTS_SEED)
  running_mean, running_var = _calibrate(tensors)
  weights = state_dict(tensors, running_mean.astype(np.float32), running_var.astype(np.float32))
  wrapper, full = _pytorch_fid_model(weights)
  loaded = {k: v.numpy() for k, v in full.state_dict().items()
            if not k.endswith("num_batches_tracked")}
  assert set(loaded) == set(weights), set(loaded) ^ set(weights)
  for name, value in weights.items():
    np.testing.assert_array_equal(loaded[name], value, err_msg=name)
  cases = inputs(INPUTS_SEED)
  pool3, logits = {}, {}
  for case, (images, options) in cases.items():
    pool3[case], logits[case] = _torch_outputs(wrapper, full, images, options)
  first, second = fid_sets(pool3)
  fids = []
  for dims in FID_DIMS:
    a, b = first[:, :dims].astype(np.float64), second[:, :dims].astype(np.float64)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      fids.append(fid_score.calculate_frechet_distance(
          np.mean(a, axis=0), np.cov(a, rowvar=False), np.mean(b, axis=0),
          np.cov(b, rowvar=False)))
  arrays = {
      "format": np.array(FORMAT),
      "weights_seed": np.array(WEIGHTS_SEED), "inputs_seed": np.array(INPUTS_SEED),
      "calibration_seed": np.array(CALIBRATION_SEED), "per_kind": np.array(PER_KIND),
      "sizes": np.array(SIZES),
      "numpy_tensors_sha256": np.array(tensors_sha256(tensors)),
      "weights_sha256": np.array(tensors_sha256(weights)),
      "inputs_sha256": np.array(inputs_sha256(cases)),
      "running_mean": running_mean, "running_var": running_var,
      "cases": np.array(list(cases)),
      "pool3": np.stack([pool3[c] for c in cases]).astype(np.float32),
      "logits": np.stack([logits[c] for c in cases]).astype(np.float32),
      "fid_dims": np.array(FID_DIMS), "fid_pytorch_fid": np.array(fids, np.float64),
      "versions": np.array([f"torch {torch.__version__}", f"torchvision {torchvision.__version__}",
                            f"pytorch-fid {pytorch_fid.__version__}", f"numpy {np.__version__}",
                            f"scipy {scipy.__version__}", f"scikit-learn {sklearn.__version__}",
                            f"python {platform.python_version()}"]),
  }
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(path, **arrays)
  return arrays


def main() -> int:
  arrays = record(PATH)
  print(f"wrote {PATH} ({PATH.stat().st_size / 1024:.0f} KiB)")
  print("versions: " + ", ".join(str(v) for v in arrays["versions"]))
  print(f"weights sha256 {arrays['weights_sha256']}, inputs sha256 {arrays['inputs_sha256']}")
  for case, p, l in zip(arrays["cases"], arrays["pool3"], arrays["logits"]):
    print(f"{case}: pool3 mean {p.mean():.4g} std {p.std():.4g}, logits std {l.std():.4g}")
  print(f"pytorch-fid FID on pool3 dims {arrays['fid_dims'].tolist()}: "
        f"{arrays['fid_pytorch_fid'].tolist()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
