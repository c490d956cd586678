"""The jaxgen command: listing, errors with exit status 2, train/sample/eval."""

import json
import os
import pathlib
import shutil
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
  assert code == 2 and "already holds a run; pass --resume to continue it or --overwrite" in err
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
  # Each long phase says what it does: compiling, evaluating (with an ETA).
  assert "vae on digits: compiling the train step" in done.stderr
  assert "evaluating on the test split" in done.stderr
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
  saved = json.loads(
      (workdir / "eval" / "model.eval_importance_samples=20.json").read_text())
  assert saved["protocol"]["config_overrides"] == ["model.eval_importance_samples=20"]
  code, _, err = run_main(capsys, "eval", "--workdir", str(workdir), "--set", "model.nope=1")
  assert code == 2 and "unknown config key 'model.nope'" in err


@pytest.mark.parametrize("setting,fragment", [
    ("model.latent_dim=3", "model.latent_dim would change the shapes of the trained"),
    ("model.hidden=(16,)", "would change the shapes"),
    ("data.binarize=none", "data.binarize is a training setting"),
    ("optim.learning_rate=0.1", "optim.learning_rate is a training setting"),
])
def test_eval_and_sample_refuse_training_settings(capsys, trained_run, setting, fragment):
  workdir, _ = trained_run
  for command in ("eval", "sample"):
    code, _, err = run_main(capsys, command, "--workdir", str(workdir), "--set", setting)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
  assert not (workdir / "eval" / f"{setting}.json").exists()


def test_eval_never_replaces_the_runs_own_eval_json(capsys, trained_run):
  workdir, _ = trained_run
  own = (workdir / "eval.json").read_text()
  code, out, _ = run_main(capsys, "eval", "--workdir", str(workdir), "--seed", "3")
  assert code == 0 and f"wrote {workdir / 'eval' / 'seed3.json'}" in out
  assert json.loads((workdir / "eval" / "seed3.json").read_text())["step"] == 40
  assert (workdir / "eval.json").read_text() == own
  # --step and --num: an older checkpoint, the first examples with their own keys.
  code, out, _ = run_main(capsys, "eval", "--workdir", str(workdir), "--step", "20",
                          "--num", "100", "--set", "train.eval_batch_size=48")
  assert code == 0
  saved = json.loads((workdir / "eval" / "step20-num100-train.eval_batch_size=48.json")
                     .read_text())
  assert saved["step"] == 20 and saved["protocol"]["num_examples"] == 100
  at_20 = jaxgen.evaluate(jaxgen.load(workdir, step=20), save=False, num=100,
                          batch_size=100)["metrics"]
  assert saved["metrics"]["elbo"] == pytest.approx(at_20["elbo"], rel=1e-5)
  code, out, _ = run_main(capsys, "eval", "--workdir", str(workdir), "--num", "1",
                          "--out", str(workdir / "mine.json"))
  assert code == 0 and (workdir / "mine.json").exists()
  assert (workdir / "eval.json").read_text() == own
  code, _, err = run_main(capsys, "eval", "--workdir", str(workdir), "--step", "30")
  assert code == 2 and "no checkpoint 30 in" in err and "saved steps: 20, 40" in err


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
  (tmp_path / "afile").write_text("")
  code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--out",
                          str(tmp_path / "afile" / "s.npz"))
  assert code == 2 and "is a file, not a directory" in err
  assert len(err.strip().splitlines()) == 1


