"""benchmarks/vs_pytorch.py: a smoke run's JSON, and the PyTorch models' parity checks."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]')")

from benchmarks import vs_pytorch  # noqa: E402  pylint: disable=wrong-import-position

REPO = pathlib.Path(__file__).resolve().parents[2]

# Small versions of every family's row: the PyTorch model code paths at a
# fraction of the cost (init only, no train step).
TINY = {
    "vae-mlp": vs_pytorch.Row("tiny MLP VAE", "vae", "digits", (8, 8, 1), 16,
                              ("model.hidden=(32, 16)", "model.latent_dim=2"), steps=1,
                              value_range=(0.0, 1.0), binary=True, levels=17),
    "vae-conv": vs_pytorch.Row("tiny conv VAE", "vae", "digits", (8, 8, 1), 16,
                               ("model.architecture=conv", "model.channels=(4, 8)",
                                "model.hidden=(16,)", "model.latent_dim=2"), steps=1,
                               value_range=(0.0, 1.0), binary=True, levels=17),
    "dcgan": vs_pytorch.Row("tiny DCGAN", "gan", "digits", (8, 8, 1), 16,
                            ("model.generator_channels=(8, 4)",
                             "model.discriminator_channels=(4, 8)", "model.latent_dim=4"),
                            steps=1),
    "ddpm": vs_pytorch.Row("tiny U-Net", "ddpm", "digits", (8, 8, 1), 8,
                           ("model.channels=8", "model.channel_mults=(1, 2)",
                            "model.num_res_blocks=1", "model.attention_resolutions=(4,)",
                            "model.norm_groups=4"), steps=1),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_parity_holds_for_each_family(name):
  counts = vs_pytorch.parity(TINY[name])
  assert counts["jaxgen"] == counts["torch"] > 0


def test_parity_fails_for_a_different_model():
  row = TINY["vae-mlp"]
  wider = dataclasses.replace(row, overrides=("model.hidden=(32, 17)", "model.latent_dim=2"))
  images = vs_pytorch.synthetic_images(row)
  jax_step = vs_pytorch.JaxgenStep(row, images, shapes_only=True)
  jax_wider = vs_pytorch.JaxgenStep(wider, images, shapes_only=True)
  torch_wider = vs_pytorch.TorchStep(wider, jax_wider, images, compiled=False)
  vs_pytorch.check_parity(wider, jax_wider, torch_wider)  # the wider pair itself matches
  with pytest.raises(AssertionError, match="parameter tensors differ"):
    vs_pytorch.check_parity(row, jax_step, torch_wider)


def test_transposed_conv_with_padding_1_is_jaxgens_phase_form():
  """jaxgen's 4x4 stride-2 SAME upsampling = nn.ConvTranspose2d(4, 2, padding=1), kernel flipped."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxgen import nn as jnn  # pylint: disable=import-outside-toplevel
  x = np.random.default_rng(0).normal(size=(2, 7, 7, 3)).astype(np.float32)
  layer = jnn.PhaseConvTranspose(5, (4, 4), strides=(2, 2), padding="SAME")
  params = layer.init(jax.random.PRNGKey(0), x)["params"]
  params = {"kernel": params["kernel"], "bias": params["bias"] + 0.1}
  expected = np.asarray(layer.apply({"params": params}, x))
  conv = torch.nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1)
  kernel = np.asarray(params["kernel"])[::-1, ::-1].transpose(2, 3, 0, 1)
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(kernel.copy()))
    conv.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    got = conv(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  assert got.shape == expected.shape == (2, 14, 14, 5)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_mlp_vae_reconstructs_as_jaxgens_with_the_same_weights():
  """The PyTorch VAE is jaxgen's network, not only the same parameter count."""
  import jax  # pylint: disable=import-outside-toplevel
  row = TINY["vae-mlp"]
  images = vs_pytorch.synthetic_images(row)
  jax_step = vs_pytorch.JaxgenStep(row, images)
  torch_step = vs_pytorch.TorchStep(row, jax_step, images, compiled=False)
  (vae,) = torch_step.modules
  params = jax_step.state.params
  encoder = [params["encoder"]["MLP_0"][f"dense_{i}"] for i in range(2)]
  decoder = [params["decoder"]["MLP_0"][f"dense_{i}"] for i in range(3)]
  denses = encoder + [params["encoder"]["posterior"]] + decoder
  linears = ([m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
             + [vae.posterior]
             + [m for m in vae.decoder.modules() if isinstance(m, torch.nn.Linear)])
  assert len(linears) == len(denses) == 6
  with torch.no_grad():
    for linear, dense in zip(linears, denses):
      linear.weight.copy_(torch.from_numpy(np.asarray(dense["kernel"]).T.copy()))
      linear.bias.copy_(torch.from_numpy(np.array(dense["bias"])))
    mean, _ = vae.posterior(vae.encoder(torch_step.x)).chunk(2, dim=-1)
    got = torch.sigmoid(vae.decoder(mean)).numpy().transpose(0, 2, 3, 1)
  expected = jax_step.method.reconstruct(jax_step.state, jax_step.batch,
                                         jax.random.PRNGKey(0))
  np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_a_failing_torch_compile_is_recorded_not_fatal():
  def broken():
    raise RuntimeError("no C++ compiler\nmore detail")

  assert vs_pytorch.first_step("torch_compile", broken) == (
      None, None, "RuntimeError: no C++ compiler")
  with pytest.raises(RuntimeError):
    vs_pytorch.first_step("torch_eager", broken)


def test_every_row_names_a_known_method_and_fits_its_shape():
  for name, row in vs_pytorch.ROWS.items():
    assert row.method in ("vae", "gan", "ddpm", "pixelcnn", "realnvp"), name
    assert len(row.shape) == 3 and row.batch_size > 0 and row.steps > 0, name


@pytest.mark.slow
def test_quick_run_writes_both_rates_and_equal_parameter_counts(tmp_path):
  out = tmp_path / "vs_pytorch.json"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  # One plain CPU device, as a user's run has (not the test session's four).
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=4", "")
  done = subprocess.run(
      [sys.executable, "benchmarks/vs_pytorch.py", "--quick", "--rows", "vae-mlp-digits",
       "--no-compile", "--threads", "1", "--out", str(out), "--figure",
       str(tmp_path / "chart.png")],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads(out.read_text())
  assert results["versions"]["torch"] and results["versions"]["jax"]
  assert results["threads"]["torch_intra_op"] == 1
  assert results["threads"]["cpu_count"] == os.cpu_count()
  assert len(results["threads"]["cores_used"]) == 1
  row = results["rows"]["vae-mlp-digits"]
  assert set(results["rows"]) == {"vae-mlp-digits"}
  assert row["parameters"]["jaxgen"] == row["parameters"]["torch"] == 102_224
  assert set(row["steps_per_sec"]) == {"jaxgen", "torch_eager"}
  assert all(rate > 0 for rate in row["steps_per_sec"].values())
  assert all(len(rates) == 2 for rates in row["steps_per_sec_by_round"].values())
  assert row["ratio"]["jaxgen_over_eager"] == pytest.approx(
      row["steps_per_sec"]["jaxgen"] / row["steps_per_sec"]["torch_eager"])
  assert row["ratio"]["jaxgen_over_compile"] is None
  assert row["torch_compile_error"] == "skipped (--no-compile)"
  assert set(row["time_to_first_step_seconds"]) == {"jaxgen", "torch_eager"}
  assert "vae-mlp-digits (128)" in results["table"]
  # The run drew its own file alone (not docs/performance.md's) where --figure said.
  assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert f"wrote {tmp_path / 'chart.png'}" in done.stdout


# ------------------------------------------------ the exact-likelihood rows
LIKELIHOOD_TINY = {
    "pixelcnn": vs_pytorch.Row("tiny PixelCNN", "pixelcnn", "digits", (6, 6, 1), 4,
                               ("model.features=8", "model.layers=2",
                                "model.output_features=8", "model.first_kernel=5"),
                               steps=1, value_range=(0.0, 1.0), binary=True, levels=2),
    "gated": vs_pytorch.Row("tiny Gated PixelCNN", "pixelcnn", "digits", (6, 6, 1), 4,
                            ("model.architecture=gated", "model.features=8", "model.layers=2",
                             "model.output_features=8", "model.first_kernel=5"),
                            steps=1, value_range=(0.0, 1.0), binary=True, levels=2),
    "realnvp": vs_pytorch.Row("tiny RealNVP", "realnvp", "digits", (4, 4, 1), 8,
                              ("model.features=4", "model.blocks=1"), steps=1,
                              value_range=(0.0, 1.0), levels=17),
}


@pytest.mark.parametrize("name", sorted(LIKELIHOOD_TINY))
def test_parity_holds_for_the_likelihood_rows(name):
  counts = vs_pytorch.parity(LIKELIHOOD_TINY[name])
  assert counts["jaxgen"] == counts["torch"] > 0


def _copy_conv(conv, params):
  """A flax conv's kernel [kh, kw, in, out] and bias into a torch Conv2d."""
  conv.weight.copy_(torch.from_numpy(np.asarray(params["kernel"]).transpose(3, 2, 0, 1).copy()))
  conv.bias.copy_(torch.from_numpy(np.array(params["bias"])))


def _perturbed(params, seed):
  """Every parameter plus noise, so zero-initialised layers matter too."""
  import jax  # pylint: disable=import-outside-toplevel
  leaves, treedef = jax.tree.flatten(params)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(treedef, [np.asarray(l) + 0.2 * rng.normal(size=l.shape).astype(
      np.float32) for l in leaves])


@pytest.mark.parametrize("name", ["pixelcnn", "gated"])
def test_pytorch_pixelcnn_gives_jaxgens_logits_with_the_same_weights(name):
  """The PyTorch mirror is jaxgen's masked network (masks, paddings, wiring), not only
  the same parameter count."""
  from jaxgen.families.pixelcnn import method as pixelcnn  # pylint: disable=import-outside-toplevel
  row = LIKELIHOOD_TINY[name]
  images = vs_pytorch.synthetic_images(row)
  jax_step = vs_pytorch.JaxgenStep(row, images)
  (net,) = vs_pytorch.TorchStep(row, jax_step, images, compiled=False).modules
  params = _perturbed(jax_step.state.params["network"], seed=1)
  with torch.no_grad():
    if name == "pixelcnn":
      _copy_conv(net.input.conv, params["input"])
      for i, block in enumerate(net.blocks):
        for part in ("reduce", "conv", "expand"):
          _copy_conv(getattr(block, part).conv, params[f"block_{i}"][part])
    else:
      for i, layer in enumerate(net.layers):
        p = params[f"layer_{i}"]
        _copy_conv(layer.vertical.conv, p["vertical"])
        _copy_conv(layer.horizontal.conv, p["horizontal"])
        _copy_conv(layer.link, p["vertical_to_horizontal"])
        _copy_conv(layer.out.conv, p["horizontal_out"])
    _copy_conv(net.output.hidden.conv, params["output"]["output_hidden"])
    _copy_conv(net.output.logits.conv, params["output"]["logits"])
    got = net(torch.from_numpy(images.transpose(0, 3, 1, 2) * 2.0 - 1.0)).numpy()
  model = jax_step.method.sample.args[0]
  levels = np.round(images).astype(np.int32)
  expected = np.asarray(pixelcnn.apply_network(model, params, levels, None))  # [B,H,W,C,L]
  b, _, h, w = got.shape
  got = got.reshape(b, 1, 2, h, w).transpose(0, 3, 4, 1, 2)
  assert np.abs(expected).max() > 0.1  # not a trivially zero network
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # compiles the flow's init
def test_pytorch_realnvp_gives_jaxgens_latents_and_log_det_with_the_same_weights():
  """Train mode (batch statistics): z and log|det| of the whole multi-scale flow agree."""
  from jaxgen.families import realnvp  # pylint: disable=import-outside-toplevel
  row = LIKELIHOOD_TINY["realnvp"]
  images = vs_pytorch.synthetic_images(row)
  jax_step = vs_pytorch.JaxgenStep(row, images)
  (flow,) = vs_pytorch.TorchStep(row, jax_step, images, compiled=False).modules
  params = _perturbed(jax_step.state.params["flow"], seed=2)
  with torch.no_grad():
    for i, (norm, coupling) in enumerate(zip(flow.norms, flow.couplings)):
      norm.log_gamma.copy_(torch.from_numpy(np.array(params[f"norm{i}"]["log_gamma"])))
      norm.beta.copy_(torch.from_numpy(np.array(params[f"norm{i}"]["beta"])))
      p = params[f"coupling{i}"]
      coupling.scale.copy_(torch.from_numpy(np.array(p["scale"])))
      _copy_conv(coupling.net.conv_in, p["net"]["conv_in"])
      for j, (conv0, conv1) in enumerate(coupling.net.blocks):
        _copy_conv(conv0, p["net"][f"block{j}_conv0"])
        _copy_conv(conv1, p["net"][f"block{j}_conv1"])
      _copy_conv(coupling.net.conv_out, p["net"]["conv_out"])
    y = np.random.default_rng(3).normal(size=images.shape).astype(np.float32)
    z, log_det = flow(torch.from_numpy(y.transpose(0, 3, 1, 2)))
  model = realnvp.model_of(jax_step.method)
  variables = {"params": params, **jax_step.state.model_state}
  (z_jax, log_det_jax), _ = model.flow.apply(variables, y, train=True,
                                             method=model.flow.forward,
                                             mutable=["batch_stats"])
  assert float(np.std(np.asarray(log_det_jax))) > 0.01  # the couplings act per example
  np.testing.assert_allclose(z.numpy(), np.asarray(z_jax), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(log_det.numpy(), np.asarray(log_det_jax), rtol=1e-4, atol=1e-3)
