"""FID, KID, IS, precision/recall and density/coverage of a model's samples.

The plumbing between a trained run and the metric functions: a feature network
chosen from the run's data (the shipped LeNet for digits and MNIST, the FID
Inception for everything else), the real split's features cached on disk, and
one sample-based evaluator (`jaxgen.core.evaluators.SampleBased`) that streams
the model's samples chunk by chunk through the network:

    names = parse_metrics("fid,kid,is,pr")
    options = MetricOptions.from_overrides({"metrics.reference_split": "train"})
    network = load_network(choose_network(spec, options), options)
    reference = reference_features(network, dataset, data_config, options)
    evaluator = sample_evaluator(names, network, reference, num_samples=10_000,
                                 options=options, value_range=spec.value_range)

Every number is named after its network (`fid_lenet_digits`, `fid_inception`,
`kid_lenet_mnist`, `pr_inception_precision`, ...), never just "fid".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxgen.core.evaluators import SampleBased
from jaxgen.errors import ConfigError, choices
from jaxgen.metrics import fid as fid_lib
from jaxgen.metrics.inception_score import inception_score
from jaxgen.metrics import kid as kid_lib
from jaxgen.metrics import lenet
from jaxgen.metrics.precision_recall import density_coverage, precision_recall

# Metric names a user asks for, and what each one reports.
METRICS = {
    "fid": "Frechet distance of Gaussians fitted to features (Heusel et al. 2017)",
    "kid": "unbiased polynomial-kernel MMD^2 over subsets, mean and std (Binkowski et al. 2018)",
    "is": "exp E KL(p(y|x) || p(y)) over splits, mean and std (Salimans et al. 2016)",
    "pr": "k-NN precision and recall (Kynkaanniemi et al. 2019)",
    "dc": "density and coverage (Naeem et al. 2020)",
    "modes": "mode coverage, on data with known modes (Lin et al. 2018)",
}
FEATURE_METRICS = ("fid", "kid", "is", "pr", "dc")
NETWORKS = ("auto", "lenet_mnist", "lenet_digits", "inception", "raw")
CACHE_ENV = "JAXGEN_CACHE"
_CACHE_FORMAT = "jaxgen-reference-features-v1"


def parse_metrics(names: str | Iterable[str]) -> tuple[str, ...]:
  """'fid,kid' or ["fid", "kid"] -> ("fid", "kid"); one-line error for unknown names."""
  if isinstance(names, str):
    names = [names]
  parsed: list[str] = []
  for name in (part for item in names for part in str(item).split(",")):
    name = str(name).strip().lower()
    if not name:
      continue
    if name not in METRICS:
      raise ConfigError(f"unknown metric {name!r}; valid metrics: {choices(METRICS)}")
    if name not in parsed:
      parsed.append(name)
  if not parsed:
    raise ConfigError(f"no metric given; valid metrics: {choices(METRICS)}")
  return tuple(parsed)


@dataclasses.dataclass(frozen=True)
class MetricOptions:
  """Evaluation-time settings of the sample metrics (`--set metrics.KEY=VALUE`)."""

  # auto: lenet_digits / lenet_mnist for those data, inception for other images,
  # raw (the values themselves as features) for vectors such as toy2d points
  network: str = "auto"
  inception_weights: str = ""    # pytorch-fid's .pth or a jaxgen .npz; '' = $JAXGEN_INCEPTION_WEIGHTS
  reference_split: str = "train"  # the real images the samples are compared with
  chunk_size: int = 500          # samples drawn (and featurized) at a time
  cache_dir: str = ""            # '' = $JAXGEN_CACHE or ~/.cache/jaxgen
  kid_subsets: int = 100
  kid_subset_size: int = 1000
  pr_k: int = 3
  dc_k: int = 5
  is_splits: int = 10

  def __post_init__(self):
    if self.network not in NETWORKS:
      raise ConfigError(f"metrics.network={self.network!r} is not valid; "
                        f"choose {choices(NETWORKS)}")
    if self.reference_split not in ("train", "test"):
      raise ConfigError(f"metrics.reference_split={self.reference_split!r} is not "
                        "valid; choose 'train' or 'test'")
    for key in ("chunk_size", "kid_subsets", "kid_subset_size", "pr_k", "dc_k",
                "is_splits"):
      if getattr(self, key) < 1:
        raise ConfigError(f"metrics.{key}={getattr(self, key)} must be at least 1")

  @classmethod
  def from_overrides(cls, values: Mapping[str, Any]) -> MetricOptions:
    """From {"metrics.KEY": value}; values may be strings as typed after --set."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for dotted, value in values.items():
      key = dotted.split(".", 1)[1] if dotted.startswith("metrics.") else dotted
      if key not in fields:
        raise ConfigError(f"unknown config key 'metrics.{key}'; valid keys in "
                          f"metrics: {choices(sorted(fields))}")
      default = fields[key].default
      if isinstance(default, int):
        try:
          value = int(value)
        except (TypeError, ValueError):
          raise ConfigError(f"config key 'metrics.{key}' takes an integer, "
                            f"got {value!r}") from None
      else:
        value = str(value)
      kwargs[key] = value
    return cls(**kwargs)


