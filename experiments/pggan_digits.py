"""Progressive growing (pggan) against the DCGAN of the same size: growing figure, scores.

Run:  python experiments/pggan_digits.py [--quick] [--out runs/pggan_digits]
          [--data digits|mnist] [--seeds 0,1,2] [--steps N] [--figures]
          [--fade-images N] [--stable-images N] [--channels W,W,...] [--workers N]

For each seed it trains `pggan` (4x4 -> 8x8 on digits; MNIST padded to 32:
4 -> 8 -> 16 -> 32) and the `gan` method's DCGAN on the same data with the
same batch size, number of steps, latent size and widths per level, then
scores 10,000 samples of each EMA generator:

  classifier score / label entropy   a logistic regression trained on the real
                                     training images (jaxgen.metrics.classifier_score)
  FID-LeNet, precision/recall        the shipped LeNet of the data (lenet_digits,
                                     lenet_mnist) through jaxgen.metrics, against the
                                     real training split (as `jaxgen eval --metrics fid,pr`)

For the first seed pggan is trained in sessions that end where its stages
and fades end, each resumed from the last one's checkpoint (bit-exact,
tested), so the same noise can be decoded at the end of every phase:
growing.png (rows: phases, labelled; columns: the same z). With --figures the
growing figure and the sample grids of the first seed are also written, small,
to docs/figures/ (`--figures-dir`). `--workers N` trains the seeds in N
processes side by side (each seed's numbers do not depend on it). MNIST is
idx:../shared/data/mnist-t10k (the fixed 8,000/2,000 split of MNIST's test set).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families.gan.progressive_settings import build_networks  # noqa: E402
from jaxgen.metrics import sample_metrics  # noqa: E402
from jaxgen.metrics.classifier_score import classifier_score, label_statistics  # noqa: E402
from jaxgen.viz import grid  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

MNIST = "idx:../shared/data/mnist-t10k"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
COMMON = ["train.progress=False", "train.eval_every=0", "train.log_every=50",
          "train.final_eval=False", "train.num_samples=0", "train.sample_every=0"]


def configs(data: str, steps: int, quick: bool, fade_images: int = 16_000,
            stable_images: int = 16_000, channels: tuple[int, ...] = ()):
  """(pggan config, DCGAN config) of the same size, data, batch and budget.

  `channels`: pggan's widths per resolution (digits: 4x4, 8x8; MNIST: 4x4 to
  32x32); on digits the DCGAN's generator gets the same, its discriminator the
  reverse; on MNIST the DCGAN's 7x7 and 14x14 levels get the 8x8 and 16x16 widths."""
  name = MNIST if data == "mnist" else "digits"
  pggan = config_lib.get_config("pggan", name)
  dcgan = config_lib.get_config("gan", name)
  if data == "mnist":
    # 4 resolutions (4, 8, 16, 32) for pggan; the DCGAN's two levels (7x7 and
    # 14x14, 28x28 = 2^2 x 7) get pggan's widths at the nearest sizes, 8 and 16.
    widths = tuple(channels) or (64, 64, 32, 16)
    dcgan_overrides = [f"model.generator_channels={widths[1:3]}",
                       f"model.discriminator_channels={widths[2:0:-1]}"]
  else:
    widths = tuple(channels) or (64, 32)
    dcgan_overrides = [f"model.generator_channels={widths}",
                       f"model.discriminator_channels={widths[::-1]}"]
  pg_overrides = [f"model.channels={widths}", f"model.fade_images={fade_images}",
                  f"model.stable_images={stable_images}"]
  if quick:
    quick_widths = (8, 8, 4, 4) if data == "mnist" else (8, 4)   # one per resolution
    pg_overrides = [f"model.channels={quick_widths}", "model.fade_images=64",
                    "model.stable_images=64", "model.ema_decay=0.9"]
    dcgan_overrides = ["model.generator_channels=(8, 4)", "model.discriminator_channels=(4, 8)",
                       "model.ema_decay=0.9"]
  shared = COMMON + ["data.batch_size=16" if quick else "data.batch_size=64"]
  if quick:
    shared += ["model.latent_dim=8", "data.max_examples=400"]
  config_lib.apply_overrides(pggan, shared + pg_overrides + ["train.checkpoint_every=0"])
  config_lib.apply_overrides(dcgan, shared + dcgan_overrides + ["train.checkpoint_every=0"])
  dcgan.model.latent_dim = pggan.model.latent_dim
  for config in (pggan, dcgan):
    config.train.steps = steps
  return pggan, dcgan


