"""`jaxgen` on the command line: argument parsing only; the work is in jaxgen.api.

  jaxgen list
  jaxgen train METHOD [--data NAME] [--config FILE.py] [--set key=value ...]
               [--workdir DIR] [--seed N | --seeds 0-7] [--steps N]
               [--resume | --overwrite]
  jaxgen train --workdir DIR --resume [--steps N]   (the run's own settings)
  jaxgen sample --workdir DIR [--num 64] [--seed N] [--step N] [--length T] [--set key=value ...]
                [--labels 0,1,2 | --class C] [--guidance W] [--out FILE.png|FILE.npz]
                [--complete IMAGES.npz] [--low-res LOW.npz]
  jaxgen eval --workdir DIR [--seed N] [--step N] [--num N] [--set key=value ...]
              [--metrics fid,kid,is,pr,dc,modes] [--out FILE.json]
  jaxgen fid A B [--network inception|lenet_mnist|lenet_digits] [--metrics fid,kid]
  jaxgen project --workdir DIR --images FILE.npz --out OUT.npz [--steps 200]
                 [--restarts 4] [--encoder-steps N] [--feature-weight W] [--seed N]
  jaxgen launch --processes N [--coordinator HOST:PORT] -- train ...   (docs/scaling.md)

Compiled programs are kept in a persistent compilation cache
($JAXGEN_COMPILE_CACHE, else $XDG_CACHE_HOME/jaxgen/xla or ~/.cache/jaxgen/xla),
so a second run of the same model starts faster; --no-compile-cache or
JAXGEN_COMPILE_CACHE=off turns it off (jaxgen/_compile_cache.py).

Bad input exits with status 2 and one line naming the problem and the valid
choices; a run stopped by NaN/Inf exits with 1; SIGTERM/SIGINT save a checkpoint
and exit with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import pathlib
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from jaxgen.errors import NonFiniteError, TrainingInterrupted, UserError  # noqa: E402 pylint: disable=wrong-import-position


def _step(text: str) -> int | str:
  """--step: a step number or 'best'."""
  if text == "best":
    return text
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"must be a step number or 'best', got {text!r}") from None


class _Parser(argparse.ArgumentParser):
  """argparse that reports bad usage as one line and exit status 2."""

  def error(self, message: str):
    self.exit(2, f"jaxgen: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
  parser = _Parser(prog="jaxgen", description="Deep generative models in JAX.")
  sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

  sub.add_parser("list", help="list methods and datasets")

  train = sub.add_parser("train", help="train a method")
  train.add_argument("method", nargs="?", default=None,
                     help="method name (see `jaxgen list`); with --resume, the "
                          "run's own when left out")
  train.add_argument("--data", help="dataset name (see `jaxgen list`)")
  train.add_argument("--config", help="config file whose get_config() returns a ConfigDict")
  train.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a config value (repeatable)")
  train.add_argument("--workdir", help="run directory (default: runs/METHOD-DATA-TIME)")
  seeds = train.add_mutually_exclusive_group()
  seeds.add_argument("--seed", type=int, help="the run's seed")
  seeds.add_argument("--seeds", help="train one replica per seed in one program: 0-7 or 1,3,5")
  train.add_argument("--steps", type=int, help="number of train steps")
  mode = train.add_mutually_exclusive_group()
  mode.add_argument("--resume", action="store_true",
                    help="continue the run in --workdir from its latest checkpoint, "
                         "with its saved method, data, config and seeds (flags given "
                         "must agree with them; --steps N extends the run)")
  mode.add_argument("--overwrite", action="store_true",
                    help="replace the run in --workdir")
  train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

  sample = sub.add_parser(
      "sample", help="draw samples from a trained run",
      description="Draw samples from a trained run's checkpoint (the newest "
                  "restorable one, or --step N).")
  sample.add_argument("--workdir", required=True)
  sample.add_argument("--num", type=int, default=None,
                      help="number of samples (64); with --complete, the first NUM "
                           "images of the file (default: all)")
  sample.add_argument("--seed", type=int, default=0, help="sampling key seed (0)")
  sample.add_argument("--step", type=_step, default=None,
                      help="the checkpoint to sample from (default: the newest; 'best': the one kept by train.keep_best)")
  sample.add_argument("--replica", type=int, default=0,
                      help="which seed's replica of a multi-seed run")
  sample.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="change a sampling-time setting, checked against the "
                           "method's settings: e.g. model.sampler=ddim, "
                           "model.sample_steps=50, model.eta=0.5 (diffusion), "
                           "model.sample_mode=mean (VAE); training settings and "
                           "settings that change the parameters' shapes are refused")
  labels = sample.add_mutually_exclusive_group()
  labels.add_argument("--labels", help="conditional models: one label per sample, "
                                       "e.g. 0,1,2 (default: 0, 1, 2, ... cycling)")
  labels.add_argument("--class", dest="class_", type=int, metavar="C",
                      help="conditional models: every sample of class C")
  sample.add_argument("--guidance", type=float, default=None, metavar="W",
                      help="guided diffusion: the guidance weight (classifier-free) "
                           "or scale (classifier); default: model.guidance_scale")
  sample.add_argument("--source", metavar="FILE.npz", default=None,
                      help="image-to-image models (pix2pix): translate the images of "
                           "array 'source' (or 'x') of FILE.npz, in the data's value "
                           "range; --num takes the first N (default: all)")
  sample.add_argument("--length", type=int, default=None, metavar="T",
                      help="signals (wavenet): samples per generated signal "
                           "(default: the data's length)")
  sample.add_argument("--out", default=None,
                      help="FILE.png (grid) or FILE.npz (arrays); default: "
                           "WORKDIR/samples_seedN.png (completions_seedN.png). Signals "
                           "with a sample rate are also written as FILE_wav/sample_000.wav, ...")
  sample.add_argument("--low-res", metavar="FILE.npz", default=None,
                      help="super-resolution (srgan): upsample the images x [N, h, w, C] "
                           "of FILE.npz (in the data range, h and w the data's size "
                           "divided by model.scale); the first --num of them")
  sample.add_argument("--complete", metavar="FILE.npz", default=None,
                      help="complete images instead (pixelcnn): x [N, H, W, C] in the "
                           "data range and an optional mask (1 = observed; default: "
                           "the top half); writes a grid of originals, masked inputs "
                           "and completions (.png) and the completions (.npz), both "
                           "named after --out")

  evaluate = sub.add_parser(
      "eval", help="evaluate a trained run on its test split",
      description="Evaluate a trained run's checkpoint on its test split and "
                  "write the numbers with their protocol to WORKDIR/eval/<what was "
                  "asked>.json (e.g. eval/seed3.json; eval/default.json without "
                  "options); the run's own eval.json is never replaced.")
  evaluate.add_argument("--workdir", required=True)
  evaluate.add_argument("--seed", type=int, default=None,
                        help="evaluation key seed (default: the run's own keys)")
  evaluate.add_argument("--step", type=_step, default=None,
                        help="the checkpoint to evaluate (default: the newest; 'best': the one kept by train.keep_best)")
  evaluate.add_argument("--num", type=int, default=None,
                        help="evaluate the first NUM test examples (default: all); "
                             "each keeps its own key; with --metrics: draw NUM "
                             "samples (default 10000)")
  evaluate.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="change an evaluation-time setting, e.g. "
                             "model.eval_importance_samples=5000 (VAE) or "
                             "train.eval_batch_size=256; training settings and "
                             "settings that change the parameters' shapes are refused")
  evaluate.add_argument("--metrics", default=None, metavar="NAMES",
                        help="sample metrics instead of the method's own evaluation, "
                             "comma-separated: fid, kid, is, pr (precision/recall), "
                             "dc (density/coverage), modes; named after the feature "
                             "network (fid_lenet_digits, fid_inception, ...). Set "
                             "metrics.inception_weights=PATH, metrics.network, "
                             "metrics.chunk_size, metrics.reference_split with --set")
  evaluate.add_argument("--out", default=None,
                        help="FILE.json to write (default: WORKDIR/eval/<what was "
                             "asked>.json)")
  project = sub.add_parser(
      "project", help="project images onto a trained generator (iGAN)",
      description="Find codes z whose generated images reconstruct the given ones "
                  "(Adam from several restarts, the best kept; docs/gan_uses.md). "
                  "Writes OUT.npz (z, reconstructions, x, losses_*) and OUT.png (rows "
                  "of originals and projections).")
  project.add_argument("--workdir", required=True)
  project.add_argument("--images", required=True, metavar="FILE.npz",
                       help="x [N, *data shape] in the data's range (and labels [N] "
                            "for conditional generators)")
  project.add_argument("--out", required=True, metavar="OUT.npz")
  project.add_argument("--steps", type=int, default=200, help="Adam steps (200)")
  project.add_argument("--restarts", type=int, default=4,
                       help="starting codes per image; the best is kept (4)")
  project.add_argument("--learning-rate", type=float, default=0.05, help="Adam's (0.05)")
  project.add_argument("--feature-weight", type=float, default=0.0, metavar="W",
                       help="weight of the digit-LeNet feature loss (0: pixels only)")
  project.add_argument("--prior-weight", type=float, default=0.0,
                       help="weight of mean(z^2)/2 (0)")
  project.add_argument("--encoder-steps", type=int, default=0, metavar="N",
                       help="first train an encoder on the generator's samples for N "
                            "steps and start restart 0 at its codes (0: no encoder)")
  project.add_argument("--seed", type=int, default=0, help="key of restarts and encoder (0)")
  project.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
  project.add_argument("--replica", type=int, default=0,
                       help="which seed's replica of a multi-seed run")
  for command in (train, sample, evaluate, project):
    command.add_argument(
        "--no-compile-cache", action="store_true",
        help="do not keep compiled programs in the persistent compilation cache "
             "($JAXGEN_COMPILE_CACHE, else $XDG_CACHE_HOME/jaxgen/xla or "
             "~/.cache/jaxgen/xla; JAXGEN_COMPILE_CACHE=off also turns it off)")

  launch = sub.add_parser(
      "launch", help="run a command as N processes of one multi-process run",
      description="Start N local processes of one run (jax.distributed): "
                  "`jaxgen launch --processes 2 -- train vae --workdir runs/v`. "
                  "Forwards SIGINT/SIGTERM to all; exits with the first failure's "
                  "status. See docs/scaling.md for SLURM and several machines.")
  launch.add_argument("--processes", type=int, required=True, help="number of processes")
  launch.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                      help="coordinator address (default: 127.0.0.1 and a free port)")
  launch.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                      help="after one process fails, how long the others may take "
                           "to end before they are killed (30)")
  launch.add_argument("child", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                      help="a jaxgen command (train ...) or any program (python x.py)")

  fid = sub.add_parser(
      "fid", help="FID between two folders of images (or .npz files)",
      description="Compute FID (or other --metrics) between two folders of PNG/JPEG "
                  "images or two .npz files holding an array 'x', as pytorch-fid's "
                  "command does. A is taken as the real set (precision/recall).")
  fid.add_argument("path_a", metavar="A")
  fid.add_argument("path_b", metavar="B")
  fid.add_argument("--network", default="inception",
                   help="inception (pytorch-fid's; needs --set "
                        "metrics.inception_weights=PATH or $JAXGEN_INCEPTION_WEIGHTS), "
                        "lenet_mnist (28x28 grey) or lenet_digits (8x8 grey)")
  fid.add_argument("--metrics", default="fid",
                   help="comma-separated: fid (default), kid, is (of B), pr, dc")
  fid.add_argument("--seed", type=int, default=0, help="KID subset seed (0)")
  fid.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="metrics.* settings, e.g. "
                                             "metrics.inception_weights=PATH")
  return parser


def _default_workdir(method: str, data: str) -> str:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in data).strip("-")
  return str(pathlib.Path("runs") / f"{method}-{safe}-{stamp}")


def _list() -> None:
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  print("methods:")
  for name, description in api.list_methods().items():
    print(f"  {name:<18} {description}")
  print("datasets:")
  for name, description in api.list_datasets().items():
    print(f"  {name:<18} {description}")


def _cli_spelling(name: str, value: Any) -> str:
  """An argument of `jaxgen train` as the user typed it, for error messages."""
  if name == "method":
    return f"method {value}"
  if name == "overrides":
    return f"--set {value}"
  if name == "seeds":
    return ("no --seeds" if not value else
            f"--seeds {','.join(map(str, value)) if isinstance(value, list) else value}")
  return f"--{name} {value}"


def _train_config(args: argparse.Namespace):
  """The config to train: the saved run's with --resume, else built from the flags."""
  from jaxgen import api, config as config_lib  # pylint: disable=import-outside-toplevel
  from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
  if args.seeds is not None and not args.seeds.strip():
    raise ConfigError("--seeds is empty; give a range like 0-7 or a list like 1,3,5")
  seeds = config_lib.parse_seed_range(args.seeds) if args.seeds else None
  if args.resume and not args.workdir:
    raise ConfigError("--resume needs the --workdir of the run to continue")
  if args.resume and api.has_run(args.workdir):
    return api.resume_config(args.workdir, method=args.method, data=args.data,
                             config=args.config, overrides=args.overrides,
                             steps=args.steps, seed=args.seed, seeds=seeds,
                             spelling=_cli_spelling)
  if args.method is None:
    raise ConfigError(
        "a METHOD is needed to start a run (see `jaxgen list`)"
        + (f"; {args.workdir!r} holds no run to resume" if args.resume else
           "; it may be left out only with --resume"))
  if args.resume:
    # The first line of output, so that a mistyped workdir is noticed at once.
    print(f"no run to resume in {args.workdir} (no checkpoint): starting a new "
          f"{args.method} run", flush=True)
  return api.build_config(args.method, data=args.data, config=args.config,
                          overrides=args.overrides, steps=args.steps,
                          seed=args.seed, seeds=seeds)


