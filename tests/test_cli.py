"""The jaxgen command: listing, errors with exit status 2, train/sample/eval."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = ["--set", "model.hidden=(32,)", "--set", "model.latent_dim=2",
         "--set", "data.batch_size=32", "--set", "train.log_every=10"]


def run_main(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_list_shows_methods_and_datasets(capsys):
  code, out, _ = run_main(capsys, "list")
  assert code == 0
  assert "vae" in out and "digits" in out and "toy2d:ring8" in out and "tfds:<name>" in out


@pytest.mark.parametrize("argv,fragment", [
    (["train", "vea"], "unknown method 'vea'; valid:"),
    (["train", "vae", "--data", "mnistt"], "unknown dataset 'mnistt'"),
    (["train", "vae", "--set", "model.latent=3"], "unknown config key 'model.latent'"),
    (["train", "vae", "--set", "model.latent_dim=two"], "takes an integer, got two"),
    (["train", "vae", "--set", "train.strategy=mpi"], "unknown train.strategy 'mpi'"),
    (["train", "vae", "--data", "toy2d:ring8", "--set", "model.architecture=conv"],
     "needs image data"),
    (["train", "vae", "--seeds", "3-1"], "--seeds expects"),
    (["train", "vae", "--config", "missing_config.py"], "does not exist"),
    (["sample", "--workdir", "no/such/dir"], "holds no jaxgen run"),
    (["eval", "--workdir", "no/such/dir"], "holds no jaxgen run"),
    (["train"], "a METHOD is needed to start a run"),
    (["train", "vae", "--seeds", ""], "--seeds is empty"),
    (["train", "--resume"], "--resume needs the --workdir"),
    (["train", "--resume", "--workdir", "no/such/dir"], "holds no run to resume"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_input_is_one_line_and_exit_status_2(capsys, argv, fragment):
  try:
    code, _, err = run_main(capsys, *argv)
  except SystemExit as exit_:  # argparse's own errors
    code = exit_.code
    err = capsys.readouterr().err
  assert code == 2
  assert fragment in err
  assert len(err.strip().splitlines()) == 1, err


def test_existing_workdir_is_not_overwritten(capsys, tmp_path):
  (tmp_path / "config.json").write_text("{}")
  (tmp_path / "checkpoints" / "100").mkdir(parents=True)   # a run, not a failed start
  code, _, err = run_main(capsys, "train", "vae", "--workdir", str(tmp_path))
  assert code == 2 and "already holds a run" in err
  assert (tmp_path / "config.json").read_text() == "{}"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  """One CLI training run in a subprocess, as a user would start it."""
  workdir = tmp_path_factory.mktemp("cli") / "run"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  done = subprocess.run(
      [sys.executable, "-m", "jaxgen", "train", "vae", "--steps", "40",
       "--workdir", str(workdir), *SMALL, "--set", "train.checkpoint_every=20",
       "--set", "train.sample_every=20", "--set", "train.eval_every=20"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr
  return workdir, done


def test_train_writes_the_run(trained_run):
  workdir, done = trained_run
  for name in ("config.json", "run.json", "metrics.jsonl", "eval.json", "samples.png",
               "reconstructions.png", "samples/step_0000020.png",
               "reconstructions/step_0000020.png"):
    assert (workdir / name).exists(), name
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [20, 40]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["split"] == "train"]
  assert [r["step"] for r in train] == [10, 20, 30, 40]
  assert all(r["steps_per_sec"] > 0 and np.isfinite(r["loss"]) for r in train)
  run_info = json.loads((workdir / "run.json").read_text())
  assert run_info["data_spec"]["shape"] == [8, 8, 1]
  assert run_info["sessions"][0]["versions"]["jax"]
  # The progress bar shows the step count, the loss and the rate.
  assert "40/40" in done.stderr and "loss=" in done.stderr and "step/s" in done.stderr
  assert f"wrote {workdir / 'samples.png'}" in done.stdout
  # tensorboardX is in the test extras, so event files are written too.
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))


def test_eval_is_deterministic_and_repeats_the_final_record(capsys, trained_run):
  workdir, _ = trained_run
  code, first, _ = run_main(capsys, "eval", "--workdir", str(workdir))
  assert code == 0
  code, second, _ = run_main(capsys, "eval", "--workdir", str(workdir))
  first_json = json.loads(first[:first.rindex("}") + 1])
  second_json = json.loads(second[:second.rindex("}") + 1])
  assert first_json == second_json
  final = json.loads((workdir / "eval.json").read_text())
  assert final["step"] == 40 and final["protocol"]["num_examples"] == 359
  # Training evaluated on 4 devices, this on one: equal up to reduction order.
  logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  at_end = [r for r in logged if r["split"] == "test" and r["step"] == 40][0]
  assert first_json["elbo"] == pytest.approx(at_end["elbo"], rel=1e-5)
  code, other_seed, _ = run_main(capsys, "eval", "--workdir", str(workdir), "--seed", "5")
  assert json.loads(other_seed[:other_seed.rindex("}") + 1])["elbo"] != first_json["elbo"]


def test_eval_settings_can_change_at_evaluation_time(capsys, trained_run):
  workdir, _ = trained_run
  code, out, _ = run_main(capsys, "eval", "--workdir", str(workdir), "--set",
                          "model.eval_importance_samples=20")
  assert code == 0
  values = json.loads(out[:out.rindex("}") + 1])
  # The importance-weighted bound is at least the ELBO (in expectation, and
  # here with a margin far above its noise).
  assert values["log_likelihood"] >= values["elbo"]
  saved = json.loads((workdir / "eval.json").read_text())
  assert saved["protocol"]["config_overrides"] == ["model.eval_importance_samples=20"]
  code, _, err = run_main(capsys, "eval", "--workdir", str(workdir), "--set", "model.nope=1")
  assert code == 2 and "unknown config key 'model.nope'" in err


def test_sample_writes_png_and_npz(capsys, trained_run, tmp_path):
  workdir, _ = trained_run
  code, out, _ = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "9",
                          "--seed", "3", "--out", str(tmp_path / "s.npz"))
  assert code == 0 and "9 samples" in out
  samples = np.load(tmp_path / "s.npz")["samples"]
  assert samples.shape == (9, 8, 8, 1)
  assert samples.min() >= 0 and samples.max() <= 1
  code, _, _ = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "9",
                        "--seed", "3", "--out", str(tmp_path / "again.npz"))
  np.testing.assert_array_equal(np.load(tmp_path / "again.npz")["samples"], samples)
  code, _, _ = run_main(capsys, "sample", "--workdir", str(workdir), "--out",
                        str(tmp_path / "grid.png"))
  assert code == 0 and (tmp_path / "grid.png").stat().st_size > 500
  code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--out",
                          str(tmp_path / "grid.jpg"))
  assert code == 2 and "--out must end in .png or .npz" in err


def _jaxgen(*argv, cwd=REPO):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "jaxgen", *argv], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


RING = ["--data", "toy2d:ring8", "--seeds", "0,1", "--no-progress",
        "--set", "model.hidden=(16,)", "--set", "data.batch_size=32",
        "--set", "train.checkpoint_every=10", "--set", "train.num_samples=0",
        "--set", "train.coverage_samples=0"]


def test_resume_takes_method_data_config_and_seeds_from_the_run(tmp_path, capsys):
  workdir = tmp_path / "ring"
  done = _jaxgen("train", "vae", "--workdir", str(workdir), "--steps", "20", *RING)
  assert done.returncode == 0, done.stderr
  saved = (workdir / "config.json").read_text()
  # Flags that disagree with the run: one line naming the flag as typed.
  done = _jaxgen("train", "--workdir", str(workdir), "--resume", "--data", "digits")
  assert done.returncode == 2
  assert done.stderr.strip() == ("jaxgen: error: --data toy2d:ring8 was used for this "
                                 "run; you passed --data digits")
  for argv, fragment in [
      (["gan"], "method vae was used for this run; you passed method gan"),
      (["--seeds", "0-2"], "--seeds 0,1 was used for this run; you passed --seeds 0,1,2"),
      (["--seed", "0"], "--seeds 0,1 was used for this run; you passed --seed 0"),
      (["--set", "model.latent_dim=3"], "--set model.latent_dim=3 would change this run"),
      (["--steps", "10"], "train.steps=10 is below step 20"),
  ]:
    code, _, err = run_main(capsys, "train", "--workdir", str(workdir), "--resume", *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
  # Through the Python API the error names the function's argument.
  with pytest.raises(ConfigError, match="data='toy2d:ring8' was used for this run; "
                     "you passed data='digits'"):
    jaxgen.train(workdir=workdir, resume=True, data="digits")
  assert (workdir / "config.json").read_text() == saved
  # The workdir alone (and a reporting flag) continues the run with its settings.
  done = _jaxgen("train", "--workdir", str(workdir), "--resume", "--steps", "30",
                 "--set", "train.log_every=5", "--no-progress")
  assert done.returncode == 0, done.stderr
  config = json.loads((workdir / "config.json").read_text())
  assert config["method"] == "vae" and config["data"]["name"] == "toy2d:ring8"
  assert config["train"]["seeds"] == [0, 1] and config["train"]["steps"] == 30
  assert config["model"]["hidden"] == [16]
  assert max(int(p.name) for p in (workdir / "checkpoints").iterdir()) == 30


def test_resume_without_a_run_says_first_that_it_starts_a_new_one(tmp_path):
  workdir = tmp_path / "fresh"
  done = _jaxgen("train", "vae", "--workdir", str(workdir), "--resume", "--steps", "2",
                 *RING)
  assert done.returncode == 0, done.stderr
  assert done.stdout.splitlines()[0] == (
      f"no run to resume in {workdir} (no checkpoint): starting a new vae run")
  assert (workdir / "checkpoints" / "2").is_dir()
