"""Super-resolution of digits: bicubic vs SRResNet vs SRGAN (Ledig et al. 2017's table).

Run:  python experiments/srgan_digits.py [--quick] [--out runs/srgan_digits]
          [--data digits,mnist] [--seeds 0,1,2] [--steps N] [--mnist-steps N]
          [--models srresnet,srgan,srgan_lenet] [--figures]

For each dataset and seed it trains, with the same generator, data, batch and
number of steps:

  srresnet     the generator on the pixel MSE alone (model.adversarial_weight=0)
  srgan        pixel MSE + 1e-3 · the non-saturating adversarial loss (SRGAN-MSE)
  srgan_lenet  the LeNet feature MSE (conv1 activations, the VGG loss's stand-in)
               + 1e-3 · adversarial (SRGAN-VGG54's analogue)

and scores each, next to bicubic upsampling (jax.image.resize 'bicubic') and
the real high-resolution images, on the whole test split: PSNR and SSIM
(jaxgen.metrics.image_quality, images in [0, 1], mean over images), accuracy
of the shipped digit LeNet on the upsampled images and FID-LeNet of the
upsampled images against the real test images (jaxgen.metrics.lenet, fid).
The low-resolution input is the mean of each scale x scale block of the
test image (srgan_losses.box_downsample). Digits: 2x, 4x4 -> 8x8 (sklearn
digits, the fixed 1,438/359 split). MNIST: 4x, 7x7 -> 28x28 on
idx:../shared/data/mnist-t10k (the fixed 8,000/2,000 split of MNIST's t10k
file: trained on the 8,000, scored on the 2,000). Deviation from the paper:
SRGAN is trained from scratch for the same steps, not initialised from the
trained SRResNet.

Writes results.json, results.md and a grid per dataset (rows: low-res shown
nearest-neighbour, bicubic, SRResNet, SRGAN(s), high-res) into --out; with
--figures the grids also go, small, to docs/figures/srgan_{digits,mnist}.png.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families.gan import srgan_losses  # noqa: E402
from jaxgen.metrics import fid, image_quality, lenet  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

MNIST = "idx:../shared/data/mnist-t10k"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
COMMON = ["train.progress=False", "train.eval_every=0", "train.log_every=100",
          "train.final_eval=False", "train.num_samples=0", "train.sample_every=0",
          "train.checkpoint_every=0"]
MODELS = {
    "srresnet": ["model.adversarial_weight=0.0"],
    "srgan": ["model.adversarial_weight=0.001"],
    "srgan_lenet": ["model.adversarial_weight=0.001", "model.pixel_weight=0.0",
                    "model.feature_weight=1.0", "model.feature_layer=conv1"],
}
LABELS = {"bicubic": "bicubic", "srresnet": "SRResNet (MSE)", "srgan": "SRGAN (MSE + adv)",
          "srgan_lenet": "SRGAN (LeNet feat + adv)", "high_res": "high-res (real)"}


def config_for(data: str, model: str, steps: int, seed: int, quick: bool):
  config = config_lib.get_config("srgan", MNIST if data == "mnist" else "digits")
  overrides = COMMON + MODELS[model]
  if quick:
    overrides += ["model.features=8", "model.residual_blocks=1",
                  "model.discriminator_channels=(8,)", "model.discriminator_hidden=16",
                  "data.batch_size=8", "data.max_examples=200"]
  config_lib.apply_overrides(config, overrides)
  config.train.steps = steps
  config.train.seed = seed
  return config


def upsample_all(result, low: np.ndarray, chunk: int = 250) -> np.ndarray:
  """G's outputs for every low-resolution image, in compiled chunks."""
  fn = jax.jit(lambda s, lo: result.method.sample(s, jax.random.PRNGKey(0), lo.shape[0],
                                                  low_res=lo))
  parts = []
  for start in range(0, len(low), chunk):
    part = low[start:start + chunk]
    pad = chunk - len(part)
    padded = np.concatenate([part, np.repeat(part[:1], pad, 0)]) if pad else part
    parts.append(np.asarray(fn(result.state, padded))[:len(part)])
  return np.concatenate(parts)


def scores(images: np.ndarray, real: np.ndarray, labels: np.ndarray, net, value_range,
           real_features: np.ndarray) -> dict:
  low, high = value_range
  unit, unit_real = (images - low) / (high - low), (real - low) / (high - low)
  window = min(7, real.shape[1] - (1 - real.shape[1] % 2))
  out = lenet.outputs(net, images, value_range=value_range)
  psnr = float(np.mean(image_quality.psnr(unit, unit_real, data_range=1.0)))
  return {
      "psnr": psnr if np.isfinite(psnr) else None,    # None: the real images themselves
      "ssim": float(np.mean(image_quality.ssim(unit, unit_real, data_range=1.0,
                                               win_size=window))),
      "lenet_accuracy": float(np.mean(out["logits"].argmax(-1) == labels)),
      # max(0, .): the real images against themselves give -1e-12 of round-off.
      "fid_lenet": max(0.0, float(fid.fid_from_features(out["features"], real_features))),
  }


