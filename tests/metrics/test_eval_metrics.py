"""`jaxgen eval --metrics` / `jaxgen.evaluate(metrics=...)` and `jaxgen fid` end to end."""

import json

import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import metrics as metrics_lib
from jaxgen.metrics import fid as fid_lib
from jaxgen.metrics import inception_weights, lenet

from tests.helpers import tiny_vae
from tests.metrics import make_inception_reference as reference_lib


@pytest.fixture(scope="module")
def vae_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("metrics") / "run"
  jaxgen.fit(tiny_vae(steps=4, final_eval=False), workdir=workdir)
  return workdir


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXGEN_CACHE", str(tmp_path / "cache"))
  monkeypatch.delenv(inception_weights.ENV_VAR, raising=False)


def run_main(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_metrics_are_named_after_the_network_repeat_and_record_their_protocol(
    vae_workdir):
  options = dict(metrics="fid,kid,is,pr", num=150, seed=3, save=False, progress=False,
                 overrides=["metrics.chunk_size=50", "metrics.kid_subset_size=100",
                            "metrics.kid_subsets=10"])
  first = jaxgen.evaluate(vae_workdir, **options)
  second = jaxgen.evaluate(vae_workdir, **options)
  values = first["metrics"]
  assert set(values) == {"fid_lenet_digits", "kid_lenet_digits", "kid_lenet_digits_std",
                         "is_lenet_digits", "is_lenet_digits_std",
                         "pr_lenet_digits_precision", "pr_lenet_digits_recall"}
  assert values == second["metrics"]                      # same protocol and seed
  assert values["fid_lenet_digits"] > 0 and 1 <= values["is_lenet_digits"] <= 10
  protocol = first["protocol"]["lenet_digits"]
  record = lenet.records()["digits"]
  assert protocol["weights_sha256"] == record["sha256"]
  assert protocol["network_accuracy"] == record["accuracy"]
  assert protocol["generated"] == protocol["samples"] == 150
  assert protocol["chunk_size"] == 50
  assert protocol["reference"]["split"] == "train"
  assert protocol["reference"]["examples"] == 1438
  assert protocol["resize"].startswith("none")
  assert protocol["sampler_settings"]["latent_dim"] == 2
  assert protocol["metrics"]["kid"] == {"kernel": "(x.y/d + 1)^3", "subsets": 10,
                                        "subset_size": 100, "subset_seed": 3,
                                        "subset_size_cap": "the smaller of the two feature sets"}
  assert "fold_in(PRNGKey(3)" in protocol["sample_key"]
  assert protocol["jaxgen_version"] == jaxgen.__version__
  assert first["protocol"]["metrics_asked"] == ["fid", "kid", "is", "pr"]
  assert "num_examples" not in first["protocol"]     # no test example was evaluated
  # The second run read the reference features from the cache.
  assert second["protocol"]["lenet_digits"]["reference"]["cached"] is True
  # Another seed draws other samples.
  other = jaxgen.evaluate(vae_workdir, **dict(options, seed=4))["metrics"]
  assert other["fid_lenet_digits"] != values["fid_lenet_digits"]


def test_the_fid_is_the_one_of_the_samples_features(vae_workdir):
  """Oracle: the same samples drawn with jaxgen.sample's keys, featurized by hand."""
  result = jaxgen.evaluate(vae_workdir, metrics="fid", num=200, seed=0, save=False,
                           progress=False, overrides={"metrics.chunk_size": 200,
                                                      "metrics.reference_split": "test"})
  params = lenet.load("digits")
  run = jaxgen.load(vae_workdir)
  import jax  # pylint: disable=import-outside-toplevel
  key = jax.random.fold_in(jax.random.PRNGKey(0), 0xC0FE1)
  samples = np.asarray(jax.jit(lambda s, k: run.method.sample(s, k, 200))(run.state, key))
  test_x, _ = data_lib.eval_arrays(data_lib.from_config(run.config.data), "test")
  expected = fid_lib.fid_from_features(lenet.features(params, test_x),
                                       lenet.features(params, samples))
  assert result["metrics"]["fid_lenet_digits"] == pytest.approx(expected, rel=1e-6)


def test_eval_command_writes_the_numbers_and_refuses_bad_input(capsys, vae_workdir):
  code, out, _ = run_main(capsys, "eval", "--workdir", str(vae_workdir), "--metrics",
                          "fid,dc", "--num", "60", "--seed", "1")
  assert code == 0
  saved = json.loads((vae_workdir / "eval" / "fid+dc-seed1-num60.json").read_text())
  assert {"fid_lenet_digits", "dc_lenet_digits_density",
          "dc_lenet_digits_coverage"} == set(saved["metrics"])
  assert saved["protocol"]["lenet_digits"]["generated"] == 60
  for argv, fragment in [
      (["--metrics", "fid,fld"], "unknown metric 'fld'; valid metrics: 'fid', 'kid'"),
      (["--metrics", "modes"], "metric 'modes' needs data with known modes"),
      (["--metrics", "fid", "--set", "metrics.network=inception"],
       "Inception metrics need the FID Inception weights; download pytorch-fid's"),
      (["--metrics", "fid", "--set", "metrics.network=inception", "--set",
        "metrics.inception_weights=/no/such.pth"], "'/no/such.pth' does not exist"),
      (["--set", "metrics.chunk_size=5"], "no metric asked for"),
      (["--metrics", "fid", "--set", "metrics.bogus=1"], "unknown config key 'metrics.bogus'"),
  ]:
    before = sorted(p.name for p in (vae_workdir / "eval").iterdir())
    code, _, err = run_main(capsys, "eval", "--workdir", str(vae_workdir), "--num", "30",
                            *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert sorted(p.name for p in (vae_workdir / "eval").iterdir()) == before


@pytest.mark.slow
def test_mode_coverage_and_raw_fid_on_toy_data(tmp_path):
  config = jaxgen.get_config("vae", "toy2d:ring8")
  config.train.update(steps=3, progress=False, final_eval=False)
  config.data.batch_size = 32
  config.data.num_examples = 500
  jaxgen.fit(config, workdir=tmp_path / "toy")
  result = jaxgen.evaluate(tmp_path / "toy", metrics=["modes", "fid", "pr"], num=300,
                           save=False, progress=False)
  values = result["metrics"]
  assert {"modes_covered", "high_quality_share", "fid_raw", "pr_raw_precision",
          "pr_raw_recall"} == set(values)
  assert result["protocol"]["mode_coverage"]["samples"] == 300
  assert result["protocol"]["raw"]["reference"]["examples"] == 500
  with pytest.raises(jaxgen.errors.ConfigError, match="metric 'is' needs class predictions"):
    jaxgen.evaluate(tmp_path / "toy", metrics="is", num=10, save=False)


def test_fid_command_between_folders_and_npz(capsys, tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  x, _ = data_lib.eval_arrays(data_lib.load_dataset("digits"), "train")
  a = (x[:300] * 255).round().astype(np.uint8)
  folder = tmp_path / "a"
  folder.mkdir()
  for i, image in enumerate(a):
    Image.fromarray(image[..., 0]).save(folder / f"{i:04d}.png")
  np.savez(tmp_path / "b.npz", x=x[300:600])            # floats in [0, 1]
  code, out, _ = run_main(capsys, "fid", str(folder), str(tmp_path / "b.npz"),
                          "--network", "lenet_digits", "--metrics", "fid,kid")
  assert code == 0
  values = dict(line.split(": ") for line in out.strip().splitlines())
  params = lenet.load("digits")
  expected = fid_lib.fid_from_features(lenet.features(params, a, value_range=(0, 255)),
                                       lenet.features(params, x[300:600]))
  assert float(values["fid_lenet_digits"]) == pytest.approx(expected, rel=1e-5)
  assert "kid_lenet_digits" in values
  same = jaxgen.api.fid(folder, folder, network="lenet_digits")["metrics"]
  assert same["fid_lenet_digits"] == pytest.approx(0.0, abs=1e-6)
  code, _, err = run_main(capsys, "fid", str(folder), str(tmp_path / "b.npz"))
  assert code == 2 and "Inception metrics need the FID Inception weights" in err
  code, _, err = run_main(capsys, "fid", str(folder), str(tmp_path / "b.npz"),
                          "--network", "vgg")
  assert code == 2 and "network 'vgg' is not valid" in err


@pytest.mark.slow
def test_training_evaluates_the_metrics_of_train_eval_metrics(tmp_path):
  config = tiny_vae(steps=4, final_eval=True, eval_every=2)
  config.train.eval_metrics = ("fid", "pr")
  config.train.eval_metric_samples = 150
  jaxgen.fit(config, workdir=tmp_path / "run")
  records = [json.loads(line) for line in
             (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  evaluated = [r for r in records if r.get("split") == "test"]
  assert [r["step"] for r in evaluated] == [2, 4]
  for record in evaluated:
    assert record["fid_lenet_digits"] > 0 and "pr_lenet_digits_recall" in record
    assert "elbo" in record                      # beside the method's own numbers
    assert record["protocol"]["lenet_digits"]["generated"] == 150
  final = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert final["metrics"]["fid_lenet_digits"] == evaluated[-1]["fid_lenet_digits"]
  # The final evaluation's metrics repeat with jaxgen.evaluate.
  again = jaxgen.evaluate(tmp_path / "run", metrics="fid,pr", num=150, save=False,
                          progress=False, overrides=["metrics.chunk_size=2500"])
  assert again["metrics"]["fid_lenet_digits"] == final["metrics"]["fid_lenet_digits"]
  bad = tiny_vae(steps=1)
  bad.train.eval_metrics = ("fid", "fld")
  with pytest.raises(jaxgen.errors.ConfigError, match="train.eval_metrics: unknown metric 'fld'"):
    jaxgen.fit(bad, workdir=tmp_path / "bad")
  assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def inception_run(tmp_path_factory):
  """(workdir, weights .npz, its SHA-256): a tiny VAE on 16×16 digits (the Inception
  is the automatic network there), 4 images a split, and random Inception weights
  (the recorded reference's) in the converted .npz format a user passes."""
  root = tmp_path_factory.mktemp("inception")
  config = tiny_vae(steps=2)
  config_lib.apply_overrides(config, ["data.image_size=16", "data.max_examples=4",
                                      "data.batch_size=4"])
  jaxgen.fit(config, workdir=root / "run")
  state_dict = reference_lib.recorded_state_dict(reference_lib.load())
  sha256 = reference_lib.tensors_sha256(state_dict)
  weights = inception_weights.InceptionWeights(
      inception_weights.state_dict_to_variables(state_dict), sha256, "", "")
  inception_weights.save_npz(root / "inception.npz", weights)
  return root / "run", root / "inception.npz", sha256


def _low_rank_sqrtm(product):
  """(A matrix whose trace is Tr sqrtm(product), True) for a product Σ1Σ2 of rank < 16.

  With Q [d, 16] orthonormal spanning the product's columns, P = Q QᵀP, so P's
  nonzero eigenvalues are those of QᵀPQ (16 × 16); they are real and >= 0 for
  PSD Σ1, Σ2 (P is similar to Σ1^½ Σ2 Σ1^½), and the trace of P's principal
  square root is the sum of their square roots: FID uses nothing but that
  trace. Milliseconds where scipy's Schur sqrtm of a 2048×2048 product takes
  minutes on CI's busy CPU. Same signature as `jaxgen.metrics.fid._sqrtm`.
  """
  probe = np.random.default_rng(0).normal(size=(len(product), 16))
  q, _ = np.linalg.qr(product @ probe)
  assert np.allclose(q @ (q.T @ product), product, rtol=0,
                     atol=1e-9 * np.abs(product).max()), "rank >= 16"
  values = np.linalg.eigvals(q.T @ product @ q)
  return np.diag(np.sqrt(np.clip(values.real, 0, None))), True


def test_the_low_rank_square_root_agrees_with_scipy():
  rng = np.random.default_rng(0)
  sigma1 = np.cov(rng.normal(size=(6, 30)), rowvar=False)    # rank 5
  sigma2 = np.cov(rng.normal(size=(40, 30)), rowvar=False)   # full rank
  for product in (sigma1 @ sigma2, sigma2 @ sigma1):
    root, usable = fid_lib._sqrtm(product)  # pylint: disable=protected-access
    assert usable
    low_rank, _ = _low_rank_sqrtm(product)
    assert np.trace(low_rank) == pytest.approx(np.trace(root).real, rel=1e-7)
  with pytest.raises(AssertionError, match="rank >= 16"):
    _low_rank_sqrtm(sigma2 @ np.cov(rng.normal(size=(40, 30)), rowvar=False))


@pytest.mark.slow
def test_eval_command_computes_inception_metrics_from_a_weights_file(capsys, inception_run,
                                                                     monkeypatch):
  """`jaxgen eval --metrics fid,kid,is` through the Inception (12 images at 299×299).

  FID's 2048×2048 matrix square root is taken on the covariances' rank-3 range
  here (see above); the FID
  estimator itself is checked against pytorch-fid in test_fid.py and
  test_inception_reference.py.
  """
  monkeypatch.setattr(fid_lib, "_sqrtm", _low_rank_sqrtm)
  workdir, weights, sha256 = inception_run
  settings = [f"metrics.inception_weights={weights}", "metrics.chunk_size=4",
              "metrics.kid_subsets=3", "metrics.kid_subset_size=4", "metrics.is_splits=2",
              "metrics.reference_split=test"]
  code, _, err = run_main(capsys, "eval", "--workdir", str(workdir), "--metrics", "fid,kid,is",
                          "--num", "4", "--seed", "0",
                          *(arg for setting in settings for arg in ("--set", setting)))
  assert code == 0, err
  (path,) = (workdir / "eval").glob("fid+kid+is-seed0-num4-*.json")
  saved = json.loads(path.read_text())
  values = saved["metrics"]
  assert set(values) == {"fid_inception", "kid_inception", "kid_inception_std",
                         "is_inception", "is_inception_std"}
  protocol = saved["protocol"]["inception"]
  assert protocol["weights_sha256"] == sha256          # the .npz's source hash
  assert protocol["network"].startswith("inception (pytorch-fid FID InceptionV3")
  assert protocol["resize"] == "bilinear to 299x299 (pytorch-fid)"
  assert protocol["generated"] == 4
  assert protocol["reference"]["split"] == "test" and protocol["reference"]["examples"] == 4
  assert protocol["metrics"]["is"] == {"splits": 2, "shuffle": False}
  assert protocol["metrics"]["kid"]["subsets"] == 3
  # Oracle: the cached real features and the same samples (chunk 0's key) through
  # the same weights, metrics computed by hand.
  with np.load(protocol["reference"]["cache"]) as cached:
    real = cached["features"]
  assert real.shape == (4, 2048)
  run = jaxgen.load(workdir)
  import jax  # pylint: disable=import-outside-toplevel
  key = jax.random.fold_in(jax.random.PRNGKey(0), 0xC0FE1)
  samples = np.asarray(jax.jit(lambda s, k: run.method.sample(s, k, 4))(run.state, key))
  variables = metrics_lib.load_inception_weights(weights).variables
  fake = metrics_lib.inception_features(variables, samples, chunk_size=4)
  assert values["fid_inception"] == pytest.approx(
      fid_lib.fid_from_features(real, fake["pool3"]), rel=1e-6)
  expected_is = metrics_lib.inception_score(fake["logits"], splits=2, from_logits=True)
  assert values["is_inception"] == pytest.approx(expected_is["mean"], rel=1e-6)
  assert 1 <= values["is_inception"] <= 2                 # at most the samples per split
  assert np.isfinite(values["kid_inception"]) and values["fid_inception"] > 0


def test_missing_inception_weights_stop_only_inception_metrics(capsys, vae_workdir,
                                                               inception_run, monkeypatch):
  """A missing weights file: one line and exit 2 when the Inception is needed, nothing
  written; no effect on the digit LeNet's metrics or the method's own evaluation."""
  workdir = inception_run[0]

  def written():
    return sorted(p.name for p in (workdir / "eval").glob("*"))

  before = written()
  for settings in ([], ["--set", "metrics.inception_weights=/no/such.npz"]):
    code, _, err = run_main(capsys, "eval", "--workdir", str(workdir), "--metrics", "fid",
                            "--num", "4", *settings)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pt_inception-2015-12-05-6726825d.pth" in err
    assert written() == before
  code, _, err = run_main(capsys, "eval", "--workdir", str(vae_workdir), "--metrics", "pr",
                          "--num", "30", "--set", "metrics.inception_weights=/no/such.npz")
  assert code == 0, err                                   # digits: the LeNet, no Inception
  monkeypatch.setenv(inception_weights.ENV_VAR, "/no/such.npz")
  code, _, err = run_main(capsys, "eval", "--workdir", str(vae_workdir), "--num", "30")
  assert code == 0, err                                   # the method's own evaluation