class FeatureNetwork(NamedTuple):
  """A feature network: name, weights hash and a function of images."""

  name: str          # "lenet_digits", "lenet_mnist" or "inception"
  sha256: str        # of the weights
  resize: str        # how images reach the network's input size
  # fn(images, value_range) -> {"features": [N, F], "logits": [N, C]}
  fn: Callable[[np.ndarray, tuple[float, float]], dict[str, np.ndarray]]
  protocol: dict


def choose_network(spec: Any, options: MetricOptions) -> str:
  """The feature network for data `spec`: `options.network`, or by the data when 'auto'."""
  if options.network != "auto":
    return options.network
  name = str(spec.name).lower()
  shape = tuple(spec.shape)
  if name == "digits" and shape in ((8, 8, 1), (64,)):
    return "lenet_digits"
  if "mnist" in name and "fashion" not in name and shape in ((28, 28, 1), (784,)):
    return "lenet_mnist"
  if len(shape) != 3:
    return "raw"
  return "inception"


def load_network(name: str, options: MetricOptions, spec: Any = None) -> FeatureNetwork:
  """Loads the weights of network `name` (hash checked); one-line errors when missing.

  `spec` (the data's) lets "raw" and the image networks check the data's shape.
  """
  if name == "raw":
    def raw(images, value_range):
      del value_range
      x = np.asarray(images, np.float32)
      return {"features": x.reshape(len(x), -1), "logits": None}

    return FeatureNetwork(name, "", "none", raw, {
        "network": "raw (the data values themselves are the features)"})
  if spec is not None and len(tuple(spec.shape)) != 3 and name == "inception":
    raise ConfigError(f"the Inception network takes images; {spec.name!r} holds "
                      f"vectors of shape {tuple(spec.shape)} (use metrics.network=raw)")
  if name.startswith("lenet_"):
    params = lenet.load(name[len("lenet_"):])

    def fn(images, value_range):
      return lenet.outputs(params, images, value_range=value_range)

    record = params.record
    return FeatureNetwork(name, params.sha256, "none (the network's own size)", fn, {
        "network": name, "weights_sha256": params.sha256, "features": "hidden layer (128)",
        "network_accuracy": record.get("accuracy"),
        "network_trained_on": f"{record.get('data')} train split "
                              f"({record.get('train_examples')} images)"})
  if name == "inception":
    # Imported here: the Inception port is only needed when asked for.
    from jaxgen.metrics import inception_weights  # pylint: disable=import-outside-toplevel
    from jaxgen.nn import inception  # pylint: disable=import-outside-toplevel
    weights = inception_weights.load_inception_weights(options.inception_weights or None)

    def fn(images, value_range):
      out = inception.inception_features(weights.variables, images,
                                         value_range=value_range)
      return {"features": out["pool3"], "logits": out["logits"]}

    return FeatureNetwork(name, weights.sha256, "bilinear to 299x299 (pytorch-fid)", fn, {
        "network": "inception (pytorch-fid FID InceptionV3, pool3)",
        "weights_sha256": weights.sha256, "features": "pool3 (2048)"})
  raise ConfigError(f"unknown feature network {name!r}; choose {choices(NETWORKS[1:])}")


