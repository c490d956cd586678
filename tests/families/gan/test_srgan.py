"""`srgan`: the low-resolution input, content losses against their formulas, the
feature network, SRResNet (adversarial weight 0), sample/evaluate, resume
bit-exact, 4 devices = 1, one-line errors, and the CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import cli
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.families.gan import srgan, srgan_losses
from jaxgen.families.gan.srgan_settings import build_networks
from jaxgen.metrics import image_quality, lenet
from tests.helpers import (assert_trees_close, assert_trees_equal, config_error, full_state,
                           tiny_config)

TINY = ["model.features=8", "model.residual_blocks=1", "model.discriminator_channels=(8,)",
        "model.discriminator_hidden=16", "data.batch_size=8", "data.max_examples=160",
        "train.progress=False", "train.final_eval=False", "train.num_samples=0",
        "train.log_every=1", "train.eval_every=0", "train.sample_every=0",
        "train.checkpoint_every=0", "generator_optim.learning_rate=3e-3",
        "discriminator_optim.learning_rate=3e-3"]


def tiny(steps=4, overrides=(), **train):
  return tiny_config("srgan", "digits", TINY, overrides, steps, **train)


def test_box_downsample_is_the_block_mean():
  x = np.random.default_rng(0).normal(size=(2, 8, 12, 3)).astype(np.float32)
  got = np.asarray(srgan_losses.box_downsample(jnp.asarray(x), 4))
  expected = np.zeros((2, 2, 3, 3))
  for i in range(2):
    for j in range(3):
      expected[:, i, j] = x[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean(axis=(1, 2))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="divisible"):
    srgan_losses.box_downsample(jnp.zeros((1, 7, 8, 1)), 2)


def test_bicubic_baseline_keeps_constants_and_stays_in_range():
  const = jnp.full((1, 4, 4, 1), 0.3)
  np.testing.assert_allclose(srgan_losses.bicubic_upsample(const, 2, (-1.0, 1.0)), 0.3,
                             rtol=1e-5)
  edge = jnp.concatenate([-jnp.ones((1, 4, 2, 1)), jnp.ones((1, 4, 2, 1))], axis=2)
  up = np.asarray(srgan_losses.bicubic_upsample(edge, 2, (-1.0, 1.0)))
  assert up.shape == (1, 8, 8, 1) and up.min() >= -1 and up.max() <= 1


def test_content_losses_match_their_formulas():
  rng = np.random.default_rng(1)
  out, target = rng.normal(size=(3, 4, 4, 2)), rng.normal(size=(3, 4, 4, 2))
  fo, ft = rng.normal(size=(3, 5, 6)), rng.normal(size=(3, 5, 6))
  pixel = np.array([np.sum((out[i] - target[i])**2) / 32 for i in range(3)])
  feature = np.array([np.sum((fo[i] - ft[i])**2) / 30 for i in range(3)])
  np.testing.assert_allclose(srgan_losses.pixel_mse(output=out, target=target), pixel,
                             rtol=1e-6)
  np.testing.assert_allclose(srgan_losses.feature_mse(output_features=fo,
                                                      target_features=ft), feature, rtol=1e-6)
  loss, parts = srgan_losses.content_loss(output=out, target=target, output_features=fo,
                                          target_features=ft, pixel_weight=0.5,
                                          feature_weight=2.0)
  np.testing.assert_allclose(loss, 0.5 * pixel + 2.0 * feature, rtol=1e-6)
  assert set(parts) == {"pixel_mse", "feature_mse"}
  loss, parts = srgan_losses.content_loss(output=out, target=target, output_features=None,
                                          target_features=None, pixel_weight=1.0,
                                          feature_weight=0.0)
  np.testing.assert_allclose(loss, pixel, rtol=1e-6) and set(parts) == {"pixel_mse"}
  with pytest.raises(ValueError):
    srgan_losses.pixel_mse(output=out, target=target[:, :2])


def test_feature_loss_reads_the_shipped_lenet():
  config = tiny(overrides=["model.feature_weight=1.0", "model.feature_layer=features"])
  spec = data_lib.from_config(config.data).spec
  nets = build_networks(config, spec)
  assert nets.s.feature_network == "digits"
  x = np.random.default_rng(2).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
  np.testing.assert_allclose(
      nets.features(jnp.asarray(x)),
      lenet.features(lenet.load("digits"), x, value_range=(-1.0, 1.0)), rtol=1e-4, atol=1e-5)
  # conv1: the second conv's ReLU activations, [N, 4, 4, 32] for 8x8 digits.
  config = tiny(overrides=["model.feature_weight=1.0"])
  assert build_networks(config, spec).features(jnp.asarray(x)).shape == (4, 4, 4, 32)


@pytest.fixture(scope="module")
def trained():
  """Two steps of the tiny SRGAN (the program the resume test compiles too)."""
  return jaxgen.fit(tiny(2))


def test_srresnet_trains_g_only_and_srgan_trains_both(trained):
  baseline = jaxgen.fit(tiny(6, ["model.adversarial_weight=0"]))
  start = baseline.method.init(jax.random.PRNGKey(0), _batch(baseline.config))
  assert_trees_equal(jax.device_get(baseline.state.params["discriminator"]),
                     jax.device_get(start.params["discriminator"]))
  records = [r for r in baseline.history if r["split"] == "train"]
  assert "adversarial_loss" not in records[0] and "discriminator_loss" not in records[0]
  assert records[-1]["content_pixel_mse"] < records[0]["content_pixel_mse"]
  adversarial = trained
  record = [r for r in adversarial.history if r["split"] == "train"][-1]
  assert np.isfinite(record["discriminator_loss"]) and np.isfinite(record["adversarial_loss"])
  assert record["loss"] == pytest.approx(record["content_loss"]
                                         + 1e-3 * record["adversarial_loss"], rel=1e-5)
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: np.any(np.asarray(a) != np.asarray(b)),
                                       adversarial.state.params["discriminator"],
                                       start.params["discriminator"]))
  assert all(moved)


def _batch(config, rows=8):
  dataset = data_lib.from_config(config.data)
  return next(data_lib.train_iterator(dataset, batch_size=rows, seed=0))


def test_sample_reconstruct_and_evaluate_agree_with_the_metrics(trained):
  result = trained
  method, state = result.method, result.state
  x = jnp.asarray(_batch(result.config)["x"])
  low = srgan_losses.box_downsample(x, 2)
  key = jax.random.PRNGKey(0)
  up = method.sample(state, key, 8, low_res=low)
  assert up.shape == (8, 8, 8, 1) and float(jnp.max(jnp.abs(up))) <= 1
  np.testing.assert_array_equal(method.reconstruct(state, {"x": x}, key), up)
  np.testing.assert_array_equal(method.sample(state, key, 8, low_res=low[..., 0]), up)
  # Without low_res: the preview (the first batch's low-res images), cycled.
  preview = state.model_state["preview"]
  assert preview.shape == (srgan.PREVIEW, 4, 4, 1)
  np.testing.assert_allclose(method.sample(state, key, 20),
                             method.sample(state, key, 20,
                                           low_res=preview[jnp.arange(20) % srgan.PREVIEW]),
                             rtol=1e-6, atol=1e-6)
  with pytest.raises(ConfigError, match=r"low_res must have shape \[3, 4, 4, 1\]"):
    method.sample(state, key, 3, low_res=low)
  values = method.evaluate(state, {"x": x}, jax.random.split(key, 8))
  bicubic = srgan_losses.bicubic_upsample(low, 2, (-1.0, 1.0))
  for suffix, out in (("", up), ("_bicubic", bicubic)):
    np.testing.assert_allclose(values[f"psnr{suffix}"],
                               image_quality.psnr(out, x, data_range=2.0), rtol=1e-5)
    np.testing.assert_allclose(values[f"ssim{suffix}"],
                               image_quality.ssim((out + 1) / 2, (x + 1) / 2, data_range=1.0),
                               rtol=1e-5)
    np.testing.assert_allclose(values[f"mse{suffix}"], np.mean((np.asarray(out) - x)**2,
                                                               axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path, trained):
  uninterrupted = jaxgen.fit(tiny(4))
  jaxgen.fit(tiny(2), workdir=tmp_path / "run")
  assert_trees_equal(jax.device_get(trained.state.params),
                     jax.device_get(jaxgen.load(tmp_path / "run").state.params))
  resumed = jaxgen.fit(tiny(4), workdir=tmp_path / "run", resume=True)
  assert_trees_equal(full_state(resumed), full_state(uninterrupted))


@pytest.mark.slow
def test_four_devices_and_pmap_give_the_one_device_run():
  one = jaxgen.fit(tiny(3, num_devices=1))
  for strategy in ("jit", "pmap"):
    four = jaxgen.fit(tiny(3, num_devices=4, strategy=strategy))
    assert_trees_close(jax.device_get((four.state.params, four.state.model_state)),
                       jax.device_get((one.state.params, one.state.model_state)),
                       rtol=2e-4, atol=2e-5)
    assert four.metrics["train"]["loss"] == pytest.approx(one.metrics["train"]["loss"],
                                                          rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("overrides,data,fragment", [
    (["model.objective=wgan_gp"], "digits", "model.objective must be"),
    (["model.objective=wgan"], "digits", "model.objective must be"),
    (["model.scale=3"], "digits", "model.scale=3 divides"),
    (["model.pixel_weight=0.0"], "digits", "needs a content loss"),
    (["model.feature_weight=1.0"], "toy2d:ring8", "srgan needs images"),
    (["model.generator_norm=layer"], "digits", "model.generator_norm"),
    (["model.margin=1.0"], "digits", "model.margin applies"),
])
def test_settings_that_do_not_fit_are_one_line_errors(overrides, data, fragment):
  assert fragment in config_error(tiny_config("srgan", data, overrides=overrides))


def test_feature_loss_needs_a_lenet_sized_image():
  spec = data_lib.DataSpec(name="grey16", shape=(16, 16, 1), num_classes=10,
                           num_train=100, num_test=10, is_image=True,
                           value_range=(-1.0, 1.0), binary=False)
  config = config_lib.get_config("srgan", "digits")
  config.model.feature_weight = 1.0
  with pytest.raises(ConfigError, match="feature_weight=0"):
    srgan.make(config, spec)
  config.model.feature_weight = 0.0
  assert srgan.make(config, spec).name == "srgan"


def test_cli_train_sample_low_res_and_eval(capsys, tmp_path):
  workdir = tmp_path / "run"
  code = cli.main(["train", "srgan", "--workdir", str(workdir), "--steps", "2"]
                  + [a for o in TINY if not o.startswith("train.") for a in ("--set", o)])
  assert code == 0
  low = np.asarray(srgan_losses.box_downsample(
      jnp.asarray(_batch(tiny())["x"][:5]), 2))
  np.savez(tmp_path / "low.npz", x=low)
  out = tmp_path / "up.npz"
  assert cli.main(["sample", "--workdir", str(workdir), "--low-res",
                   str(tmp_path / "low.npz"), "--out", str(out)]) == 0
  with np.load(out) as f:
    assert f["samples"].shape == (5, 8, 8, 1)
  assert cli.main(["sample", "--workdir", str(workdir), "--low-res",
                   str(tmp_path / "low.npz"), "--num", "2", "--out", str(out)]) == 0
  with np.load(out) as f:
    assert f["samples"].shape == (2, 8, 8, 1)
  np.savez(tmp_path / "bad.npz", x=np.zeros((2, 8, 8, 1)))
  capsys.readouterr()
  code = cli.main(["sample", "--workdir", str(workdir), "--low-res", str(tmp_path / "bad.npz"),
                   "--out", str(tmp_path / "bad_out.npz")])
  err = capsys.readouterr().err
  assert code == 2 and "low_res must have shape [2, 4, 4, 1]" in err
  assert not (tmp_path / "bad_out.npz").exists()
  assert cli.main(["eval", "--workdir", str(workdir)]) == 0
  printed = capsys.readouterr().out
  assert '"psnr_bicubic"' in printed and '"ssim"' in printed