def _train(args: argparse.Namespace) -> int:
  from jaxgen.engine import parallel  # pylint: disable=import-outside-toplevel
  # Before anything can start a JAX backend (a no-op for one process).
  parallel.maybe_initialize_distributed()
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  config = _train_config(args)
  if args.no_progress:
    config.train.progress = False
  workdir = args.workdir or _default_workdir(config.method, config.data.name)
  try:
    result = api.fit(config, workdir=workdir, resume=args.resume,
                     overwrite=args.overwrite)
  except TrainingInterrupted as stopped:
    # The loop has printed the step it stopped at and that it saved it.
    if parallel.is_main_process():
      print(f"workdir: {stopped.workdir}")
    return stopped.exit_code
  main = parallel.is_main_process()   # process 0 reports
  if main:
    print(f"workdir: {result.workdir}")
  if not main:
    return 0
  if result.metrics.get("eval"):
    print("eval: " + json.dumps(result.metrics["eval"]))
  for name in ("samples.png", "reconstructions.png", "eval.json", "metrics.jsonl"):
    if (result.workdir / name).exists():
      print(f"wrote {result.workdir / name}")
  return 0


def _labels(args: argparse.Namespace) -> dict[str, Any]:
  """The conditioning keyword arguments of `jaxgen sample`."""
  from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
  conditioning: dict[str, Any] = {}
  if args.labels is not None:
    try:
      conditioning["labels"] = [int(v) for v in args.labels.split(",")]
    except ValueError:
      raise ConfigError(f"--labels expects integers like 0,1,2; got "
                        f"{args.labels!r}") from None
    if len(conditioning["labels"]) == 1:
      conditioning["labels"] = conditioning["labels"][0]
  elif args.class_ is not None:
    conditioning["labels"] = args.class_
  if args.guidance is not None:
    conditioning["guidance"] = args.guidance
  if getattr(args, "length", None) is not None:
    conditioning["length"] = args.length
  return conditioning