def test_sample_options(capsys, trained_run, tmp_path):
  workdir, _ = trained_run
  code, out, _ = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "4",
                          "--step", "20", "--set", "model.sample_mode=mean",
                          "--out", str(tmp_path / "mean.npz"))
  assert code == 0 and "step 20" in out
  mean = np.load(tmp_path / "mean.npz")["samples"]
  # The decoder's mean: probabilities strictly inside (0, 1), not binary draws.
  assert ((mean > 0) & (mean < 1)).mean() > 0.9
  for argv, fragment in [
      (["--class", "3"], "labels= needs method 'cvae'"),
      (["--guidance", "2"], "method 'vae' takes no guidance= when sampling"),
      (["--labels", "a,b"], "--labels expects integers"),
      (["--set", "model.sample_mode=sharp"], "model.sample_mode"),
      (["--step", "7"], "no checkpoint 7 in"),
  ]:
    code, _, err = run_main(capsys, "sample", "--workdir", str(workdir),
                            "--out", str(tmp_path / "x.npz"), *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_sample_labels_of_a_conditional_model(capsys, tmp_path):
  workdir = tmp_path / "cvae"
  jaxgen.train("cvae", workdir=workdir, steps=2,
               overrides={"model.hidden": (16,), "train.progress": False,
                          "train.num_samples": 0, "train.final_eval": False,
                          "data.batch_size": 16})
  one_class = []
  for argv in (["--class", "3"], ["--labels", "3,3,3,3"]):
    out = tmp_path / f"{argv[0][2:]}.npz"
    code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "4",
                            "--out", str(out), *argv)
    assert code == 0, err
    one_class.append(np.load(out)["samples"])
  np.testing.assert_array_equal(one_class[0], one_class[1])
  code, _, _ = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "4",
                        "--labels", "0,1,2,3", "--out", str(tmp_path / "mixed.npz"))
  assert code == 0
  assert not np.array_equal(np.load(tmp_path / "mixed.npz")["samples"], one_class[0])
  for labels, fragment in [("10", "labels must lie in 0 to 9"),
                           ("1,2", "labels must be one label or 4")]:
    code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "4",
                            "--labels", labels, "--out", str(tmp_path / "bad.npz"))
    assert code == 2 and fragment in err, err


def test_eval_and_sample_skip_a_damaged_newest_checkpoint_without_moving_it(
    trained_run, tmp_path):
  workdir = tmp_path / "copy"
  shutil.copytree(trained_run[0], workdir)
  for file in (workdir / "checkpoints" / "40" / "state").rglob("*"):
    if file.is_file() and file.stat().st_size > 64 and "metadata" not in file.name.lower():
      file.write_bytes(file.read_bytes()[:16])
  done = _jaxgen("eval", "--workdir", str(workdir), "--num", "32")
  assert done.returncode == 0, done.stderr
  warned = [l for l in done.stderr.splitlines() if "checkpoint 40 in" in l]
  assert len(warned) == 1 and warned[0].startswith("jaxgen: warning:"), done.stderr
  assert "cannot be restored" in warned[0]
  assert json.loads((workdir / "eval" / "num32.json").read_text())["step"] == 20
  assert "evaluating on the test split" in done.stderr and "/32 [" in done.stderr
  assert (workdir / "checkpoints" / "40").is_dir()     # a reader moves nothing
  assert not (workdir / "checkpoints.damaged").exists()
  done = _jaxgen("sample", "--workdir", str(workdir), "--step", "40")
  assert done.returncode == 2 and "checkpoint 40 in" in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1, done.stderr
  for file in (workdir / "checkpoints" / "20" / "state").rglob("*"):
    if file.is_file() and file.stat().st_size > 64 and "metadata" not in file.name.lower():
      file.write_bytes(file.read_bytes()[:16])
  done = _jaxgen("sample", "--workdir", str(workdir))
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      "jaxgen: error: no restorable checkpoint in"), done.stderr


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
  # The same through the Python API: a warning.
  with pytest.warns(UserWarning, match="no run to resume in .* starting a new vae run"):
    jaxgen.train("vae", data="toy2d:ring8", workdir=tmp_path / "api", resume=True,
                 steps=1, overrides={"model.hidden": (16,), "train.progress": False,
                                     "train.num_samples": 0, "train.final_eval": False})


