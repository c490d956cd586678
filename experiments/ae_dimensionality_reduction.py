"""Dimensionality reduction: an autoencoder's 2-D code against PCA's first two components.

Trains an autoencoder with a 2-D code on the training digits, encodes the test
digits and plots the codes coloured by label, beside the 2-D PCA projection.
The table reports how well each 2-D map keeps the classes apart: the test
accuracy of a 5-nearest-neighbour classifier fitted on the training codes (the
labels are used only for this score, never in training).

  python experiments/ae_dimensionality_reduction.py           # 8x8 digits
  python experiments/ae_dimensionality_reduction.py --data idx:../shared/data/mnist-t10k
  python experiments/ae_dimensionality_reduction.py --quick   # tiny, for tests

Writes `codes_autoencoder.png`, `codes_pca.png`, `reconstructions.png` (rows
of 8 test digits, their reconstructions from the 2-D code and from the 2 PCA
components; the test mse of both is in the report), `reduction.json` and
`reduction.md`. With --figures also small copies for docs/autoencoders.md in
docs/figures/ (`--figures-dir`): ae_<data>_codes.png (the two code plots side
by side) and ae_<data>_reconstructions.png.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgen  # noqa: E402
from jaxgen import data as data_lib  # noqa: E402
from jaxgen import latent  # noqa: E402
from jaxgen.viz import latent as viz_latent  # noqa: E402
from jaxgen.viz.grid import save_row_groups  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
  """Test accuracy of a k-nearest-neighbour classifier in code space."""
  from sklearn.neighbors import KNeighborsClassifier  # pylint: disable=import-outside-toplevel
  classifier = KNeighborsClassifier(n_neighbors=k).fit(train_codes, train_labels)
  return float(classifier.score(test_codes, test_labels))


def run(args: argparse.Namespace) -> dict:
  """Trains the 2-D autoencoder, encodes, fits PCA, plots and scores both."""
  from sklearn.decomposition import PCA  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  config = jaxgen.get_config(args.method, args.data)
  config.model.code_dim = 2
  config.model.hidden = (32,) if args.quick else tuple(args.hidden)
  config.data.binarize = "none"
  config.data.batch_size = 64
  config.train.steps = 30 if args.quick else args.steps
  config.train.seed = args.seed
  config.train.eval_every = 0
  config.train.final_eval = False
  config.train.progress = False
  result = jaxgen.fit(config)

  dataset = data_lib.load_dataset(args.data)  # scaled to [0, 1], not binarized
  x_train, y_train = data_lib.eval_arrays(dataset, "train")
  x_test, y_test = data_lib.eval_arrays(dataset, "test")
  train_codes = latent.encode_all(result.method.encode, result.state, x_train)
  test_codes = latent.encode_all(result.method.encode, result.state, x_test)
  pca = PCA(n_components=2, random_state=args.seed).fit(x_train.reshape(len(x_train), -1))
  pca_train = pca.transform(x_train.reshape(len(x_train), -1))
  pca_test = pca.transform(x_test.reshape(len(x_test), -1))

  viz_latent.save_codes(out / "codes_autoencoder.png", test_codes, y_test,
                        title=f"{args.method}, 2-D code, {args.data} test")
  viz_latent.save_codes(out / "codes_pca.png", pca_test, y_test,
                        title=f"PCA, 2 components, {args.data} test")
  reconstructions = {
      "autoencoder": np.asarray(result.method.reconstruct(result.state, {"x": x_test}, None)),
      "pca": pca.inverse_transform(pca_test).reshape(x_test.shape)}
  save_row_groups(out / "reconstructions.png",
                  [x_test[:16]] + [np.clip(r[:16], 0.0, 1.0) for r in reconstructions.values()],
                  columns=8)
  report = {
      "experiment": "dimensionality reduction to 2-D",
      "data": args.data, "method": args.method, "quick": args.quick,
      "hidden": list(config.model.hidden), "steps": config.train.steps, "seed": args.seed,
      "score": "test accuracy of 5-NN fitted on the training codes",
      "knn_accuracy": {
          "autoencoder": knn_accuracy(train_codes, y_train, test_codes, y_test),
          "pca": knn_accuracy(pca_train, y_train, pca_test, y_test),
      },
      "pca_explained_variance": float(np.sum(pca.explained_variance_ratio_)),
      "test_mse": {name: float(np.mean((r - x_test) ** 2))
                   for name, r in reconstructions.items()},
  }
  (out / "reduction.json").write_text(json.dumps(report, indent=2) + "\n")
  accuracy = report["knn_accuracy"]
  (out / "reduction.md").write_text("\n".join([
      f"# 2-D maps of {args.data} (test split)", "",
      "| map | 5-NN test accuracy |", "|---|---|",
      f"| {args.method} 2-D code | {accuracy['autoencoder']:.3f} |",
      f"| PCA, 2 components ({report['pca_explained_variance']:.0%} of the variance) "
      f"| {accuracy['pca']:.3f} |", "",
      f"Test mse of the reconstructions: {args.method} {report['test_mse']['autoencoder']:.4f}, "
      f"PCA {report['test_mse']['pca']:.4f}.", ""]))
  if args.figures:
    copy_figures(out, pathlib.Path(args.figures_dir), args.data)
  print(f"5-NN accuracy: autoencoder {accuracy['autoencoder']:.3f}, "
        f"PCA {accuracy['pca']:.3f}")
  return report


def copy_figures(out: pathlib.Path, figures: pathlib.Path, data: str) -> None:
  """Small palette copies for the docs: the two code plots side by side, the rows."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  name = "digits" if data == "digits" else "mnist" if "mnist" in data else "data"
  figures.mkdir(parents=True, exist_ok=True)
  with Image.open(out / "codes_autoencoder.png") as left, \
      Image.open(out / "codes_pca.png") as right:
    both = Image.new("RGB", (left.width + right.width, max(left.height, right.height)),
                     "white")
    both.paste(left.convert("RGB"), (0, 0))
    both.paste(right.convert("RGB"), (left.width, 0))
  both.quantize(colors=64).save(figures / f"ae_{name}_codes.png", optimize=True)
  with Image.open(out / "reconstructions.png") as image:
    image.convert("RGB").quantize(colors=64).save(figures / f"ae_{name}_reconstructions.png",
                                                  optimize=True)


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="tiny run for tests")
  parser.add_argument("--out", default="runs/ae_dimensionality_reduction")
  parser.add_argument("--data", default="digits")
  parser.add_argument("--method", default="ae", choices=("ae", "dae", "sae"))
  parser.add_argument("--hidden", type=int, nargs="+", default=(256, 128))
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--figures", action="store_true",
                      help="also write small copies of the figures into --figures-dir")
  parser.add_argument("--figures-dir", default=str(FIGURES))
  return run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