def _complete(args: argparse.Namespace, out: pathlib.Path) -> int:
  """`jaxgen sample --complete FILE`: a grid (.png) and the completions (.npz)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  from jaxgen import viz  # pylint: disable=import-outside-toplevel
  from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
  grid, arrays = out.with_suffix(".png"), out.with_suffix(".npz")
  api.check_writable(arrays, "--out")
  conditioning = _labels(args)
  images, mask = api.read_completion_file(args.complete)
  if args.num is not None:
    if args.num < 1:
      raise ConfigError(f"--num must be at least 1, got {args.num}")
    images, mask = images[:args.num], (None if mask is None else mask[:args.num])
  run = api.load(args.workdir, args.step)
  completions, mask = api.complete(run, images, mask, seed=args.seed, replica=args.replica,
                                   overrides=args.overrides, **conditioning)
  images = np.asarray(images, np.float32).reshape(completions.shape)
  grid.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(arrays, completions=completions, x=images, mask=mask,
                      seed=args.seed, step=run.step)
  viz.write_completions(grid, images, mask, completions, run.spec)
  print(f"wrote {grid} and {arrays} ({len(completions)} completions, step {run.step}, "
        f"seed {args.seed})")
  return 0


def _sample(args: argparse.Namespace) -> int:
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  from jaxgen import viz  # pylint: disable=import-outside-toplevel
  from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
  stem = "completions" if args.complete else "samples"
  out = pathlib.Path(args.out or pathlib.Path(args.workdir) / f"{stem}_seed{args.seed}.png")
  if out.suffix not in (".png", ".npz"):
    raise ConfigError(f"--out must end in .png or .npz, got {str(out)!r}")
  api.check_writable(out, "--out")
  if args.complete:
    return _complete(args, out)
  conditioning = _labels(args)
  num = 64 if args.num is None else args.num
  if args.num is not None and args.num < 1:
    raise ConfigError(f"--num must be at least 1, got {args.num}")
  # Image inputs: read and checked before the run is loaded; --num keeps the first N.
  for name, read in (("source", api.read_source_file), ("low_res", api.read_low_res_file)):
    if getattr(args, name):
      conditioning[name] = read(getattr(args, name))[:args.num]
      num = len(conditioning[name])
  run = api.load(args.workdir, args.step)
  samples = api.sample(run, num=num, seed=args.seed, replica=args.replica,
                       overrides=args.overrides, **conditioning)
  out.parent.mkdir(parents=True, exist_ok=True)
  if out.suffix == ".npz":
    import numpy as np  # pylint: disable=import-outside-toplevel
    np.savez_compressed(out, samples=samples, seed=args.seed, step=run.step)
  else:
    viz.write_samples(out, samples, run.spec, title=f"{run.config.method} step {run.step}")
  print(f"wrote {out} ({num} samples, step {run.step}, seed {args.seed})")
  if getattr(run.spec, "is_sequence", False) and run.spec.sample_rate:
    wavs = viz.write_wavs(out.with_name(out.stem + "_wav"), samples, run.spec)
    print(f"wrote {len(wavs)} .wav files ({run.spec.sample_rate:g} Hz) in {wavs[0].parent}")
  return 0


def _project(args: argparse.Namespace) -> int:
  """`jaxgen project`: every check before anything is computed or written."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgen import api, projection, viz  # pylint: disable=import-outside-toplevel
  from jaxgen.core import projection as core  # pylint: disable=import-outside-toplevel
  from jaxgen.errors import ConfigError  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(args.out)
  if out.suffix != ".npz":
    raise ConfigError(f"--out must end in .npz, got {str(out)!r}")
  api.check_writable(out, "--out")
  if args.encoder_steps < 0:
    raise ConfigError(f"--encoder-steps must be >= 0, got {args.encoder_steps}")
  options = {"steps": args.steps, "restarts": args.restarts,
             "learning_rate": args.learning_rate, "feature_weight": args.feature_weight,
             "prior_weight": args.prior_weight}
  core.options(**options)
  images, labels = projection.read_images_file(args.images)
  run = api.load(args.workdir, args.step)
  projection.check_generator(run)
  x = projection.check_images(run, images)
  run.replica(args.replica)
  if run.config.method not in projection.LABELLED:
    labels = None      # an unconditional generator: the file's labels are not used
  projection.check_labels(run, labels, len(x))
  encoder = (projection.train_encoder(run, steps=args.encoder_steps, seed=args.seed,
                                      replica=args.replica)
             if args.encoder_steps else None)
  z, reconstructions, losses = api.project(run, x, seed=args.seed, replica=args.replica,
                                           labels=labels, encoder=encoder, **options)
  out.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(out, z=z, reconstructions=reconstructions, x=x,
                      **{f"losses_{k}": v for k, v in losses.items()},
                      seed=args.seed, step=run.step, **options)
  grid = viz.write_reconstructions(out.with_suffix(".png"), x[:64], reconstructions[:64],
                                   run.spec)
  print(f"wrote {out} and {grid} ({len(x)} images, step {run.step}, mean pixel MSE "
        f"{float(np.mean(losses['pixel'])):.4g})")
  return 0


