"""The autoencoder and VAE experiment scripts run end to end at tiny size (--quick)."""

import json

import numpy as np
import pytest

from tests.helpers import EXPERIMENTS, load_experiment

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
  return path.is_file() and path.read_bytes()[:8] == PNG


def test_anomaly_detection_holds_a_class_out_and_scores_it(tmp_path):
  report = load_experiment("ae_anomaly_detection").main(["--quick", "--out", str(tmp_path)])
  written = json.loads((tmp_path / "anomaly_auc.json").read_text())
  assert written == json.loads(json.dumps(report))
  assert [r["held_out_class"] for r in report["rows"]] == [0, 1]
  for row in report["rows"]:
    c = row["held_out_class"]
    # The training file really lacks class c; the test split is whole.
    with np.load(tmp_path / "data" / f"without_{c}.npz") as arrays:
      assert c not in set(arrays["y_train"]) and len(arrays["x_train"]) == row["num_train"]
      y_test = arrays["y_test"]
    assert row["num_test_held_out"] == int(np.sum(y_test == c))
    assert row["num_test_normal"] + row["num_test_held_out"] == len(y_test) == 359
    assert 0.0 <= row["roc_auc"] <= 1.0
    assert row["mean_error_normal"] > 0 and row["mean_error_held_out"] > 0
  assert report["mean_roc_auc"] == pytest.approx(np.mean([r["roc_auc"] for r in report["rows"]]))
  assert "| **mean** |" in (tmp_path / "anomaly_auc.md").read_text()
  assert _is_png(tmp_path / "error_histograms.png")


def test_pretraining_compares_three_classifiers_over_seeds(tmp_path):
  module = load_experiment("ae_pretraining")
  report = module.main(["--quick", "--out", str(tmp_path)])
  assert report["seeds"] == [0, 1] and len(report["rows"]) == 2
  for row in report["rows"]:
    assert row["labelled_examples"] == 100
    for variant in module.VARIANTS:
      assert 0.0 <= row[variant] <= 1.0
      assert np.isfinite(row[f"{variant}_final_train_loss"])
  summary = report["test_accuracy"]
  assert summary["scratch"]["mean"] == pytest.approx(
      np.mean([r["scratch"] for r in report["rows"]]))
  assert "pre-trained, fine-tuned" in (tmp_path / "pretraining.md").read_text()
  # Ten labels of every class, a different draw per seed.
  labels = np.repeat(np.arange(10), 30)
  first, second = (module.labelled_subset(labels, 10, seed) for seed in (0, 1))
  assert np.array_equal(np.bincount(labels[first]), np.full(10, 10))
  assert set(first) != set(second)


