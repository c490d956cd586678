"""Each GAN experiment script runs end to end in --quick mode; the classifier score."""

import json

import numpy as np
import pytest

from PIL import Image

from jaxgen.metrics.classifier_score import classifier_score, label_statistics
from tests.helpers import load_experiment


def _grid_pixels(rows, columns, side):
  """(width, height) of jaxgen.viz.save_image_grid's PNG of rows x columns images."""
  width, height = columns * (side + 1) + 1, rows * (side + 1) + 1
  scale = max(1, 512 // width)
  return width * scale, height * scale


@pytest.mark.slow
def test_mode_collapse_study_quick(tmp_path):
  report = load_experiment("gan_mode_collapse").main(["--quick", "--out", str(tmp_path)])
  rows = report["rows"]
  assert [r["dataset"] for r in rows] == ["toy2d:ring8", "toy2d:grid25"]
  for row in rows:
    assert len(row["modes_covered"]) == 2 and len(row["modes_covered_ema"]) == 2
    assert all(0 <= m <= (8 if "ring" in row["dataset"] else 25) for m in row["modes_covered"])
    assert all(0 <= q <= 1 for q in row["high_quality_share"])
  for name in ("results.json", "results.md", "modes_over_training.png",
               "samples_final_ring8.png", "samples_final_grid25.png",
               "samples_over_training_ring8.png"):
    assert (tmp_path / name).stat().st_size > 0, name
  assert "± " in (tmp_path / "results.md").read_text()
  # The docs figures from the saved study, without training (final samples from
  # the checkpoints, sample plots over training, the bar chart from results.json).
  figures = tmp_path / "figures"
  saved = load_experiment("gan_mode_collapse").main(
      ["--out", str(tmp_path), "--figures-only", "--figures-dir", str(figures)])
  assert saved["rows"] == json.loads((tmp_path / "results.json").read_text())["rows"]
  for name in ("modes", "final_ring8", "final_grid25", "over_training_ring8",
               "over_training_grid25"):
    size = (figures / f"gan_mode_collapse_{name}.png").stat().st_size
    assert 0 < size < 100 * 2**10, (name, size)
  with pytest.raises(SystemExit) as error:   # no study there: a one-line usage error
    load_experiment("gan_mode_collapse").main(
        ["--out", str(tmp_path / "none"), "--figures-only"])
  assert error.value.code == 2


@pytest.mark.slow
def test_dcgan_digits_quick(tmp_path):
  records = load_experiment("gan_dcgan_digits").main(
      ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir", str(tmp_path / "f")])
  digits = records["digits"]
  assert 1.0 <= digits["samples"]["classifier_score"] <= 10.0
  assert digits["real_test_images"]["classifier_score"] > 3.0  # the classifier works
  assert digits["arithmetic"]["pairs"] >= 1
  for name in ("samples.png", "interpolation.png", "arithmetic.png", "results.json"):
    assert (tmp_path / "digits" / name).stat().st_size > 0, name
  for name in ("samples", "interpolation", "arithmetic"):   # the docs copies
    assert 0 < (tmp_path / "f" / f"dcgan_digits_{name}.png").stat().st_size < 100 * 2**10


@pytest.mark.slow
def test_style_gan_digits_quick(tmp_path):
  """The DCGAN protocol with the style generator (its decode needs a noise key)."""
  records = load_experiment("gan_dcgan_digits").main(
      ["--quick", "--architecture", "style", "--out", str(tmp_path), "--figures",
       "--figures-dir", str(tmp_path / "f"), "--sample-metrics", "12"])
  digits = records["digits"]
  assert digits["architecture"] == "style"
  assert 1.0 <= digits["samples"]["classifier_score"] <= 10.0
  # --sample-metrics: jaxgen.evaluate on the saved run, through the digits LeNet.
  scored = digits["sample_metrics"]
  assert scored["network"] == "lenet_digits" and scored["protocol"]["generated"] == 12
  assert scored["metrics"]["fid_lenet_digits"] > 0
  assert 0 <= scored["metrics"]["pr_lenet_digits_recall"] <= 1
  assert "| digits (lenet_digits) | 12 |" in (tmp_path / "results.md").read_text()
  for name in ("samples", "interpolation"):   # the docs copies, under the style name
    assert 0 < (tmp_path / "f" / f"stylegan_digits_{name}.png").stat().st_size < 100 * 2**10
  assert not list((tmp_path / "f").glob("dcgan_*"))


@pytest.mark.slow
def test_infogan_quick(tmp_path):
  record = load_experiment("gan_infogan_digits").main(
      ["--quick", "--out", str(tmp_path), "--figures", "--figures-dir", str(tmp_path / "f")])
  assert len(record["categorical_to_digit"]) == 10 and 1 <= record["distinct_digits"] <= 10
  assert set(record["continuous_code_spearman"]) == {"c1", "c2"}
  assert 0 <= record["q_categorical_error"] <= 1
  for name in ("codes_c1.png", "codes_c2.png", "results.md"):
    assert (tmp_path / name).stat().st_size > 0, name
  for k in (1, 2):   # the docs copies: 10 categorical rows x 9 values of c_k, small
    with Image.open(tmp_path / "f" / f"infogan_digits_codes_c{k}.png") as image:
      assert image.mode == "P" and image.size == _grid_pixels(rows=10, columns=9, side=8)
    assert (tmp_path / "f" / f"infogan_digits_codes_c{k}.png").stat().st_size < 100 * 2**10


@pytest.mark.slow
def test_semisupervised_quick(tmp_path):
  record = load_experiment("gan_semisupervised").main(["--quick", "--out", str(tmp_path)])
  errors = record["test_error"]
  assert set(errors) == {"ssgan", "supervised_only", "logistic_regression"}
  assert all(len(e["per_seed"]) == 2 and 0 <= e["mean"] <= 1 for e in errors.values())
  assert record["labelled_examples_filled"] == [20, 20]  # 2 per class, both seeds
  assert json.loads((tmp_path / "results.json").read_text())["seeds"] == 2


def test_classifier_score_matches_its_formula():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(4), size=50)
  marginal = probs.mean(0)
  kl = np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1)
  assert classifier_score(probs) == pytest.approx(np.exp(kl.mean()), rel=1e-10)
  # Confident and evenly spread: the number of classes; one class only: 1.
  assert classifier_score(np.eye(5)[np.arange(100) % 5]) == pytest.approx(5.0)
  assert classifier_score(np.eye(5)[np.zeros(100, int)]) == pytest.approx(1.0)
  stats = label_statistics(np.eye(5)[np.arange(100) % 5])
  assert stats["classes_generated"] == 5
  assert stats["label_entropy"] == pytest.approx(np.log(5))
  with pytest.raises(ValueError, match="rows summing to 1"):
    classifier_score(np.ones((3, 2)))
