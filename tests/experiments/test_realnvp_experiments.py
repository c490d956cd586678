"""Each RealNVP experiment script runs end to end in --quick mode."""

import argparse
import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name,files,argv", [
    ("realnvp_toy2d", ["moons/density.png"], []),
    # digits only: MNIST trains the same programs at another shape (~25 s more);
    # its config is checked below without training.
    ("realnvp_digits", ["digits/samples_t1.0.png", "digits/samples_t0.7.png",
                        "digits/interpolation.png", "digits/bits.json"],
     ["--datasets", "digits", "--evals", "3"]),
])
def test_quick_mode_writes_its_outputs(tmp_path, name, files, argv):
  summary = load_experiment(name).main(["--quick", "--out", str(tmp_path), *argv])
  assert summary["quick"] is True
  for file in files + ["summary.json"]:
    assert (tmp_path / file).is_file(), file
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["quick"] is True
  for entry in saved["datasets"].values():
    assert entry["test_bits_per_dim"] > 0
  if "--evals" in argv:
    # 3 steps, 3 evaluations: one after every step, the last the final evaluation.
    curve = saved["datasets"]["digits"]["curve"]
    assert [point["step"] for point in curve] == [1, 2, 3]
    assert curve[-1]["test_bits_per_dim"] == saved["datasets"]["digits"]["test_bits_per_dim"]
    assert curve[-1]["test_nll_nats"] == saved["datasets"]["digits"]["test_nll_nats"]
    train = saved["datasets"]["digits"]["train_curve"]
    assert [point["step"] for point in train] == [1, 2, 3]
    assert all(point["loss"] > 0 for point in train)


def test_the_mnist_config_is_a_valid_run_config():
  experiment = load_experiment("realnvp_digits")
  for quick, evals in ((True, 1), (False, 4)):
    args = argparse.Namespace(quick=quick, steps=3, mnist_steps=1000, seed=0, batch_size=16,
                              features=4, blocks=1, normalization="batch", evals=evals)
    config = experiment.config_for("mnist", args)
    assert config.data.name == experiment.MNIST
    assert config.model.num_scales == (1 if quick else 3)
    assert (config.data.image_size == 8) == quick
    # --evals 4: the test split every 250 steps (and at the end), a checkpoint at each.
    assert config.train.eval_every == (250 if evals == 4 else 0)
    assert config.train.checkpoint_every == (250 if evals == 4 else 1000)
