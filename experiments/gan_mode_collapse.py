"""Mode collapse of GAN objectives and tricks on 2-D mixtures, 8 seeds per setting.

Run:  python experiments/gan_mode_collapse.py [--quick] [--out runs/gan_mode_collapse]

For toy2d:ring8 and toy2d:grid25 and every setting below (objectives with their
default tricks, then the non-saturating GAN with one trick switched on), it
trains 8 seeds together in one compiled program (`train.seeds`, the engine's
multi-seed mode) and reads the engine's mode-coverage evaluation (VEEGAN/PacGAN
protocol: 2,500 samples; high quality within 3σ of a mode; a mode is covered
with at least 20 high-quality samples) at four points of training. A diverging
seed is logged and the others go on (`train.on_nonfinite='continue'`).

Protocol (the same for every setting): MLP generator and discriminator with two
hidden layers of 64 units, an 8-dimensional Gaussian z, batch 64, 5,000
generator steps. Each objective keeps its published optimizer family, betas,
n_critic, λ and clip; every learning rate is its published value times 5
(the published values are for images and 100k+ steps; this budget is 5,000).
Coverage is measured on the raw generator weights; the EMA column re-measures
the final state with the EMA weights (decay 0.999; `jaxgen.core.optim.ema`).

Writes results.json, results.md (mean ± std over seeds), modes_over_training.png,
samples_final_<data>.png (seed 0 of every setting) and
samples_over_training_<data>.png (the engine's sample plots for a few settings).

`--figures` also writes small copies for the docs into docs/figures/
(`--figures-dir`): gan_mode_collapse_modes.png (modes covered per setting, mean
and std over seeds with every seed's value), gan_mode_collapse_final_<data>.png
(seed 0's final samples of every setting) and
gan_mode_collapse_over_training_<data>.png (the SHOWN settings over training).
`--figures-only` writes those from a finished study in `--out` without training:
the numbers from its results.json, the final samples redrawn from each run's
last checkpoint with the study's own sampling keys, the samples over training
from the sample plots the engine saved while training.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import resource
import sys
import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families.gan import objectives as gan_objectives  # noqa: E402
from jaxgen.metrics import mode_coverage  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

DATASETS = ("toy2d:ring8", "toy2d:grid25")
LR_MULTIPLIER = 5.0
# (name, overrides): objectives first, then single tricks on the non-saturating GAN.
SETTINGS = (
    ("non_saturating", []),
    ("minimax", ["model.objective=minimax"]),
    ("lsgan", ["model.objective=lsgan"]),
    ("hinge", ["model.objective=hinge"]),
    ("wgan", ["model.objective=wgan"]),
    ("wgan_gp", ["model.objective=wgan_gp"]),
    ("dragan", ["model.objective=dragan"]),
    ("fgan_kl", ["model.objective=fgan", "model.divergence=kl"]),
    ("fgan_reverse_kl", ["model.objective=fgan", "model.divergence=reverse_kl"]),
    ("+feature_matching", ["tricks.feature_matching=True"]),
    # 16 kernels of 3 dimensions (the paper: 100 x 5 on image features): the
    # pairwise L1 distances cost B·N² per example and dominate the step.
    ("+minibatch_discrimination", ["tricks.minibatch_discrimination=True",
                                   "tricks.minibatch_kernels=16",
                                   "tricks.minibatch_kernel_dim=3"]),
    ("+label_smoothing", ["tricks.label_smoothing=0.1"]),
    ("+historical_averaging", ["tricks.historical_averaging=0.01"]),
    ("+virtual_batch_norm", ["tricks.virtual_batch_norm=True"]),
    ("+consensus", ["tricks.consensus=10.0"]),          # γ of the paper
    ("+consensus_gamma0.1", ["tricks.consensus=0.1"]),  # γ after a pilot on ring8
    ("+r1", ["tricks.r1_gamma=10.0"]),
    ("+ttur", []),  # two time-scale update rule: D_LR_RATIO below
)
# Discriminator learning rate / generator learning rate (Heusel et al. 2017 use
# a faster discriminator; 4 as in Zhang et al. 2019's SAGAN).
D_LR_RATIO = {"+ttur": 4.0}
# Settings whose samples are shown over training.
SHOWN = ("non_saturating", "wgan_gp", "+minibatch_discrimination", "+consensus")
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def study_config(name: str, data: str, overrides: list[str], steps: int, seeds: int,
                 quick: bool, hidden: int = 64):
  """The config of one setting: the study protocol plus the setting's overrides."""
  config = jaxgen.get_config("gan", data)
  config_lib.apply_overrides(config, [
      f"model.generator_hidden=({hidden}, {hidden})",
      f"model.discriminator_hidden=({hidden}, {hidden})",
      "model.latent_dim=8", "data.batch_size=64", "model.sample_from=generator",
      "train.progress=False", "train.on_nonfinite=continue", "train.log_every=500",
      "train.eval_batch_size=2000", "train.checkpoint_every=0", "train.keep_checkpoints=1",
      *overrides])
  objective = config.model.objective
  lr = gan_objectives.OBJECTIVES[objective].optim["learning_rate"] * LR_MULTIPLIER
  config.generator_optim.learning_rate = lr
  config.discriminator_optim.learning_rate = lr * D_LR_RATIO.get(name, 1.0)
  config.train.steps = steps
  config.train.eval_every = max(steps // 4, 1)
  config.train.seeds = tuple(range(seeds))
  if quick:
    config_lib.apply_overrides(config, ["train.coverage_samples=500",
                                        "data.num_examples=2000"])
  # Sample plots over training only for the settings shown; with as many
  # samples as the coverage uses, one compiled sampler serves both.
  shown = name in SHOWN
  config.train.sample_every = max(steps // 4, 1) if shown else 0
  config.train.num_samples = config.train.coverage_samples if shown else 0
  return config


def final_samples(result: jaxgen.RunResult, num: int) -> tuple[np.ndarray, np.ndarray]:
  """[seeds, num, 2] samples of the final raw and EMA weights (one compiled call)."""
  config = config_lib.from_dict(config_lib.to_dict(result.config))
  config.model.sample_from = "ema"
  ema_method = jaxgen.registry.get("gan").make(config, result.spec)
  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), 0xE3A))(
      np.asarray(config.train.seeds))

  @jax.jit
  def both(state, keys):
    raw = jax.vmap(lambda s, k: result.method.sample(s, k, num))(state, keys)
    ema = jax.vmap(lambda s, k: ema_method.sample(s, k, num))(state, keys)
    return raw, ema

  raw, ema = both(result.state, keys)
  return np.asarray(raw), np.asarray(ema)


