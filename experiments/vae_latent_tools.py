"""Latent tools on trained VAEs: manifold, interpolation, traversal, active units.

* A VAE with a 2-D latent: its test posterior means coloured by label, and the
  decoded 2-D manifold grid through the inverse normal CDF (Kingma & Welling
  2014, fig. 4).
* VAEs with a 16-D latent and β = 1, 2, 4: the number of active units (Burda
  et al. 2016: Var_x E_q[z_i|x] > 0.01) — a larger β switches more units off
  (posterior collapse); for β = 1, linear and spherical interpolation between
  the posterior means of test digits and traversals of the most active units.

  python experiments/vae_latent_tools.py            # 8x8 digits
  python experiments/vae_latent_tools.py --quick    # tiny, for tests

Writes manifold.png, codes_2d.png, interpolation_linear.png,
interpolation_spherical.png, traversal.png, active_units_beta*.png,
latent_tools.json and latent_tools.md under --out; with --figures also palette
copies of manifold.png and traversal.png in docs/figures/ (`--figures-dir`) as
vae_digits_manifold.png and vae_digits_traversal.png.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import latent  # noqa: E402
from jaxgen.viz import latent as viz_latent  # noqa: E402


def train_vae(args: argparse.Namespace, latent_dim: int, beta: float) -> jaxgen.RunResult:
  config = jaxgen.get_config("vae", args.data)
  config.model.latent_dim = latent_dim
  config.model.beta = beta
  config.model.hidden = (16,) if args.quick else tuple(args.hidden)
  config.train.steps = 20 if args.quick else args.steps
  config.train.seed = args.seed
  config.train.eval_every = 0
  config.train.progress = False
  return jaxgen.fit(config)


def run(args: argparse.Namespace) -> dict:
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  x_test, y_test = data_lib.eval_arrays(  # binarized with fixed noise, as evaluated
      data_lib.load_dataset(args.data, binarize="dynamic"), "test")
  report: dict = {"experiment": "VAE latent tools", "data": args.data, "quick": args.quick,
                  "steps": 20 if args.quick else args.steps,
                  "hidden": [16] if args.quick else list(args.hidden), "seed": args.seed}

  # A 2-D latent: the manifold and the codes.
  flat = train_vae(args, 2, 1.0)
  n = 5 if args.quick else 20
  grid = latent.manifold_grid(n)
  decode = jax.jit(flat.method.decode)
  viz_latent.save_manifold(out / "manifold.png", np.asarray(decode(flat.state, grid)), n)
  means = latent.encode_all(flat.method.encode, flat.state, x_test)
  viz_latent.save_codes(out / "codes_2d.png", means, y_test,
                        title="posterior means, 2-D latent (test)")
  report["latent_2d"] = {"test_elbo": flat.metrics["eval"]["elbo"], "manifold_per_side": n}

  # A 16-D latent, β = 1, 2, 4: active units; β = 1: interpolation, traversal.
  # (--quick reuses the 2-D model, β = 1 only, to stay small.)
  steps = 6 if args.quick else 10
  dim = 2 if args.quick else 16
  table = []
  for beta in (1.0,) if args.quick else (1.0, 2.0, 4.0):
    result = flat if args.quick else train_vae(args, dim, beta)
    means = latent.encode_all(result.method.encode, result.state, x_test)
    units = latent.active_units(means)
    viz_latent.save_active_units(out / f"active_units_beta{beta:g}.png", units.variance,
                                 title=f"β = {beta:g}: {int(units.count)} of {dim} active")
    table.append({"beta": beta, "active_units": int(units.count),
                  "variance_of_posterior_means": np.asarray(units.variance).tolist(),
                  "test_elbo": result.metrics["eval"]["elbo"],
                  "test_kl": result.metrics["eval"]["kl"]})
    if beta != 1.0:
      continue
    decode = jax.jit(result.method.decode)
    # Pairs of test digits with different labels: first of class c to first of c+1.
    firsts = [int(np.flatnonzero(y_test == c)[0]) for c in np.unique(y_test)]
    pairs = list(zip(firsts[:-1], firsts[1:]))[:3 if args.quick else 8]
    for kind in latent.INTERPOLATIONS:
      rows = np.stack([np.asarray(decode(result.state, latent.interpolate(
          means[a], means[b], steps, kind=kind))) for a, b in pairs])
      viz_latent.save_rows(out / f"interpolation_{kind}.png", rows)
    order = np.argsort(-np.asarray(units.variance))[:4 if args.quick else 8]
    values = jnp.linspace(-3.0, 3.0, 9)
    rows = np.stack([np.asarray(decode(result.state, latent.traverse(means[firsts[0]],
                                                                      int(d), values)))
                     for d in order])
    viz_latent.save_rows(out / "traversal.png", rows)
    report["traversed_units"] = [int(d) for d in order]
    report["interpolated_pairs"] = [[int(a), int(b)] for a, b in pairs]
  report["latent_dim"] = dim
  report["latent_16d" if dim == 16 else f"latent_{dim}d"] = table
  report["active_unit_rule"] = "Var_x(E_q[z_i|x]) > 0.01 over the test split (Burda et al. 2016)"
  (out / "latent_tools.json").write_text(json.dumps(report, indent=2) + "\n")
  lines = [f"# Active units of a {dim}-D VAE on {args.data} (test split)", "",
           f"| β | active units (of {dim}) | test ELBO (nats) | test KL (nats) |",
           "|---|---|---|---|"]
  lines += [f"| {r['beta']:g} | {r['active_units']} | {r['test_elbo']:.2f} | "
            f"{r['test_kl']:.2f} |" for r in table]
  (out / "latent_tools.md").write_text("\n".join(lines) + "\n")
  if args.figures:
    copy_figures(out, pathlib.Path(args.figures_dir), args.data)
  return report


def copy_figures(out: pathlib.Path, figures: pathlib.Path, data: str) -> None:
  """Palette copies (tens of KB) of the manifold and the traversal for the docs."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  figures.mkdir(parents=True, exist_ok=True)
  for kind in ("manifold", "traversal"):
    with Image.open(out / f"{kind}.png") as image:
      small = image.convert("RGB").quantize(colors=64)
    small.save(figures / f"vae_{data}_{kind}.png", optimize=True)


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--out", default="runs/vae_latent_tools")
  parser.add_argument("--data", default="digits")
  parser.add_argument("--hidden", type=int, nargs="+", default=(256, 128))
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of two figures into --figures-dir")
  parser.add_argument("--figures-dir", default=str(
      pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"))
  return run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
