"""What the sample metrics cost: feature-network images/s on this machine.

Run:  nice -n 10 python benchmarks/metric_cost.py [--inception-images 50] [--out FILE]

* jaxgen's FID Inception port (jaxgen.nn.inception) on 8x8 grey digits resized
  to 299x299 as pytorch-fid does, batch (chunk) 50 — with *random* weights of
  the right shapes (the real file cannot be downloaded here; the cost is the
  same). Real weights: set $JAXGEN_INCEPTION_WEIGHTS and they are used.
* the shipped LeNets (jaxgen.metrics.lenet) on MNIST-sized and digits-sized
  images, chunk 500.
* PyTorch side by side in the same run: pytorch-fid's Inception when
  `pytorch_fid` is importable (it is not in the default venv: see the parity
  extra in docs/metrics.md); the same LeNet in torch (weights copied, outputs
  checked to agree) when torch is.

Also the cost of the metric functions on features (FID's sqrtm, KID with 100
subsets of 1,000, precision/recall) for 10,000 x 128 LeNet features.
Writes benchmarks/results/metric_cost.json.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen import metrics  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen.metrics import lenet  # noqa: E402 pylint: disable=wrong-import-position
from jaxgen.nn import inception  # noqa: E402 pylint: disable=wrong-import-position


def _rate(fn, images: np.ndarray, repeats: int) -> dict[str, float]:
  """Images/s of fn(images) (after one untimed call that compiles)."""
  seconds = common.median_seconds(lambda: fn(images), repeats=repeats, warmup=1)
  return {"images": int(len(images)), "seconds": seconds,
          "images_per_sec": len(images) / seconds}


def jaxgen_rows(args) -> dict[str, dict]:
  rng = np.random.default_rng(0)
  rows = {}
  for name, shape in (("mnist", (28, 28, 1)), ("digits", (8, 8, 1))):
    params = lenet.load(name)
    images = rng.uniform(size=(args.lenet_images, *shape)).astype(np.float32)
    rows[f"jaxgen_lenet_{name}"] = _rate(
        lambda x, p=params: lenet.features(p, x), images, args.repeats)
  path = os.environ.get(metrics.inception_weights.ENV_VAR)
  variables = (metrics.load_inception_weights(path).variables if path
               else inception.random_variables(0))
  images = rng.uniform(size=(args.inception_images, 8, 8, 1)).astype(np.float32)
  rows["jaxgen_inception_299"] = {
      **_rate(lambda x: metrics.inception_features(variables, x, chunk_size=50)["pool3"],
              images, args.repeats),
      "weights": "real" if path else "random (same shapes and cost)"}
  return rows


def torch_rows(args) -> dict[str, dict]:
  """The PyTorch side, where installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return {"torch": {"skipped": "torch is not installed"}}
  torch.set_num_threads(os.cpu_count() or 1)
  rows: dict[str, dict] = {}
  rng = np.random.default_rng(0)
  for name in ("mnist", "digits"):
    params = lenet.load(name)
    model = _torch_lenet(torch, params)
    h, w, _ = params.image_shape
    images = rng.uniform(size=(args.lenet_images, h, w, 1)).astype(np.float32)

    def run(x, model=model):
      with torch.no_grad():
        return model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())

    ours = lenet.features(params, images[:64])
    theirs = run(images[:64]).numpy()
    rows[f"torch_lenet_{name}"] = {
        **_rate(run, images, args.repeats),
        "max_abs_difference_to_jaxgen": float(np.max(np.abs(ours - theirs)))}
  try:
    from pytorch_fid.inception import InceptionV3  # pylint: disable=import-outside-toplevel
  except ImportError:
    rows["pytorch_fid_inception_299"] = {
        "skipped": "pytorch-fid is not installed (the parity extra; docs/metrics.md)"}
  else:
    model = InceptionV3([3], resize_input=True, normalize_input=True).eval()
    images = rng.uniform(size=(args.inception_images, 3, 8, 8)).astype(np.float32)

    def run_fid(x):
      with torch.no_grad():
        return model(torch.from_numpy(x))[0]

    rows["pytorch_fid_inception_299"] = _rate(run_fid, images, args.repeats)
  return rows


def _torch_lenet(torch, params):
  """The same LeNet in torch, with the shipped weights."""
  nn = torch.nn
  module = params.module
  p = params.variables["params"]
  layers = []
  channels_in = 1
  for i, width in enumerate(module.channels):
    conv = nn.Conv2d(channels_in, width, module.kernel_size, padding="same")
    conv.weight.data = torch.from_numpy(np.asarray(p[f"conv{i}"]["kernel"]).transpose(3, 2, 0, 1).copy())
    conv.bias.data = torch.from_numpy(np.asarray(p[f"conv{i}"]["bias"]).copy())
    layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
    channels_in = width
  hidden = nn.Linear(p["hidden"]["kernel"].shape[0], module.hidden)
  hidden.weight.data = torch.from_numpy(np.asarray(p["hidden"]["kernel"]).T.copy())
  hidden.bias.data = torch.from_numpy(np.asarray(p["hidden"]["bias"]).copy())

  class Flatten(nn.Module):
    def forward(self, x):   # NCHW -> NHWC order first, as the Flax model flattens
      return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

  return nn.Sequential(*layers, Flatten(), hidden, nn.ReLU()).eval()


def metric_function_rows() -> dict[str, dict]:
  rng = np.random.default_rng(0)
  real = rng.normal(size=(10_000, 128))
  fake = rng.normal(size=(10_000, 128)) + 0.1
  rows = {}
  for name, fn in (
      ("fid", lambda: metrics.fid_from_features(real, fake)),
      ("kid_100x1000", lambda: metrics.kid_from_features(real, fake, seed=0)),
      ("precision_recall_k3", lambda: metrics.precision_recall(real, fake)),
  ):
    start = time.perf_counter()
    fn()
    rows[name] = {"features": "10,000 x 128 per set", "seconds": time.perf_counter() - start}
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--inception-images", type=int, default=50)
  parser.add_argument("--lenet-images", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  rows = {**jaxgen_rows(args), **torch_rows(args)}
  ratios = {}
  for name in ("mnist", "digits"):
    theirs = rows.get(f"torch_lenet_{name}", {}).get("images_per_sec")
    if theirs:
      ratios[f"lenet_{name}_jaxgen_over_torch"] = (
          rows[f"jaxgen_lenet_{name}"]["images_per_sec"] / theirs)
  theirs = rows.get("pytorch_fid_inception_299", {}).get("images_per_sec")
  if theirs:
    ratios["inception_jaxgen_over_pytorch_fid"] = (
        rows["jaxgen_inception_299"]["images_per_sec"] / theirs)
  payload = {
      "machine": common.machine(),
      "versions": common.versions("jax", "flax", "torch", "pytorch-fid"),
      "load_average_1min": os.getloadavg()[0],
      "note": ("measured on a shared 2-core machine under load: read the ratios, "
               "not the absolute rates"),
      "feature_networks": rows,
      "ratios": ratios,
      "metric_functions": metric_function_rows(),
  }
  common.write("metric_cost", payload, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