def test_every_batch_size_is_checked_against_the_devices_before_anything_is_written(
    tmp_path):
  workdir = tmp_path / "two"
  env = dict(os.environ, PYTHONPATH=str(REPO),
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  for setting, key in [("train.eval_batch_size=127", "train.eval_batch_size=127"),
                       ("data.batch_size=33", "data.batch_size=33")]:
    done = subprocess.run(
        [sys.executable, "-m", "jaxgen", "train", "vae", "--workdir", str(workdir),
         "--steps", "2", "--set", setting], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"jaxgen: error: {key} does not split over 2 "
                                   "devices; use a multiple of 2")
    assert not workdir.exists()


def test_an_unprepared_tfds_dataset_is_the_only_line(tmp_path):
  """tfds logs absl warnings about the empty variant folder; only the error shows."""
  pytest.importorskip("tensorflow_datasets")
  (tmp_path / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
  done = _jaxgen("train", "vae", "--data", "tfds:mnist", "--workdir",
                 str(tmp_path / "run"), "--set", f"data.data_dir={tmp_path / 'tfds'}")
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      "jaxgen: error: tfds:mnist is not prepared in"), done.stderr
  assert not (tmp_path / "run").exists()


def test_relative_data_paths_are_found_from_elsewhere_and_after_a_move(tmp_path):
  project = tmp_path / "project"
  (project / "data").mkdir(parents=True)
  rng = np.random.default_rng(0)
  np.savez(project / "data" / "blobs.npz",
           x=rng.uniform(size=(120, 4, 4, 1)).astype(np.float32))
  done = _jaxgen("train", "ae", "--data", "npz:data/blobs.npz", "--workdir", "runs/a",
                 "--steps", "2", "--no-progress", "--set", "data.batch_size=8",
                 "--set", "train.num_samples=0", cwd=project)
  assert done.returncode == 0, done.stderr
  run_info = json.loads((project / "runs" / "a" / "run.json").read_text())
  assert run_info["data_source"]["typed"] == "npz:data/blobs.npz"
  assert run_info["data_source"]["absolute"] == f"npz:{(project / 'data' / 'blobs.npz').resolve()}"
  # The config keeps the name as typed, for display and for --resume.
  assert json.loads((project / "runs" / "a" / "config.json").read_text())[
      "data"]["name"] == "npz:data/blobs.npz"
  first = _jaxgen("eval", "--workdir", str(project / "runs" / "a"), "--out",
                  str(tmp_path / "first.json"), cwd=tmp_path)
  assert first.returncode == 0, first.stderr
  # The whole project moves: the absolute path is gone, the origin is found
  # relative to the run's folder.
  moved = tmp_path / "elsewhere"
  project.rename(moved)
  again = _jaxgen("eval", "--workdir", str(moved / "runs" / "a"), "--out",
                  str(tmp_path / "again.json"), cwd=REPO)
  assert again.returncode == 0, again.stderr
  assert (json.loads((tmp_path / "first.json").read_text())["metrics"]
          == json.loads((tmp_path / "again.json").read_text())["metrics"])
  # --resume from another directory, after the move, finds the data too, and
  # keeps the run's record of where the data came from.
  resumed = _jaxgen("train", "--workdir", str(moved / "runs" / "a"), "--resume",
                    "--steps", "4", "--no-progress", cwd=REPO)
  assert resumed.returncode == 0, resumed.stderr
  run_info = json.loads((moved / "runs" / "a" / "run.json").read_text())
  assert run_info["data_source"]["typed"] == "npz:data/blobs.npz"
  assert json.loads((moved / "runs" / "a" / "config.json").read_text())[
      "data"]["name"] == "npz:data/blobs.npz"


def test_sample_settings_and_guidance_of_a_diffusion_model(capsys, tmp_path):
  workdir = tmp_path / "ddpm"
  jaxgen.train("ddpm", data="toy2d:ring8", workdir=workdir, steps=2,
               overrides={"model.hidden": 16, "model.depth": 1, "model.timesteps": 20,
                          "model.sample_steps": 5, "model.guidance": "classifier_free",
                          "train.progress": False, "train.num_samples": 0,
                          "train.final_eval": False, "data.batch_size": 16})

  def draw(*argv):
    out = tmp_path / f"s{len(list(tmp_path.glob('s*.npz')))}.npz"
    code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--num", "8",
                            "--out", str(out), *argv)
    assert code == 0, err
    return np.load(out)["samples"]

  default = draw()
  assert default.shape == (8, 2) and np.all(np.isfinite(default))
  # The default guidance is model.guidance_scale=2: --guidance 2 is the same draw.
  np.testing.assert_array_equal(draw("--guidance", "2"), default)
  assert not np.array_equal(draw("--guidance", "0"), default)
  assert not np.array_equal(draw("--set", "model.sampler=ddpm"), default)
  assert not np.array_equal(draw("--set", "model.sample_steps=10"), default)
  np.testing.assert_array_equal(draw("--class", "2"), draw("--labels", ",".join(["2"] * 8)))
  code, _, err = run_main(capsys, "sample", "--workdir", str(workdir), "--set",
                          "model.sampler=euler", "--out", str(tmp_path / "bad.npz"))
  assert code == 2 and "model.sampler" in err and len(err.strip().splitlines()) == 1