def cache_dir(options: MetricOptions) -> pathlib.Path:
  """Where reference features are cached."""
  if options.cache_dir:
    return pathlib.Path(options.cache_dir).expanduser()
  root = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "jaxgen")
  return pathlib.Path(root).expanduser() / "reference_features"


def reference_key(network: FeatureNetwork, data_config: Mapping[str, Any],
                  split: str) -> dict[str, Any]:
  """What the reference features depend on: the data, split, network, weights, resize."""
  dataset = {k: v for k, v in sorted(data_config.items())
             if k not in ("batch_size", "labels")}
  return {"dataset": dataset, "split": split, "network": network.name,
          "weights_sha256": network.sha256, "resize": network.resize}


def reference_features(network: FeatureNetwork, dataset: Any,
                       data_config: Mapping[str, Any], options: MetricOptions,
                       *, progress: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
  """Features [N, F] of the real split, from the cache when its key matches.

  The cache file is named by the SHA-256 of the key (`reference_key`), and the
  key is stored inside and compared on reading, so a change in the dataset or
  its transforms, the split, the network, its weights or the resize computes
  the features again.
  """
  split = options.reference_split
  key = reference_key(network, data_config, split)
  text = json.dumps(key, sort_keys=True, default=list)
  digest = hashlib.sha256(text.encode()).hexdigest()
  path = cache_dir(options) / f"{network.name}-{split}-{digest[:24]}.npz"
  if path.is_file():
    try:
      with np.load(path, allow_pickle=False) as npz:
        if str(npz["format"]) == _CACHE_FORMAT and str(npz["key"]) == text:
          features = np.asarray(npz["features"])
          return features, {"cache": str(path), "cached": True, "examples": len(features)}
    except (OSError, ValueError, KeyError):
      pass  # an unreadable cache file is recomputed and replaced
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  chunks = []
  value_range = tuple(float(v) for v in dataset.spec.value_range)
  batches = data_lib.eval_batches(dataset, split=split, batch_size=options.chunk_size)
  total = len(dataset.split(split))
  with tqdm(total=total, desc=f"{network.name}: reference {split} features",
            unit="image", disable=not progress, leave=False) as bar:
    for batch in batches:
      x = batch["x"][batch["mask"] > 0]
      chunks.append(network.fn(x, value_range)["features"])
      bar.update(len(x))
  features = np.concatenate(chunks).astype(np.float32)
  path.parent.mkdir(parents=True, exist_ok=True)
  temporary = path.with_suffix(f".tmp{os.getpid()}.npz")
  np.savez(temporary, format=np.array(_CACHE_FORMAT), key=np.array(text),
           features=features)
  os.replace(temporary, path)
  return features, {"cache": str(path), "cached": False, "examples": len(features)}


class RunningGaussian:
  """Mean and covariance (ddof=1) of features fed in chunks, in float64.

  Chunks are merged with Chan et al.'s pairwise update, so the result equals
  `fid.gaussian_statistics` of all features (to float rounding) while memory
  is F x F, whatever the number of samples.
  """

  def __init__(self):
    self.count = 0
    self.mean: np.ndarray | None = None
    self.scatter: np.ndarray | None = None

  def update(self, features: np.ndarray) -> None:
    x = np.asarray(features, np.float64)
    if len(x) == 0:
      return
    mean = x.mean(0)
    centered = x - mean
    scatter = centered.T @ centered
    if self.count == 0:
      self.count, self.mean, self.scatter = len(x), mean, scatter
      return
    total = self.count + len(x)
    delta = mean - self.mean
    self.scatter = (self.scatter + scatter
                    + np.outer(delta, delta) * self.count * len(x) / total)
    self.mean = self.mean + delta * len(x) / total
    self.count = total

  def statistics(self) -> tuple[np.ndarray, np.ndarray]:
    if self.count < 2:
      raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
    return self.mean, self.scatter / (self.count - 1)


def metric_protocol(names: Iterable[str], options: MetricOptions, seed: int) -> dict:
  """How each metric is computed, in words and parameters."""
  described = {
      "fid": {"estimator": "Frechet distance, float64 sqrtm (pytorch-fid's)"},
      "kid": {"kernel": "(x.y/d + 1)^3", "subsets": options.kid_subsets,
              "subset_size": options.kid_subset_size, "subset_seed": seed,
              "subset_size_cap": "the smaller of the two feature sets"},
      "is": {"splits": options.is_splits, "shuffle": False},
      "pr": {"k": options.pr_k},
      "dc": {"k": options.dc_k},
  }
  return {name: described[name] for name in names if name in described}


def compute(names: Iterable[str], network: str, real: np.ndarray,
            fake_gaussian: RunningGaussian, fake: np.ndarray | None,
            logits: np.ndarray | None, options: MetricOptions, seed: int
            ) -> dict[str, float]:
  """The requested metrics from real features, the fakes' statistics/features/logits."""
  out: dict[str, float] = {}
  names = tuple(names)
  if "fid" in names:
    mu1, sigma1 = fid_lib.gaussian_statistics(real)
    mu2, sigma2 = fake_gaussian.statistics()
    out[f"fid_{network}"] = float(fid_lib.frechet_distance(mu1, sigma1, mu2, sigma2))
  if "kid" in names:
    kid = kid_lib.kid_from_features(real, fake, num_subsets=options.kid_subsets,
                                    subset_size=options.kid_subset_size, seed=seed)
    out[f"kid_{network}"] = float(kid["mean"])
    out[f"kid_{network}_std"] = float(kid["std"])
  if "is" in names:
    score = inception_score(logits, splits=options.is_splits, from_logits=True)
    out[f"is_{network}"] = float(score["mean"])
    out[f"is_{network}_std"] = float(score["std"])
  if "pr" in names:
    pr = precision_recall(real, fake, k=options.pr_k)
    out[f"pr_{network}_precision"] = float(pr["precision"])
    out[f"pr_{network}_recall"] = float(pr["recall"])
  if "dc" in names:
    dc = density_coverage(real, fake, k=options.dc_k)
    out[f"dc_{network}_density"] = float(dc["density"])
    out[f"dc_{network}_coverage"] = float(dc["coverage"])
  return out


def sample_evaluator(names: Iterable[str], network: FeatureNetwork,
                     reference: tuple[np.ndarray, dict[str, Any]], *, num_samples: int,
                     options: MetricOptions, value_range: tuple[float, float],
                     seed: int = 0, extra_protocol: Mapping[str, Any] | None = None
                     ) -> SampleBased:
  """One sample-based evaluator for every feature metric of `names` on `network`.

  Samples arrive in chunks; each chunk goes through the network and is
  dropped. FID keeps only running statistics; KID, IS, P/R and D/C keep the
  features (or logits) of the samples, [num_samples, F] float32.
  """
  names = tuple(n for n in names if n in FEATURE_METRICS)
  real, reference_protocol = reference
  value_range = (float(value_range[0]), float(value_range[1]))
  keep_features = any(n in names for n in ("kid", "pr", "dc"))

  def fn(chunks: Iterator[np.ndarray]) -> dict[str, float]:
    gaussian = RunningGaussian()
    kept, logits = [], []
    for chunk in chunks:
      out = network.fn(np.asarray(chunk), value_range)
      gaussian.update(out["features"])
      if keep_features:
        kept.append(out["features"])
      if "is" in names:
        logits.append(out["logits"])
    return compute(names, network.name, real, gaussian,
                   np.concatenate(kept) if kept else None,
                   np.concatenate(logits) if logits else None, options, seed)

  import jaxgen  # pylint: disable=import-outside-toplevel
  protocol = {
      **network.protocol,
      "metrics": metric_protocol(names, options, seed),
      "resize": network.resize,
      "generated": num_samples,
      "reference": {"split": options.reference_split, **reference_protocol},
      "sample_value_range": list(value_range),
      "jaxgen_version": jaxgen.__version__,
      **dict(extra_protocol or {}),
  }
  return SampleBased(name=network.name, fn=fn, num_samples=num_samples,
                     chunk_size=options.chunk_size, protocol=protocol)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_images(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float]]:
  """Images [N, H, W, C] and their value range from a folder of image files or an .npz.

  A folder: every PNG/JPEG/BMP file in it (sorted by name; not its subfolders),
  read with Pillow as uint8, all of one size and mode, range (0, 255). An .npz:
  its array `x` ([N, H, W], [N, H, W, C] or [N, D]); uint8 arrays have range
  (0, 255), float arrays (0, 1). Nothing is unpickled.
  """
  path = pathlib.Path(path)
  if path.is_file() and path.suffix == ".npz":
    try:
      with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files:
          raise ConfigError(f"{str(path)!r} has no array 'x' (it has "
                            f"{choices(npz.files)})")
        x = np.asarray(npz["x"])
    except (OSError, ValueError) as error:
      raise ConfigError(f"cannot read {str(path)!r} as .npz: {error}") from None
    if x.ndim == 3:
      x = x[..., None]
    value_range = (0.0, 255.0) if x.dtype == np.uint8 else (0.0, 1.0)
    return x, value_range
  if not path.is_dir():
    raise ConfigError(f"{str(path)!r} is neither a folder of images nor an .npz file")
  files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
  if not files:
    raise ConfigError(f"{str(path)!r} holds no image files "
                      f"({', '.join(IMAGE_SUFFIXES)})")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  arrays = []
  for file in files:
    with Image.open(file) as image:
      if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
      arrays.append(np.asarray(image, np.uint8))
  shapes = {a.shape for a in arrays}
  if len(shapes) != 1:
    raise ConfigError(f"images in {str(path)!r} differ in size or mode: "
                      f"{sorted(shapes)[:3]}")
  x = np.stack(arrays)
  return (x[..., None] if x.ndim == 3 else x), (0.0, 255.0)