def mean_std(values: list[float]) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(np.mean(values)), float(np.std(values))


def run_setting(data: str, name: str, overrides: list[str], args, out: pathlib.Path
                ) -> tuple[dict, np.ndarray]:
  config = study_config(name, data, overrides, args.steps, args.seeds, args.quick,
                        args.hidden)
  workdir = out / "runs" / data.replace(":", "_") / name.strip("+")
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=workdir, overwrite=True)
  seconds = time.perf_counter() - started
  evals = [r for r in result.history if r.get("split") == "test"]
  curve = {}
  for record in evals:
    curve.setdefault(record["step"], []).append(record["modes_covered"])
  final = result.metrics["eval"]
  diverged = sorted({r["seed"] for r in result.history if r.get("event") == "nonfinite"})
  raw, ema_samples = final_samples(result, config.train.coverage_samples)
  ema = [mode_coverage(x, result.spec.modes, result.spec.mode_std)["modes_covered"]
         for x in ema_samples]
  row = {
      "setting": name, "dataset": data, "overrides": overrides,
      "objective": config.model.objective,
      "learning_rate": [config.generator_optim.learning_rate,
                        config.discriminator_optim.learning_rate],
      "modes_covered": final["modes_covered"],
      "high_quality_share": final["high_quality_share"],
      "modes_covered_ema": ema,
      "modes_over_training": {str(k): v for k, v in sorted(curve.items())},
      "diverged_seeds": diverged,
      "seconds": seconds,
  }
  for key in ("modes_covered", "high_quality_share", "modes_covered_ema"):
    row[key + "_mean"], row[key + "_std"] = mean_std(row[key])
  return row, raw[0]