def _eval(args: argparse.Namespace) -> int:
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  result = api.evaluate(args.workdir, seed=args.seed, overrides=args.overrides,
                        step=args.step, num=args.num, out=args.out,
                        metrics=args.metrics)
  print(json.dumps({"step": result["step"], **result["metrics"]}, indent=2))
  print(f"wrote {result['path']}")
  return 0


def _fid(args: argparse.Namespace) -> int:
  from jaxgen import api  # pylint: disable=import-outside-toplevel
  result = api.fid(args.path_a, args.path_b, network=args.network,
                   metrics=args.metrics, overrides=args.overrides, seed=args.seed)
  for name, value in result["metrics"].items():
    print(f"{name}: {value:.6g}")
  return 0


# Python API arguments named in errors, as the flags of the command.
_FLAGS = {"resume=True": "--resume", "overwrite=True": "--overwrite"}


def _as_flags(message: str) -> str:
  """An error raised through the Python API, in the command's terms."""
  for argument, flag in _FLAGS.items():
    message = message.replace(argument, flag)
  return message


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
  """Warnings as one line each (a skipped checkpoint, changed library versions)."""
  del category, filename, lineno, line
  return f"jaxgen: warning: {message}\n"


def _drop_closed_loop_callbacks(unraisable) -> None:
  """sys.unraisablehook without Orbax's "Event loop is closed" callbacks.

  After a checkpoint fails to restore, tensorstore completes futures whose
  asyncio loop Orbax has closed; each prints a traceback through the
  unraisable hook, around the one line the command means to print.
  """
  value = unraisable.exc_value
  if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
    return
  sys.__unraisablehook__(unraisable)