def compare_images(images_a: np.ndarray, images_b: np.ndarray, names: Iterable[str],
                   network: FeatureNetwork, options: MetricOptions, *,
                   value_ranges: tuple[tuple[float, float], tuple[float, float]],
                   seed: int = 0) -> tuple[dict[str, float], dict[str, Any]]:
  """Metrics between two image sets, A taken as the real one (P/R and D/C are not
  symmetric; IS is of B). Grey networks get RGB images averaged over channels."""
  names = tuple(n for n in parse_metrics(names) if n in FEATURE_METRICS)
  if len(images_a) < 2 or len(images_b) < 2:
    raise ConfigError(f"each image set needs at least 2 images, got {len(images_a)} "
                      f"and {len(images_b)}")

  def featurize(images, value_range):
    images = np.asarray(images)
    if network.name.startswith("lenet_") and images.ndim == 4 and images.shape[-1] == 3:
      images = images.astype(np.float32).mean(-1, keepdims=True)
    outs = [network.fn(images[i:i + options.chunk_size], value_range)
            for i in range(0, len(images), options.chunk_size)]
    return {k: (np.concatenate([o[k] for o in outs]) if outs[0][k] is not None else None)
            for k in outs[0]}

  real = featurize(images_a, value_ranges[0])
  fake = featurize(images_b, value_ranges[1])
  gaussian = RunningGaussian()
  gaussian.update(fake["features"])
  values = compute(names, network.name, real["features"], gaussian, fake["features"],
                   fake["logits"], options, seed)
  import jaxgen  # pylint: disable=import-outside-toplevel
  protocol = {**network.protocol, "metrics": metric_protocol(names, options, seed),
              "resize": network.resize, "images_a": len(images_a),
              "images_b": len(images_b),
              "value_ranges": [list(value_ranges[0]), list(value_ranges[1])],
              "jaxgen_version": jaxgen.__version__}
  return values, protocol