def test_dimensionality_reduction_plots_codes_and_scores_them(tmp_path):
  report = load_experiment("ae_dimensionality_reduction").main(
      ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir", str(tmp_path / "f")])
  assert _is_png(tmp_path / "codes_autoencoder.png") and _is_png(tmp_path / "codes_pca.png")
  accuracy = report["knn_accuracy"]
  assert 0.0 <= accuracy["autoencoder"] <= 1.0
  # PCA does not depend on the training run: 2 components of digits separate
  # the classes well above chance (0.1).
  assert accuracy["pca"] > 0.4
  assert json.loads((tmp_path / "reduction.json").read_text())["knn_accuracy"] == accuracy
  # PCA's reconstruction error against scikit-learn's own round trip.
  from sklearn.decomposition import PCA  # pylint: disable=import-outside-toplevel
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  dataset = data_lib.load_dataset("digits")
  (x_train, _), (x_test, _) = (data_lib.eval_arrays(dataset, s) for s in ("train", "test"))
  flat = x_test.reshape(len(x_test), -1)
  pca = PCA(n_components=2, random_state=0).fit(x_train.reshape(len(x_train), -1))
  expected = np.mean((pca.inverse_transform(pca.transform(flat)) - flat) ** 2)
  assert report["test_mse"]["pca"] == pytest.approx(expected, rel=1e-5)
  assert report["test_mse"]["autoencoder"] > 0
  # The docs copies: the two code plots side by side; 16 digits x 3 rows of 8.
  assert _png_size(tmp_path / "f" / "ae_digits_reconstructions.png") == _grid_pixels(6, 8)
  codes = tmp_path / "f" / "ae_digits_codes.png"
  assert _is_png(codes) and codes.stat().st_size < 100 * 2**10
  assert _png_size(codes)[0] == 2 * _png_size(tmp_path / "codes_pca.png")[0]


def test_vae_latent_tools_write_every_figure(tmp_path):
  report = load_experiment("vae_latent_tools").main(
      ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir", str(tmp_path / "f")])
  for name in ("manifold", "codes_2d", "interpolation_linear", "interpolation_spherical",
               "traversal", "active_units_beta1"):
    assert _is_png(tmp_path / f"{name}.png"), name
  for name in ("manifold", "traversal"):   # the docs copies, small
    path = tmp_path / "f" / f"vae_digits_{name}.png"
    assert _is_png(path) and path.stat().st_size < 100 * 2**10, name
  row = report[f"latent_{report['latent_dim']}d"][0]
  assert 0 <= row["active_units"] <= report["latent_dim"]
  assert len(row["variance_of_posterior_means"]) == report["latent_dim"]
  assert "active units" in (tmp_path / "latent_tools.md").read_text()


@pytest.mark.parametrize("name", ["vae_digits", "cvae_digits", "iwae_digits", "dae_digits",
                                  "sae_digits"])
def test_config_files_build_valid_methods(name):
  import jaxgen  # pylint: disable=import-outside-toplevel
  from jaxgen import config as config_lib  # pylint: disable=import-outside-toplevel
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  from jaxgen import registry  # pylint: disable=import-outside-toplevel
  config = config_lib.load_config_file(EXPERIMENTS / f"{name}.py")
  rebuilt = jaxgen.build_config(config.method, config=config)
  spec = data_lib.from_config(rebuilt.data).spec
  method = registry.get(rebuilt.method).make(rebuilt, spec)
  assert method.name == config.method


def _png_size(path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as image:
    return image.size


def _grid_pixels(rows, columns, side=8):
  """(width, height) of jaxgen.viz.save_image_grid's PNG of rows x columns images."""
  width, height = columns * (side + 1) + 1, rows * (side + 1) + 1
  scale = max(1, 512 // width)
  return width * scale, height * scale


def test_vae_digits_script_reports_and_draws_samples_and_reconstructions(tmp_path):
  record = load_experiment("vae_digits").main(
      ["--quick", "--workdir", str(tmp_path / "run"), "--figures", "--figures-dir",
       str(tmp_path / "f")])
  test = record["test"]
  assert test["elbo"] < 0 and test["log_likelihood"] >= test["elbo"] - 1.0
  assert json.loads((tmp_path / "run" / "results.json").read_text())["test"] == test
  for name in ("samples", "reconstructions"):   # 64 samples; 4 pairs of rows of 8
    path = tmp_path / "f" / f"vae_digits_{name}.png"
    assert _is_png(path) and path.stat().st_size < 100 * 2**10
    assert _png_size(path) == _grid_pixels(8, 8)


def test_dae_digits_script_draws_clean_corrupted_and_denoised_rows(tmp_path):
  record = load_experiment("dae_digits").main(
      ["--quick", "--workdir", str(tmp_path / "run"), "--figures", "--figures-dir",
       str(tmp_path / "f")])
  assert {"mse", "denoising_mse"} <= set(record["test"])
  assert all(np.isfinite(v) for v in record["shown_digits_mse"].values())
  path = tmp_path / "f" / "dae_digits_denoising.png"   # 16 digits x 4 groups, rows of 8
  assert _is_png(path) and _png_size(path) == _grid_pixels(8, 8)


def test_cvae_digits_script_draws_each_class_and_checks_its_labels(tmp_path):
  record = load_experiment("cvae_digits").main(
      ["--quick", "--workdir", str(tmp_path / "run"), "--figures", "--figures-dir",
       str(tmp_path / "f")])
  check = record["label_check"]
  assert check["classifier_test_accuracy"] > 0.75   # the classifier reads real digits
  assert len(check["per_class"]) == 10 and 0.0 <= check["samples_read_as_their_label"] <= 1.0
  assert check["samples_read_as_their_label"] == pytest.approx(np.mean(check["per_class"]))
  path = tmp_path / "f" / "cvae_digits_class_samples.png"   # a row per class, 10 each
  assert _is_png(path) and _png_size(path) == _grid_pixels(10, 10)
