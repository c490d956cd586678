"""Gaussian mixtures by EM on 2-D toy data: ellipses over iterations, and BIC against K.

Run:  python experiments/gmm_toy2d.py [--quick] [--out runs/gmm_toy2d] [--figures]

Protocol:
* Data: `toy2d:grid25` (25 Gaussians, σ = 0.05) and `toy2d:moons`, 10,000
  training points each (2,000 with --quick), generate_seed 0.
* Ellipses: full covariances, K = 25 (grid25) and K = 8 (moons), exact EM
  (one train step = one EM iteration over the whole training set). To show
  EM's work, this panel starts from K random data points (`model.init=random`,
  no Lloyd iterations) rather than the default k-means++; the 2σ ellipses of
  every component are drawn after iterations 0, 1, 3, 10, 30 and 100. The
  method's own `init` and `train_step` run here, jitted, one iteration at a
  time (the functions `jaxgen.fit` runs).
* BIC: for each K, `jaxgen.fit` trains 3 restarts in one program
  (`train.seeds`, k-means++ + 10 Lloyd iterations each, 100 EM iterations);
  BIC = −2 Σ log p(x_i) + p log N on the training set, the minimum over the
  restarts (as sklearn's n_init), with p counted as sklearn does.

Writes ellipses_<data>.png, bic.png, results.json and results.md to --out;
with --figures also small copies in docs/figures/ (gmm_ellipses_grid25.png,
gmm_ellipses_moons.png, gmm_bic.png), the ones docs/classical.md shows.
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
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen.families import gmm  # noqa: E402
from jaxgen.viz.panels import shrink_png  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"
DATASETS = {"toy2d:grid25": 25, "toy2d:moons": 8}   # data: K of the ellipse figure
SNAPSHOTS = (0, 1, 3, 10, 30, 100)
BIC_K = {"toy2d:grid25": (5, 10, 15, 20, 25, 30, 40), "toy2d:moons": (1, 2, 4, 6, 8, 12, 16)}
QUICK_BIC_K = {"toy2d:grid25": (10, 25), "toy2d:moons": (2, 8)}


def base_config(data: str, num_components: int, examples: int, steps: int):
  config = jaxgen.get_config("gmm", data)
  config_lib.apply_overrides(config, [
      f"model.num_components={num_components}", f"data.num_examples={examples}",
      f"data.batch_size={examples}", "train.progress=False", "train.num_devices=1",
      "train.final_eval=False", "train.num_samples=0", "train.checkpoint_every=0",
      f"train.log_every={steps}"])
  config.train.steps = steps
  return config


def ellipse_snapshots(data: str, num_components: int, examples: int,
                      snapshots: tuple[int, ...]) -> tuple[np.ndarray, list[dict], list[float]]:
  """Training points, the parameters after each snapshot iteration, and log p(x) per iteration."""
  config = base_config(data, num_components, examples, max(snapshots))
  config_lib.apply_overrides(config, ["model.init=random", "model.kmeans_iterations=0"])
  dataset = data_lib.from_config(config.data)
  method = gmm.make(config, dataset.spec)
  x, _ = data_lib.eval_arrays(dataset, "train")
  batch = {"x": jnp.asarray(x)}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  params, curve = [], []
  for iteration in range(max(snapshots) + 1):
    if iteration in snapshots:
      params.append(jax.device_get(state.params["gmm"]))
    if iteration < max(snapshots):
      state, metrics = step(state, batch)
      curve.append(float(metrics["log_likelihood"]))
  return np.asarray(x), params, curve


def draw_ellipses(ax, params: dict, colour: str = "tab:red") -> None:
  for weight, mean, cov in zip(params["weights"], params["means"], params["covariances"]):
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    width, height = 2 * 2 * np.sqrt(values[::-1])     # 2σ along each axis
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, color=colour,
                         lw=0.5 + 4 * weight))


def plot_ellipses(path: pathlib.Path, data: str, x: np.ndarray, params: list[dict],
                  snapshots: tuple[int, ...], dpi: int = 110) -> None:
  fig, axes = plt.subplots(1, len(params), figsize=(3 * len(params), 3.2))
  for ax, p, iteration in zip(np.atleast_1d(axes), params, snapshots):
    ax.scatter(x[:3000, 0], x[:3000, 1], s=0.5, color="grey", alpha=0.3)
    draw_ellipses(ax, p)
    ax.set_title(f"{data}, EM iteration {iteration}", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)



def bic_curve(data: str, ks: tuple[int, ...], examples: int, steps: int,
              restarts: int) -> list[dict]:
  rows = []
  for k in ks:
    config = base_config(data, k, examples, steps)
    config.train.seeds = tuple(range(restarts))
    result = jaxgen.fit(config)
    x, _ = data_lib.eval_arrays(data_lib.from_config(config.data), "train")
    count = gmm.num_parameters(num_components=k, dim=x.shape[1], covariance_type="full")
    log_prob = jax.vmap(lambda p: gmm.log_likelihood(  # noqa: B023
        x=jnp.asarray(x), params=p, covariance_type="full"))(result.state.params["gmm"])
    bics = [float(gmm.bic(log_likelihoods=lp, num_params=count)) for lp in log_prob]
    aics = [float(gmm.aic(log_likelihoods=lp, num_params=count)) for lp in log_prob]
    best = int(np.argmin(bics))
    rows.append({"k": k, "num_params": count, "bic": bics[best], "aic": aics[best],
                 "mean_log_likelihood": float(jnp.mean(log_prob[best])),
                 "bic_restarts": bics})
    print(f"{data:14s} K={k:3d}  BIC {bics[best]:12.1f}  AIC {aics[best]:12.1f}", flush=True)
  return rows


def plot_bic(path: pathlib.Path, curves: dict[str, list[dict]], dpi: int = 120) -> None:
  fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.4))
  for ax, (data, rows) in zip(np.atleast_1d(axes), curves.items()):
    ks = [r["k"] for r in rows]
    ax.plot(ks, [r["bic"] for r in rows], "o-", label="BIC")
    ax.plot(ks, [r["aic"] for r in rows], "s--", label="AIC")
    best = min(rows, key=lambda r: r["bic"])["k"]
    ax.axvline(best, color="grey", ls=":", lw=1)
    ax.set_xlabel("components K")
    ax.set_title(f"{data}: BIC chooses K = {best}")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default="runs/gmm_toy2d")
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of the figures into docs/figures/")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  examples = 2000 if args.quick else 10_000
  snapshots = (0, 1, 3, 10) if args.quick else SNAPSHOTS
  steps, restarts = (20, 2) if args.quick else (100, 3)
  started = time.perf_counter()
  report = {"quick": args.quick, "examples": examples, "datasets": {}}
  curves = {}
  for data, k in DATASETS.items():
    x, params, curve = ellipse_snapshots(data, k, examples, snapshots)
    name = data.split(":")[1]
    plot_ellipses(out / f"ellipses_{name}.png", data, x, params, snapshots)
    if args.figures:
      FIGURES.mkdir(parents=True, exist_ok=True)
      plot_ellipses(FIGURES / f"gmm_ellipses_{name}.png", data, x, params, snapshots, dpi=55)
      shrink_png(FIGURES / f"gmm_ellipses_{name}.png")
    curves[data] = bic_curve(data, (QUICK_BIC_K if args.quick else BIC_K)[data],
                             examples, steps, restarts)
    report["datasets"][data] = {
        "ellipse_components": k, "snapshots": list(snapshots),
        "train_log_likelihood_per_iteration": curve,
        "bic": curves[data], "bic_choice": min(curves[data], key=lambda r: r["bic"])["k"]}
  plot_bic(out / "bic.png", curves)
  if args.figures:
    plot_bic(FIGURES / "gmm_bic.png", curves, dpi=70)
    shrink_png(FIGURES / "gmm_bic.png")
  report["seconds"] = time.perf_counter() - started
  (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  lines = [f"{examples} training points; BIC = minimum over {restarts} restarts of "
           f"{steps} EM iterations (full covariances).", ""]
  for data, result in report["datasets"].items():
    lines += [f"### {data}: BIC chooses K = {result['bic_choice']}", "",
              "| K | parameters | mean log p(x) (nats) | BIC | AIC |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['k']} | {r['num_params']} | {r['mean_log_likelihood']:.4f} | "
              f"{r['bic']:.1f} | {r['aic']:.1f} |" for r in result["bic"]]
    lines.append("")
  (out / "results.md").write_text("\n".join(lines))
  return report


if __name__ == "__main__":
  main()
