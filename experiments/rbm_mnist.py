"""RBMs (CD-1, CD-25, PCD) and a DBN on binarized MNIST: test log-likelihood by AIS.

  python experiments/rbm_mnist.py [--quick] [--out runs/rbm_mnist] [--epochs 20]
                                  [--epochs-cd25 N] [--epochs-dbn N]
                                  [--learning-rate-long 0.1] [--momentum-long 0]
                                  [--runs rbm_cd1,rbm_pcd,rbm_cd25,dbn,dbn_pcd]
                                  [--ais paper|tenth] [--figures]

Data: `idx:<repo>/../shared/data/mnist-t10k`, MNIST's 10,000 *test* images,
split by jaxgen once and for all into 8,000 training and 2,000 test images
(the split of the other MNIST experiments), binarized once (data.binarize=
'static', a fixed Bernoulli draw of each pixel's grey level, as
Salakhutdinov & Murray 2008's stochastic binarization). S&M 2008 trained on
the 60,000 training images for far more updates (the CD-25 RBM for many more
epochs) and evaluated on the 10,000 test images, so the numbers here are not a
like-for-like reproduction.

For each run it trains through `jaxgen.fit` (its final evaluation runs the
`ais` model-level evaluator: M = 100 runs, S&M's 14,500 temperatures with
--ais paper), and writes OUT/<run>/run (checkpoints, eval.json), and
OUT/summary.json with, per run: the test log-likelihood (mean -F(v) - log Ẑ;
for the DBN the variational lower bound with AIS on the top RBM), log Ẑ with
its standard error and log(Ẑ ± 3σ), the PLL and reconstruction monitors,
training and AIS times (under load on a shared machine, not performance
figures). With --figures: docs/figures/rbm_mnist_filters.png (first 100
filters of the PCD RBM), rbm_mnist_samples.png (its samples from 10,000-step
Gibbs chains from noise, one chain per image), dbn_mnist_samples.png and
dbn_pcd_mnist_samples.png (the `dbn` and `dbn_pcd` runs: a DBN trained by
CD-1, and one by PCD with the PCD RBM's optimizer).
`--quick`: tiny models on `digits` (8x8) for a few steps: a smoke test of the
script, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import config as config_lib  # noqa: E402
from jaxgen.families import boltzmann  # noqa: E402
from jaxgen.families.boltzmann import method as rbm_method  # noqa: E402
from jaxgen.viz import grid  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST = "idx:" + os.path.normpath(REPO / ".." / "shared" / "data" / "mnist-t10k")
FIGURES = REPO / "docs" / "figures"
# Salakhutdinov & Murray 2008, Table 2 (MNIST test set, nats): RBM with 500
# hidden units trained by CD-25: -86.34; the DBN figure is in PUBLISHED_NOTE.
PUBLISHED = {"rbm_cd25": -86.34, "rbm_cd1": None, "rbm_pcd": None, "dbn": None,
             "dbn_pcd": None, "dbm": None}
PUBLISHED_NOTE = ("S&M 2008: RBM-500 CD-25 -86.34 nats (checked against the brief); the "
                  "DBN figure (500-2000, lower bound) is quoted in docs/boltzmann.md "
                  "from memory and marked unverified")
RUNS = {
    "rbm_cd1": ("rbm", ["model.cd_steps=1"]),
    "rbm_pcd": ("rbm", ["model.persistent=True", "model.num_chains=100"]),
    "rbm_cd25": ("rbm", ["model.cd_steps=25"]),
    "dbn": ("dbn", []),
    "dbn_pcd": ("dbn", ["model.persistent=True", "model.num_chains=100"]),
    # CD-1 pre-training (as the CD-1 RBM), then the DBM stage with 100 persistent chains
    "dbm": ("dbm", ["model.persistent=False", "model.num_chains=100"]),
}


def get_config(run: str, args: argparse.Namespace):
  """The config of one run: 500 hidden units (DBN 500-2000) on binarized MNIST."""
  method, overrides = RUNS[run]
  data = "digits" if args.quick else MNIST
  config = config_lib.get_config(method, data)
  per_epoch = 1438 // 100 if args.quick else 8000 // 100
  epochs = args.epochs
  if run == "rbm_cd25" and args.epochs_cd25:
    epochs = args.epochs_cd25
  if method == "dbn":
    epochs = 2 * (args.epochs_dbn or args.epochs)     # one stage per layer
  if method == "dbm":
    epochs = 3 * (args.epochs_dbm or args.epochs)     # two pre-training stages, then the DBM
  steps = max(1, epochs * per_epoch)
  if args.quick:
    size = ["model.hidden=16"] if method == "rbm" else ["model.layers=(16, 16)"]
    ais = ["ais.counts=(10, 20, 30)", "ais.runs=16"]
  else:
    size = ["model.hidden=500"] if method == "rbm" else ["model.layers=(500, 2000)"]
    if method == "dbm":
      size = [f"model.layers={tuple(int(n) for n in args.layers_dbm.split(','))}"]
    counts = (500, 4000, 10000) if args.ais == "paper" else (50, 400, 1000)
    ais = [f"ais.counts={counts}", "ais.runs=100"]
  config_lib.apply_overrides(config, size + ais + overrides + [
      "data.batch_size=100", "data.binarize=static", "data.flatten=True",
      f"optim.learning_rate={args.learning_rate}", "optim.momentum=0.9",
      f"ais.progress={not args.quick}", "model.sample_steps=1000",
      f"train.steps={steps}", f"train.seed={args.seed}", "train.eval_every=0",
      "train.sample_every=0", f"train.checkpoint_every={steps}",
      f"train.log_every={max(1, per_epoch)}", "train.num_samples=0",
      "train.final_eval=True", f"train.progress={not args.quick}"])
  if method in ("dbn", "dbm"):
    config.optim.schedule = "linear"      # over each stage (its own optax state)
  if run in ("rbm_pcd", "rbm_cd25", "dbn_pcd") and args.learning_rate_long:
    # Long negative chains with momentum 0.9 at lr 0.05 stalled PCD on MNIST
    # (the free-energy gap of data and chains grew); plain SGD trains it.
    config.optim.learning_rate = args.learning_rate_long
    config.optim.momentum = args.momentum_long
  if method == "dbm":
    # Probes (2 epochs per stage, PCD pre-training without momentum): lr 0.1 made the
    # DBM diverge (log Z ~ 16,000), lr 0.02 left its reconstruction worse than the
    # bottom RBM's; S&H 2009 trained the DBM stage at 0.005.
    config.model.learning_rate_scale_dbm = args.dbm_stage_scale
    config.model.chain_burn_in = args.dbm_burn_in
  return config


def save_grid(path: pathlib.Path, images: np.ndarray, columns: int) -> None:
  """An image grid as an 8-bit grayscale PNG (matplotlib writes RGBA, 4x the bytes)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel  (matplotlib's dependency)
  grid.save_image_grid(path, images, columns=columns, scale=1)
  Image.open(path).convert("L").save(path, optimize=True)


def filters_figure(params: dict, image_shape, path: pathlib.Path, num: int = 100) -> None:
  """The first `num` hidden units' weights as images, each scaled to its own range."""
  w = np.asarray(params["weights"]).T[:num]
  w = (w - w.min(1, keepdims=True)) / (np.ptp(w, 1, keepdims=True) + 1e-8)
  save_grid(path, w.reshape((-1,) + tuple(image_shape)), columns=10)


def chain_samples(result: jaxgen.RunResult, num: int, steps: int, seed: int) -> np.ndarray:
  """RBM samples from `steps`-sweep Gibbs chains from noise (host loop over compiled chunks)."""
  params = result.state.params["rbm"]
  visible = result.config.model.visible
  return np.asarray(rbm_method.long_chain_samples(
      params, jax.random.PRNGKey(seed), num=num, steps=steps, visible=visible,
      chunk=1000, progress=True))


def run_one(run: str, args: argparse.Namespace) -> tuple[dict, jaxgen.RunResult]:
  """Trains one model; the final evaluation runs AIS."""
  out = pathlib.Path(args.out) / run
  config = get_config(run, args)
  started = time.perf_counter()
  result = jaxgen.fit(config, workdir=out / "run", overwrite=True)
  seconds = time.perf_counter() - started
  ev = result.metrics["eval"]
  per_example = "neg_free_energy" if config.method == "rbm" else "bound_plus_log_z"
  test = [r for r in result.history if r.get("split") == "test"][-1]
  summary = {
      "method": config.method, "overrides": RUNS[run][1],
      "model": test["protocol"]["model"], "steps": int(config.train.steps),
      "epochs": int(config.train.steps) * 100 / result.spec.num_train,
      "test_log_likelihood" if config.method == "rbm" else "test_lower_bound":
          boltzmann.log_likelihood_of(ev, per_example=per_example),
      "log_z": ev["ais_log_z"], "log_z_stderr": ev["ais_log_z_stderr"],
      "log_z_minus_3se": ev["ais_log_z_minus_3se"], "log_z_plus_3se": ev["ais_log_z_plus_3se"],
      "log_w_std": ev["ais_log_w_std"], "ais_ess": ev["ais_ess"],
      "ais": test["protocol"]["ais"],
      "reconstruction_error": ev["reconstruction_error"],
      "pseudo_log_likelihood": ev.get("pseudo_log_likelihood"),
      "num_test_images": test["protocol"]["num_examples"],
      "published": PUBLISHED[run], "seconds_train_and_eval_under_load": seconds,
  }
  key = "test_log_likelihood" if config.method == "rbm" else "test_lower_bound"
  print(f"{run}: {key} {summary[key]:.2f} nats (log Z {summary['log_z']:.2f} "
        f"± {summary['log_z_stderr']:.3f})", flush=True)
  return summary, result


def main(argv: list[str] | None = None) -> dict:
  """Runs the experiment and writes OUT/summary.json (and figures with --figures)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny smoke-test run on digits")
  parser.add_argument("--out", default="runs/rbm_mnist")
  parser.add_argument("--runs", default="rbm_cd1,rbm_pcd,rbm_cd25,dbn")
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--epochs-cd25", type=int, default=0, help="0: --epochs")
  parser.add_argument("--epochs-dbn", type=int, default=0, help="per layer; 0: --epochs")
  parser.add_argument("--epochs-dbm", type=int, default=0, help="per stage; 0: --epochs")
  parser.add_argument("--dbm-stage-scale", type=float, default=0.02,
                      help="the DBM stage's learning rate / --learning-rate (pre-training's)")
  parser.add_argument("--dbm-burn-in", type=int, default=500,
                      help="Gibbs sweeps of the DBM's chains (from noise) when its stage starts")
  parser.add_argument("--layers-dbm", default="500,1000", help="the DBM's hidden layers")
  parser.add_argument("--learning-rate", type=float, default=0.02)
  parser.add_argument("--learning-rate-long", type=float, default=0.1,
                      help="PCD and CD-25 (0: --learning-rate and momentum 0.9)")
  parser.add_argument("--momentum-long", type=float, default=0.0)
  parser.add_argument("--ais", default="paper", choices=("paper", "tenth"))
  parser.add_argument("--sample-steps", type=int, default=10_000)
  parser.add_argument("--figures", action="store_true")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.quick:
    args.epochs, args.sample_steps = 1, 20
  report = {"data": "digits (quick)" if args.quick else MNIST,
            "data_note": "trained on 8,000 of MNIST's 10,000 test images, evaluated on the "
                         "other 2,000 (static binarization); S&M 2008 trained on the 60,000 "
                         "training images and evaluated on the 10,000 test images",
            "published_note": PUBLISHED_NOTE, "quick": args.quick, "runs": {}}
  figures = pathlib.Path(args.figures_dir)
  for run in [r for r in args.runs.split(",") if r]:
    report["runs"][run], result = run_one(run, args)
    if args.figures and run == "rbm_pcd":
      shape = result.spec.image_shape
      filters_figure(result.state.params["rbm"], shape, figures / "rbm_mnist_filters.png")
      samples = chain_samples(result, 50, args.sample_steps, args.seed)
      save_grid(figures / "rbm_mnist_samples.png", samples.reshape((-1,) + tuple(shape)),
                columns=10)
    if args.figures and run.startswith(("dbn", "dbm")):
      samples = np.asarray(result.method.sample(result.state, jax.random.PRNGKey(args.seed), 50))
      save_grid(figures / f"{run}_mnist_samples.png",
                samples.reshape((-1,) + tuple(result.spec.image_shape)), columns=10)
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(args.out) / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
  return report


if __name__ == "__main__":
  main()
