"""Smoke tests of the performance benchmarks: first step, engine overhead, data, accelerator."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import accelerator, data_throughput, engine_overhead, first_step

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_every_family_has_a_default_method():
  methods = first_step.family_methods()
  assert methods["vae"] == "vae" and methods["diffusion"] == "ddpm"
  assert methods["autoencoder"] == "ae" and methods["gan"] == "gan"
  assert "latent_diffusion" not in methods.values()


@pytest.mark.slow
def test_first_step_cold_then_warm_cache(tmp_path):
  results = first_step.run({"gmm": "gmm"}, rounds=1)["gmm"]
  runs = {mode: results["runs"][mode][0] for mode in first_step.MODES}
  assert all(r["first_step_s"] > 0 and r["programs"] > 0 for r in runs.values())
  assert runs["no_cache"]["cache_hits"] == runs["no_cache"]["cache_misses"] == 0
  assert runs["cold"]["cache_misses"] > 0 and runs["cold"]["cache_hits"] == 0
  # The second process finds every program the first one wrote.
  assert runs["warm"]["cache_hits"] == runs["cold"]["cache_misses"]
  assert runs["warm"]["cache_misses"] == 0
  assert first_step.table({"gmm": results})[2].startswith("| gmm (gmm, ")


def test_engine_overhead_measures_both_rates():
  result = engine_overhead.measure("gmm", steps=4, repeats=1)
  assert result["bare"]["steps_per_sec"] > 0 and result["engine"]["steps_per_sec"] > 0
  assert result["engine_over_bare"] == pytest.approx(
      result["engine"]["steps_per_sec"] / result["bare"]["steps_per_sec"])


def test_data_throughput_reads_an_npz_file(tmp_path):
  path = data_throughput.write_npz(tmp_path, num=256)
  result = data_throughput.measure("vae", [f"data.name=npz:{path}", "data.batch_size=32",
                                           "model.hidden=(16,)"],
                                   batches=3, steps=2, repeats=1)
  assert result["pipeline"]["examples_per_sec"] > 0
  assert result["train_step"]["examples_per_sec"] > 0 and result["batch_size"] == 32


@pytest.mark.parametrize("name,matched", [
    ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"), ("NVIDIA H200", "H200"),
    ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A10", "A10"), ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"), ("Tesla T4", "T4"), ("Some Future GPU", None), (None, None)])
def test_gpu_peaks_are_looked_up_by_name(name, matched):
  peaks = accelerator.peaks_of(name)
  assert peaks["matched"] == matched
  if matched in ("H100", "A100"):
    assert peaks["bf16"] == 2 * peaks["tf32"] and peaks["source"].startswith("NVIDIA")


@pytest.mark.slow
def test_accelerator_script_cpu_smoke(tmp_path):
  out = tmp_path / "accelerator.json"
  env = {**os.environ, "PYTHON": sys.executable}
  done = subprocess.run(
      ["bash", str(REPO / "benchmarks" / "accelerator.sh"), "--cpu-smoke",
       "--only", "vae-conv-b4-bfloat16", "--out", str(out)],
      capture_output=True, text=True, env=env, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  payload = json.loads(out.read_text())
  assert payload["cpu_smoke"] and payload["gpu"] is None
  assert set(payload["rows"]) == {"vae-conv-b4-bfloat16"}
  for row in payload["rows"].values():
    assert row["images_per_sec"] > 0 and row["flops_per_step"] > 0
    assert all(v is None for k, v in row.items() if k.startswith("mfu"))


def test_accelerator_script_refuses_without_gpu():
  if subprocess.run(["bash", "-c", "command -v nvidia-smi"], check=False,
                    capture_output=True).returncode == 0:
    pytest.skip("this machine has nvidia-smi")
  done = subprocess.run(["bash", str(REPO / "benchmarks" / "accelerator.sh")],
                        capture_output=True, text=True, check=False)
  assert done.returncode == 2 and "no NVIDIA GPU" in done.stderr


def test_accelerator_full_scale_rows_build():
  """Every GPU row's config is valid on 32x32x3 (shapes only, nothing compiled)."""
  from benchmarks import vs_pytorch  # pylint: disable=import-outside-toplevel
  counts = {}
  for name, row, dtype in accelerator.rows(smoke=False):
    assert row.batch_size in (128, 256) and f"train.compute_dtype={dtype}" in row.overrides
    if row.batch_size == 128 and dtype == "float32":
      images = vs_pytorch.synthetic_images(row)
      step = vs_pytorch.JaxgenStep(row, images, shapes_only=True)
      counts[name.split("-b")[0]] = sum(step.param_sizes)
  # Ho et al. 2020's CIFAR-10 U-Net has 35.7M parameters.
  assert abs(counts["ddpm-unet"] - 35.7e6) < 0.05e6, counts   # jaxgen: 35,746,307
  assert set(counts) == {"dcgan", "ddpm-unet", "vae-conv"}