def phase_ends(config, spec, steps: int) -> list[tuple[int, str]]:
  """Steps at which a stage's phase ends, with a label, up to `steps`."""
  schedule = build_networks(config, spec).s.schedule
  ends = []
  for stage, start in enumerate(schedule.starts):
    size = 4 * 2**stage
    if stage:
      ends.append((start + schedule.fade_steps // 2, f"{size}x{size} fading in, alpha 0.5"))
      ends.append((start + schedule.fade_steps, f"{size}x{size} faded in"))
    following = schedule.starts[stage + 1] if stage + 1 < len(schedule.starts) else steps
    ends.append((following, f"{size}x{size} end of stage"))
  ends = sorted({s: label for s, label in ends if 0 < s <= steps}.items())
  if not ends or ends[-1][0] != steps:
    ends.append((steps, "final"))
  return ends


def train_growing(config, spec, steps: int, workdir: pathlib.Path, z: np.ndarray,
                  snapshots: bool):
  """pggan in sessions ending at each phase end (one session without `snapshots`):
  (final result, rows of decoded z, their labels, training seconds)."""
  rows, labels, seconds = [], [], 0.0
  ends = phase_ends(config, spec, steps) if snapshots else [(steps, "final")]
  for end, label in ends:
    config.train.steps = end
    started = time.perf_counter()
    result = jaxgen.fit(config, workdir=workdir, resume=bool(rows), overwrite=not rows)
    seconds += time.perf_counter() - started
    rows.append(np.asarray(result.method.decode(result.state, z)))
    labels.append(f"step {end}: {label}")
  return result, rows, labels, seconds


def save_growing(path: pathlib.Path, rows: list[np.ndarray], labels: list[str],
                 value_range) -> None:
  """The growing figure: one row per phase end (labelled), the same z per column."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  image = grid.image_grid(np.concatenate(rows), columns=len(rows[0]),
                          value_range=value_range)
  height, width = image.shape[:2]
  fig = Figure(figsize=(2.4 + 6.0, 6.0 * height / width + 0.3), dpi=80)
  ax = fig.add_axes((0.3, 0.02, 0.69, 0.96))
  ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
  row_height = height / len(rows)
  ax.set_yticks([row_height * (i + 0.5) for i in range(len(rows))], labels, fontsize=8)
  ax.set_xticks([])
  fig.savefig(path)


def classifier(dataset):
  """A logistic regression on the real training images (flattened)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  x, y = data_lib.eval_arrays(dataset, "train")
  return LogisticRegression(max_iter=300, C=0.5).fit(x.reshape(len(x), -1), y)


def lenet_metrics(images: np.ndarray, dataset, real: np.ndarray) -> dict:
  """FID-LeNet (and k-NN precision/recall) of `images` against `real`, the
  training split (the reference `jaxgen eval --metrics fid,pr` uses), through
  jaxgen.metrics: the shipped LeNet of the data (lenet_digits / lenet_mnist)."""
  options = sample_metrics.MetricOptions()
  network = sample_metrics.load_network(
      sample_metrics.choose_network(dataset.spec, options), options, dataset.spec)
  value_range = tuple(float(v) for v in dataset.spec.value_range)
  values, _ = sample_metrics.compare_images(real, images, "fid,pr", network, options,
                                            value_ranges=(value_range, value_range))
  name = network.name
  return {"fid_lenet": values[f"fid_{name}"], "precision": values[f"pr_{name}_precision"],
          "recall": values[f"pr_{name}_recall"], "feature_network": name}


def samples(result, num: int, seed: int) -> np.ndarray:
  chunks = [np.asarray(result.method.sample(result.state, jax.random.PRNGKey(seed + c), 1000))
            for c in range(-(-num // 1000))]
  return np.concatenate(chunks)[:num]


def score(images, clf, dataset, real) -> dict:
  probs = clf.predict_proba(images.reshape(len(images), -1))
  return {"classifier_score": classifier_score(probs), **label_statistics(probs),
          **lenet_metrics(images, dataset, real)}


def parameter_count(result) -> dict:
  return {player: int(sum(np.size(a) for a in jax.tree.leaves(p)))
          for player, p in result.state.params.items()}


def run_seed(data: str, seed: int, args, out: pathlib.Path, clf, dataset,
             real: np.ndarray) -> dict:
  pg_config, dc_config = configs(data, args.steps, args.quick, args.fade_images,
                                 args.stable_images, args.channels)
  for config in (pg_config, dc_config):
    config.train.seed = seed
  spec = dataset.spec
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(100), (10, pg_config.model.latent_dim)))
  folder = out / data / f"seed{seed}"
  # The growing figure for the first seed; the other seeds train in one session.
  snapshots = seed == int(args.seeds.split(",")[0])
  pg_result, rows, labels, pg_seconds = train_growing(pg_config, spec, args.steps,
                                                      folder / "pggan", z, snapshots)
  if snapshots:
    save_growing(folder / "growing.png", rows, labels, spec.value_range)
  started = time.perf_counter()
  dc_result = jaxgen.fit(dc_config)
  dc_seconds = time.perf_counter() - started
  num = 1000 if args.quick else 10_000
  record = {"seed": seed, "steps": args.steps, "growing_rows": labels}
  for name, result, seconds in (("pggan", pg_result, pg_seconds),
                                ("dcgan", dc_result, dc_seconds)):
    images = samples(result, num, seed=1)
    np.savez_compressed(folder / f"samples_{name}.npz", x=images)   # to score again later
    grid.save_image_grid(folder / f"samples_{name}.png", images[:64], columns=8,
                         value_range=spec.value_range)
    record[name] = {**score(images, clf, dataset, real), "train_seconds_under_load": seconds,
                    "parameters": parameter_count(result)}
  (folder / "record.json").write_text(json.dumps(record, indent=2) + "\n")
  return record


def summarize(records: list[dict]) -> dict:
  out = {}
  for name in ("pggan", "dcgan"):
    out[name] = {}
    for key in ("classifier_score", "label_entropy", "fid_lenet", "precision", "recall"):
      values = [r[name][key] for r in records if r[name][key] is not None]
      out[name][key] = ({"mean": float(np.mean(values)), "std": float(np.std(values)),
                         "per_seed": values} if values else None)
  return out



def markdown(data: str, summary: dict, real: dict, steps: int, seeds: list[int]) -> str:
  def cell(entry):
    return "—" if entry is None else f"{entry['mean']:.3f} ± {entry['std']:.3f}"
  lines = [f"{data}, {steps} steps, seeds {seeds} (mean ± std over seeds)", "",
           "| model | classifier score ↑ | label entropy | FID-LeNet ↓ | precision ↑ "
           "| recall ↑ |",
           "|---|---|---|---|---|---|"]
  for name in ("pggan", "dcgan"):
    s = summary[name]
    lines.append(f"| {name} | {cell(s['classifier_score'])} | {cell(s['label_entropy'])} | "
                 f"{cell(s['fid_lenet'])} | {cell(s['precision'])} | {cell(s['recall'])} |")
  lines.append(f"| real test images | {real['classifier_score']:.3f} | "
               f"{real['label_entropy']:.3f} | {real['fid_lenet']:.3f} | "
               f"{real['precision']:.3f} | {real['recall']:.3f} |")
  return "\n".join(lines) + "\n"


def enable_compile_cache(args) -> None:
  if args.compile_cache or not jax.config.jax_compilation_cache_dir:  # keep a caller's
    cache = pathlib.Path(args.compile_cache or pathlib.Path(args.out) / "xla_cache")
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def setup(args) -> tuple:
  """(dataset, classifier of the real training images, training images)."""
  pg_config, _ = configs(args.data, args.steps, args.quick, args.fade_images,
                         args.stable_images, args.channels)
  dataset = data_lib.from_config(pg_config.data)
  x_train, _ = data_lib.eval_arrays(dataset, "train")
  return dataset, classifier(dataset), x_train


def seed_worker(seed: int, args) -> dict:
  """One seed in a worker process (--workers > 1): its own data and classifier
  (deterministic, so the same as the parent's)."""
  enable_compile_cache(args)
  dataset, clf, x_train = setup(args)
  return run_seed(args.data, seed, args, pathlib.Path(args.out), clf, dataset, x_train)


def write_report(args, records: list[dict], real: dict) -> dict:
  out = pathlib.Path(args.out)
  pg_config, _ = configs(args.data, args.steps, args.quick, args.fade_images,
                         args.stable_images, args.channels)
  done = [r["seed"] for r in records]
  report = {"data": pg_config.data.name, "steps": args.steps, "seeds": done,
            "fade_images": pg_config.model.fade_images,
            "stable_images": pg_config.model.stable_images,
            "real_test_images": real, "summary": summarize(records), "runs": records,
            "protocol": "10,000 samples of each EMA generator (1,000 with --quick); "
                        "classifier score: logistic regression on the real training "
                        "images; FID-LeNet and k-NN precision/recall (k=3): the "
                        "data's shipped LeNet features against the real training "
                        "split (jaxgen.metrics.sample_metrics.compare_images)"}
  (out / args.data).mkdir(parents=True, exist_ok=True)
  (out / args.data / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  (out / args.data / "results.md").write_text(
      markdown(args.data, report["summary"], real, args.steps, done))
  return report


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/pggan_digits")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--data", default="digits", choices=("digits", "mnist"))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--steps", type=int, default=0, help="default 3000 (quick: 12)")
  parser.add_argument("--figures", action="store_true", help="also write docs/figures/")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  parser.add_argument("--fade-images", type=int, default=16_000)
  parser.add_argument("--stable-images", type=int, default=16_000)
  parser.add_argument("--channels", default="",
                      help="widths per resolution, e.g. 32,16 on digits (default "
                           "64,32), 32,32,16,8 on MNIST (default 64,64,32,16); the "
                           "DCGAN gets the same per level")
  parser.add_argument("--workers", type=int, default=1,
                      help="processes training the seeds side by side (each seed's "
                           "numbers are the same either way)")
  parser.add_argument("--from-records", action="store_true",
                      help="no training: the report from the seeds whose runs finished "
                           "(OUT/DATA/seed*/record.json, written by --workers runs)")
  parser.add_argument("--compile-cache", default="",
                      help="persistent XLA cache dir (default OUT/xla_cache): the "
                           "sessions and seeds share their programs")
  args = parser.parse_args(argv)
  args.channels = tuple(int(c) for c in args.channels.split(",") if c)
  levels = 2 if args.data == "digits" else 4
  if args.channels and len(args.channels) != levels:
    parser.error(f"--channels takes {levels} widths on {args.data} (one per resolution "
                 f"from 4x4)")
  enable_compile_cache(args)
  args.steps = args.steps or (12 if args.quick else 3000)
  seeds = [int(s) for s in args.seeds.split(",")]
  out = pathlib.Path(args.out)
  dataset, clf, x_train = setup(args)
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  real_probs = clf.predict_proba(x_test.reshape(len(x_test), -1))
  real = {"classifier_score": classifier_score(real_probs), **label_statistics(real_probs),
          "classifier_test_accuracy": float(np.mean(real_probs.argmax(-1) == y_test)),
          **lenet_metrics(x_test, dataset, x_train)}
  if args.from_records:
    files = [out / args.data / f"seed{seed}" / "record.json" for seed in seeds]
    records = [json.loads(f.read_text()) for f in files if f.is_file()]
    if not records:
      parser.error(f"--from-records: no {out / args.data}/seed*/record.json of seeds "
                   f"{args.seeds}")
    report = write_report(args, records, real)
  elif args.workers > 1:
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(args.workers, len(seeds))) as pool:
      records = pool.starmap(seed_worker, [(seed, args) for seed in seeds])
    report = write_report(args, records, real)
  else:
    records = []
    for seed in seeds:   # the results so far are written after every seed
      records.append(run_seed(args.data, seed, args, out, clf, dataset, x_train))
      report = write_report(args, records, real)
  if args.figures:
    first = out / args.data / f"seed{seeds[0]}"
    figures = pathlib.Path(args.figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    for name in ("growing", "samples_pggan", "samples_dcgan"):
      target = figures / f"pggan_{args.data}_{name}.png"
      target.write_bytes((first / f"{name}.png").read_bytes())
      shrink_png(target)
  return report


if __name__ == "__main__":
  main()