def _drop_orphaned_task_errors(record: logging.LogRecord) -> bool:
  """asyncio's "Task exception was never retrieved" after a failed restore."""
  return "Task exception was never retrieved" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the `jaxgen` command; returns the exit status."""
  warnings.formatwarning = _one_line_warning
  sys.unraisablehook = _drop_closed_loop_callbacks
  # The same noise through asyncio's logger, whenever the orphaned task of a
  # failed restore is collected (not always inside the restore).
  logging.getLogger("asyncio").addFilter(_drop_orphaned_task_errors)
  args = _parser().parse_args(argv)
  try:
    if args.command == "list":
      _list()
      return 0
    if args.command == "launch":   # the children set up their own cache
      from jaxgen import launch  # pylint: disable=import-outside-toplevel
      child = args.child[1:] if args.child[:1] == ["--"] else args.child
      return launch.launch(child, args.processes, args.coordinator, args.grace)
    from jaxgen import _compile_cache  # pylint: disable=import-outside-toplevel
    _compile_cache.enable(disabled=getattr(args, "no_compile_cache", False))
    if args.command == "train":
      return _train(args)
    if args.command == "sample":
      return _sample(args)
    if args.command == "fid":
      return _fid(args)
    if args.command == "project":
      return _project(args)
    return _eval(args)
  except UserError as error:
    print(f"jaxgen: error: {_as_flags(str(error))}", file=sys.stderr)
    if argv is None:   # the command itself, not a call from Python
      _silence_stderr()
    return error.exit_code
  except NonFiniteError as error:
    print(f"jaxgen: {error}", file=sys.stderr)
    if argv is None:
      _silence_stderr()
    return error.exit_code
  except KeyboardInterrupt:
    # Outside the train loop (whose handler saves and exits 130 itself): the
    # final evaluation, sampling, `jaxgen eval`. Checkpoints are committed.
    print("jaxgen: interrupted", file=sys.stderr)
    if argv is None:
      _silence_stderr()
    return 128 + signal.SIGINT


def _silence_stderr() -> None:
  """Keeps the error line the last one: library threads that shut down after a
  failed restore (Orbax, tensorstore, asyncio) would print tracebacks at exit."""
  sys.stderr.flush()
  devnull = open(os.devnull, "w", encoding="utf-8")  # pylint: disable=consider-using-with
  os.dup2(devnull.fileno(), 2)
  sys.stderr = devnull


if __name__ == "__main__":
  sys.exit(main())
