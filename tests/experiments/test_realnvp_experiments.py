"""Each RealNVP experiment script runs end to end in --quick mode."""

import json

import pytest

from tests.helpers import load_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name,files", [
    ("realnvp_toy2d", ["moons/density.png"]),
    ("realnvp_digits", ["digits/samples_t1.0.png", "digits/samples_t0.7.png",
                        "digits/interpolation.png", "digits/bits.json",
                        "mnist/samples_t0.7.png", "mnist/bits.json"]),
])
def test_quick_mode_writes_its_outputs(tmp_path, name, files):
  summary = load_experiment(name).main(["--quick", "--out", str(tmp_path)])
  assert summary["quick"] is True
  for file in files + ["summary.json"]:
    assert (tmp_path / file).is_file(), file
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["quick"] is True
  for entry in saved["datasets"].values():
    assert entry["test_bits_per_dim"] > 0