def run_dataset(data: str, seeds: list[int], steps: int, models: list[str], quick: bool,
                out: pathlib.Path, figures: bool) -> dict:
  name = MNIST if data == "mnist" else "digits"
  base = config_lib.get_config("srgan", name)
  dataset = data_lib.from_config(base.data)
  value_range = tuple(float(v) for v in dataset.spec.value_range)
  scale = int(base.model.scale)
  real, labels = data_lib.eval_arrays(dataset, "test")
  low = np.asarray(srgan_losses.box_downsample(jnp.asarray(real), scale))
  net = lenet.load("mnist" if data == "mnist" else "digits")
  real_features = lenet.features(net, real, value_range=value_range)
  fixed = {"bicubic": np.asarray(srgan_losses.bicubic_upsample(jnp.asarray(low), scale,
                                                               value_range)),
           "high_res": real}
  record = {"data": name, "scale": scale, "steps": steps, "seeds": seeds,
            "test_images": int(len(real)),
            "fixed": {k: scores(v, real, labels, net, value_range, real_features)
                      for k, v in fixed.items()},
            "per_seed": {m: [] for m in models}, "train_seconds_under_load": {}}
  shown = {k: v[:10] for k, v in fixed.items()}
  for seed in seeds:
    for model in tqdm(models, desc=f"{data} seed {seed}"):
      started = time.perf_counter()
      result = jaxgen.fit(config_for(data, model, steps, seed, quick))
      record["train_seconds_under_load"][f"{model}_seed{seed}"] = time.perf_counter() - started
      images = upsample_all(result, low)
      record["per_seed"][model].append(scores(images, real, labels, net, value_range,
                                              real_features))
      tqdm.write(f"{data} seed {seed} {model}: {record['per_seed'][model][-1]} "
                 f"({record['train_seconds_under_load'][f'{model}_seed{seed}']:.0f} s)")
      if seed == seeds[0]:
        shown[model] = images[:10]
      # What is done so far, should a long run be stopped.
      (out / f"partial_{data}.json").write_text(json.dumps(record, indent=2))
  record["summary"] = {
      m: {k: {"mean": float(np.mean([r[k] for r in runs])),
              "std": float(np.std([r[k] for r in runs]))} for k in runs[0]}
      for m, runs in record["per_seed"].items()}
  rows = [np.repeat(np.repeat(low[:10], scale, 1), scale, 2), shown["bicubic"]]
  rows += [shown[m] for m in models] + [shown["high_res"]]
  for path in [out / f"grid_{data}.png"] + ([FIGURES / f"srgan_{data}.png"]
                                           if figures else []):
    grid.save_image_grid(path, np.concatenate(rows), columns=10, value_range=value_range,
                         scale=max(1, 320 // (10 * real.shape[1])) if path.parent == FIGURES
                         else 0)
  record["grid_rows"] = ["low-res (nearest)", "bicubic"] + [LABELS[m] for m in models] + [
      "high-res"]
  return record


def markdown(record: dict) -> str:
  lines = [f"{record['data']}, {record['scale']}x, {record['steps']} steps, seeds "
           f"{record['seeds']}, {record['test_images']} test images (mean ± std over seeds)",
           "", "| model | PSNR (dB) | SSIM | LeNet accuracy | FID-LeNet |", "|---|---|---|---|---|"]
  for name, values in record["fixed"].items():
    if name == "high_res":
      continue
    lines.append(f"| {LABELS[name]} | {values['psnr']:.2f} | {values['ssim']:.3f} | "
                 f"{values['lenet_accuracy']:.3f} | {values['fid_lenet']:.2f} |")
  for name, summary in record["summary"].items():
    cells = [f"{summary[k]['mean']:{f}} ± {summary[k]['std']:{f}}" for k, f in
             (("psnr", ".2f"), ("ssim", ".3f"), ("lenet_accuracy", ".3f"), ("fid_lenet", ".2f"))]
    lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
  real = record["fixed"]["high_res"]
  lines.append(f"| {LABELS['high_res']} | ∞ | 1 | {real['lenet_accuracy']:.3f} | "
               f"{real['fid_lenet']:.2f} |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny models, few steps (tests)")
  parser.add_argument("--out", default="runs/srgan_digits")
  parser.add_argument("--data", default="digits,mnist")
  parser.add_argument("--seeds", default=None, help="default 0,1,2 (0 with --quick)")
  parser.add_argument("--steps", type=int, default=None, help="digits steps (3000)")
  parser.add_argument("--mnist-steps", type=int, default=None, help="MNIST steps (1500)")
  parser.add_argument("--models", default="srresnet,srgan,srgan_lenet")
  parser.add_argument("--figures", action="store_true")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
  models = args.models.split(",")
  report = {}
  for data in args.data.split(","):
    steps = (args.mnist_steps or (3 if args.quick else 1500)) if data == "mnist" else (
        args.steps or (3 if args.quick else 3000))
    report[data] = run_dataset(data, seeds, steps, models, args.quick, out, args.figures)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text("\n".join(markdown(r) for r in report.values()))
    print(markdown(report[data]))
  return report


if __name__ == "__main__":
  main()