def markdown(rows: list[dict], total: float, cpu: float, workers: int) -> str:
  lines = []
  for data in DATASETS:
    subset = [r for r in rows if r["dataset"] == data]
    if not subset:
      continue
    modes = 8 if "ring8" in data else 25
    lines += [f"### {data} ({modes} modes; {len(subset[0]['modes_covered'])} seeds)", "",
              "| setting | modes covered | high-quality share | modes (EMA weights) | "
              "diverged | lr (G, D) |", "|---|---|---|---|---|---|"]
    for r in subset:
      lines.append(
          f"| {r['setting']} | {r['modes_covered_mean']:.2f} ± {r['modes_covered_std']:.2f} "
          f"| {r['high_quality_share_mean']:.3f} ± {r['high_quality_share_std']:.3f} "
          f"| {r['modes_covered_ema_mean']:.2f} ± {r['modes_covered_ema_std']:.2f} "
          f"| {len(r['diverged_seeds'])} | {r['learning_rate'][0]:.2g}, "
          f"{r['learning_rate'][1]:.2g} |")
    lines.append("")
  lines.append(f"Wall time {total:.0f} s with {workers} worker process(es); CPU time "
               f"{cpu:.0f} s (user + system, all processes).")
  return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict], path: pathlib.Path) -> None:
  fig, axes = plt.subplots(1, len(DATASETS), figsize=(12, 4.5), dpi=100)
  for ax, data in zip(np.atleast_1d(axes), DATASETS):
    for r in (r for r in rows if r["dataset"] == data):
      steps = [int(s) for s in r["modes_over_training"]]
      means = [np.mean(v) for v in r["modes_over_training"].values()]
      style = "-" if not r["setting"].startswith("+") else "--"
      ax.plot(steps, means, style, marker="o", ms=3, label=r["setting"])
    ax.set_title(data)
    ax.set_xlabel("generator step")
    ax.set_ylabel("modes covered (mean over seeds)")
  np.atleast_1d(axes)[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_final(samples: dict[str, np.ndarray], spec_modes: np.ndarray, data: str,
               path: pathlib.Path, dpi: int = 90, panel: float = 2.2) -> None:
  names = list(samples)
  cols = 6
  rows = -(-len(names) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, panel * rows), dpi=dpi)
  axes = np.atleast_1d(axes).reshape(-1)
  lim = np.abs(spec_modes).max() * 1.5
  for ax, name in zip(axes, names):
    x = samples[name]
    x = x[np.all(np.isfinite(x), axis=1)]
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5)
    ax.scatter(spec_modes[:, 0], spec_modes[:, 1], s=8, c="tab:red", marker="x")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_title(name, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
  for ax in axes[len(names):]:
    ax.axis("off")
  fig.suptitle(f"{data}: final samples, seed 0 (raw generator)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_over_training(out: pathlib.Path, data: str, path: pathlib.Path, dpi: int = 90
                       ) -> None:
  """Tiles the engine's sample plots (seed 0) of the SHOWN settings over training."""
  panels = []
  for name in SHOWN:
    workdir = out / "runs" / data.replace(":", "_") / name.strip("+")
    files = sorted((workdir / "samples").glob("step_*.png")) + [workdir / "samples.png"]
    files = [f for f in files if f.exists()]
    if files:
      panels.append((name, files))
  if not panels:
    return
  cols = max(len(f) for _, f in panels)
  fig, axes = plt.subplots(len(panels), cols, figsize=(2.6 * cols, 2.6 * len(panels)), dpi=dpi,
                           squeeze=False)
  for row, (name, files) in enumerate(panels):
    for col in range(cols):
      ax = axes[row, col]
      ax.axis("off")
      if col < len(files):
        ax.imshow(plt.imread(files[col]))
        step = "final" if files[col].name == "samples.png" else files[col].stem[5:].lstrip("0")
        ax.set_title(f"{name}, step {step}", fontsize=7)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_mode_bars(rows: list[dict], path: pathlib.Path, dpi: int = 70) -> None:
  """Modes covered per setting at the end of training: bars the mean over seeds,
  error bars ± one std, dots every seed's value (a diverged seed counts 0)."""
  fig, axes = plt.subplots(1, len(DATASETS), figsize=(10, 5.5), dpi=dpi, sharey=True)
  rng = np.random.default_rng(0)   # vertical jitter of the dots only
  for ax, data in zip(np.atleast_1d(axes), DATASETS):
    subset = [r for r in rows if r["dataset"] == data]
    if not subset:
      continue
    y = np.arange(len(subset))
    colours = ["tab:orange" if r["setting"].startswith("+") else "tab:blue" for r in subset]
    ax.barh(y, [r["modes_covered_mean"] for r in subset],
            xerr=[r["modes_covered_std"] for r in subset], color=colours, alpha=0.6,
            capsize=2, error_kw={"lw": 0.8})
    for i, r in enumerate(subset):
      seeds = np.asarray(r["modes_covered"], float)
      ax.scatter(seeds, i + rng.uniform(-0.25, 0.25, len(seeds)), s=5, c="k", zorder=3)
    modes = 8 if "ring8" in data else 25
    ax.set_xlim(0, modes + 0.5)
    ax.set_title(f"{data}: modes covered (of {modes}), {len(subset[0]['modes_covered'])} "
                 "seeds", fontsize=9)
    ax.set_yticks(y, [r["setting"] for r in subset], fontsize=8)
    ax.grid(axis="x", alpha=0.3)
  axes = np.atleast_1d(axes)
  axes[0].invert_yaxis()
  axes[0].set_xlabel("blue: objectives; orange: non-saturating + one trick", fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)



def saved_final_samples(out: pathlib.Path, data: str, names: list[str]
                        ) -> dict[str, np.ndarray]:
  """Seed 0's final raw-generator samples of every setting, from the last checkpoint
  of each run in `out`, with the key `final_samples` used in the study."""
  samples = {}
  for name in tqdm(names, desc=f"{data}: final samples from checkpoints"):
    run = jaxgen.load(out / "runs" / data.replace(":", "_") / name.strip("+"))
    key = jax.random.fold_in(jax.random.PRNGKey(run.seeds[0]), 0xE3A)
    num = run.config.train.coverage_samples
    draw = jax.jit(lambda s, k, run=run, num=num: run.method.sample(s, k, num))
    samples[name] = np.asarray(draw(run.replica(0), key))
  return samples


def docs_figures(out: pathlib.Path, rows: list[dict],
                 samples: dict[str, dict[str, np.ndarray]], figures: pathlib.Path
                 ) -> list[pathlib.Path]:
  """Small copies of the study's figures for the docs (see the module docstring)."""
  figures.mkdir(parents=True, exist_ok=True)
  written = [figures / "gan_mode_collapse_modes.png"]
  plot_mode_bars(rows, written[0])
  for data in DATASETS:
    if not samples.get(data):
      continue
    short = data.split(":")[1]
    modes = data_lib.load_dataset(data, num_examples=100).spec.modes
    final = figures / f"gan_mode_collapse_final_{short}.png"
    plot_final(samples[data], modes, data, final, dpi=60, panel=1.7)
    over = figures / f"gan_mode_collapse_over_training_{short}.png"
    plot_over_training(out, data, over, dpi=50)
    written += [final] + ([over] if over.exists() else [])
  for path in written:
    shrink_png(path)
  return written


def enable_compilation_cache(out: pathlib.Path) -> None:
  if jax.config.jax_compilation_cache_dir is None:
    # ring8 and grid25 runs of a setting compile to the same program: the
    # second is read from this cache instead of being compiled again.
    jax.config.update("jax_compilation_cache_dir", str(out / ".xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_settings(names: list[str], args: argparse.Namespace, out: str
                 ) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
  """Trains the named settings on both datasets (one worker's share)."""
  enable_compilation_cache(pathlib.Path(out))
  rows, samples = [], {}
  for data in DATASETS:
    for name, overrides in SETTINGS:
      if name not in names:
        continue
      row, x = run_setting(data, name, overrides, args, pathlib.Path(out))
      rows.append(row)
      samples.setdefault(data, {})[name] = x
      print(f"{data:14s} {name:26s} modes {row['modes_covered_mean']:5.2f} ± "
            f"{row['modes_covered_std']:4.2f}  hq {row['high_quality_share_mean']:.3f}  "
            f"ema {row['modes_covered_ema_mean']:5.2f}  diverged {len(row['diverged_seeds'])}"
            f"  ({row['seconds']:.0f} s)", flush=True)
  return rows, samples


def cpu_seconds() -> float:
  """User + system CPU time of this process and its finished workers."""
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def figures_from_saved(out: pathlib.Path, figures: pathlib.Path) -> dict:
  """The docs figures of the finished study in `out`, without training."""
  report = json.loads((out / "results.json").read_text())
  rows = report["rows"]
  samples = {data: saved_final_samples(out, data, [r["setting"] for r in rows
                                                   if r["dataset"] == data])
             for data in DATASETS}
  written = docs_figures(out, rows, samples, figures)
  print("wrote " + ", ".join(str(p) for p in written))
  return {**report, "figures": [str(p) for p in written]}


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/gan_mode_collapse")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--steps", type=int, default=0, help="default 5000 (quick: 30)")
  parser.add_argument("--seeds", type=int, default=0, help="default 8 (quick: 2)")
  parser.add_argument("--only", default="", help="comma-separated setting names")
  parser.add_argument("--hidden", type=int, default=64, help="width of both MLPs' two layers")
  parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                      help="processes sharing the settings (default: 2, both cores "
                           "of the reference machine; 1 in --quick)")
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of the figures into --figures-dir")
  parser.add_argument("--figures-only", action="store_true",
                      help="no training: write the docs figures from the finished study "
                           "in --out (its results.json, checkpoints and sample plots)")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  args = parser.parse_args(argv)
  if args.figures_only:
    if not (pathlib.Path(args.out) / "results.json").is_file():
      parser.error(f"--figures-only: {args.out}/results.json does not exist; run the "
                   "study first (without --figures-only)")
    return figures_from_saved(pathlib.Path(args.out), pathlib.Path(args.figures_dir))
  args.steps = args.steps or (30 if args.quick else 5000)
  args.seeds = args.seeds or (2 if args.quick else 8)
  if args.quick:
    args.workers = 1
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  names = [n for n, _ in SETTINGS if not args.only or n in args.only.split(",")]
  if args.quick:
    names = [n for n in names if n == "non_saturating"]
  started, cpu_before = time.perf_counter(), cpu_seconds()
  load_before = os.getloadavg()[0]
  if args.workers > 1:
    # Round-robin over the settings (in their order, the costly ones spread).
    shares = [names[i::args.workers] for i in range(args.workers)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool:
      parts = pool.starmap(run_settings, [(share, args, str(out)) for share in shares])
  else:
    parts = [run_settings(names, args, str(out))]
  by_key = {(r["dataset"], r["setting"]): r for rows, _ in parts for r in rows}
  rows = [by_key[(data, name)] for data in DATASETS for name in names]
  samples = {data: {name: x for _, part in parts for name, x in part.get(data, {}).items()}
             for data in DATASETS}
  total, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
  for data in DATASETS:
    modes = data_lib.load_dataset(data, num_examples=100).spec.modes
    ordered = {name: samples[data][name] for name in names}
    plot_final(ordered, modes, data, out / f"samples_final_{data.split(':')[1]}.png")
    plot_over_training(out, data, out / f"samples_over_training_{data.split(':')[1]}.png")
  plot_curves(rows, out / "modes_over_training.png")
  report = {
      "protocol": __doc__.split("Protocol")[1].split("Writes")[0].strip(),
      "steps": args.steps, "seeds": args.seeds, "hidden": args.hidden,
      "lr_multiplier": LR_MULTIPLIER,
      "workers": args.workers, "wall_seconds": total, "cpu_seconds": cpu,
      "cpu_count": os.cpu_count(),
      "load_average_1min": [load_before, os.getloadavg()[0]],
      "jax_devices": [str(d) for d in jax.devices()],
      "rows": rows,
  }
  (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  (out / "results.md").write_text(markdown(rows, total, cpu, args.workers))
  if args.figures:
    docs_figures(out, rows, samples, pathlib.Path(args.figures_dir))
  print(f"study took {total:.0f} s wall, {cpu:.0f} s CPU; wrote {out}/results.md")
  return report


if __name__ == "__main__":
  main()
