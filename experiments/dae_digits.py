"""Denoising autoencoder on 8x8 grey digits: masking noise, 25% of pixels dropped.

  jaxgen train dae --config experiments/dae_digits.py --workdir runs/dae_digits
  jaxgen train dae --config experiments/dae_digits.py --set model.corruption=salt_pepper
  python experiments/dae_digits.py [--workdir runs/dae_digits] [--figures] [--quick]

Evaluation reports the reconstruction error of clean test digits (mse) and of
corrupted ones against the clean originals (denoising_mse).
Expect (3,000 steps, about 30 s on 2 CPU cores; seed 0, measured here):
test mse 0.0100 on clean digits, denoising_mse 0.0141 on masked ones (re-run 2026-12-07).

Run as a script, it trains this config into --workdir, prints the final test
numbers (also in results.json there) and draws denoising.png from the same
run: for 16 test digits, rows of 8 in groups of four — the clean digits, their
reconstructions, the digits corrupted with the training corruption (a fixed
key), and the reconstructions of the corrupted digits; --figures also writes a
small copy, docs/figures/dae_digits_denoising.png (--figures-dir), for
docs/autoencoders.md.
"""

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def get_config():
  config = jaxgen.get_config("dae", "digits")
  config.model.code_dim = 32
  config.model.corruption = "masking"
  config.model.corruption_rate = 0.25
  config.train.steps = 3000
  return config



def main(argv=None) -> dict:
  """Trains get_config(), reports its test numbers, draws clean/corrupted/denoised rows."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  from jaxgen.families.autoencoder import losses  # pylint: disable=import-outside-toplevel
  from jaxgen.viz.grid import save_row_groups  # pylint: disable=import-outside-toplevel
  from jaxgen.viz.panels import shrink_png  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/dae_digits")
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--figures", action="store_true",
                      help="also write the docs' copy into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  args = parser.parse_args(argv)
  config = get_config()
  config.train.progress = not args.quick
  if args.quick:
    config.model.hidden, config.train.steps, config.train.sample_every = (16,), 4, 0
  workdir = pathlib.Path(args.workdir)
  # The quick run trains in memory (no checkpoints, no engine sample grid).
  result = jaxgen.fit(config, workdir=None if args.quick else workdir, overwrite=True)
  workdir.mkdir(parents=True, exist_ok=True)
  method, state, spec = result.method, result.state, result.spec
  x_test, _ = data_lib.eval_arrays(data_lib.from_config(config.data), "test")
  clean = x_test[:16]
  m = config.model
  low, high = spec.value_range
  corrupted = np.asarray(losses.corrupt(jax.random.PRNGKey(0), clean, kind=m.corruption,
                                        rate=m.corruption_rate, noise_std=m.noise_std,
                                        low=low, high=high))
  groups = [clean, np.asarray(method.reconstruct(state, {"x": clean}, None)), corrupted,
            np.asarray(method.reconstruct(state, {"x": corrupted}, None))]
  path = save_row_groups(workdir / "denoising.png", groups, columns=8,
                         value_range=spec.value_range)
  shown_mse = {"clean": float(np.mean((groups[1] - clean) ** 2)),
               "corrupted": float(np.mean((groups[3] - clean) ** 2))}
  record = {"steps": config.train.steps, "test": result.metrics["eval"],
            "shown_digits_mse": shown_mse, "figure": str(path)}
  if args.figures:
    shrink_png(path, target=pathlib.Path(args.figures_dir) / "dae_digits_denoising.png")
  (workdir / "results.json").write_text(json.dumps(record, indent=2) + "\n")
  print(json.dumps({"test": record["test"], "shown_digits_mse": shown_mse}, indent=2))
  return record


if __name__ == "__main__":
  main()
