"""The `ddpm` and `latent_diffusion` methods end to end, guidance identities, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen import registry
from jaxgen.core import rng
from jaxgen.engine import runs
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError
from jaxgen.families.diffusion import method as diffusion
from jaxgen.families.diffusion import schedules
from jaxgen.families.diffusion import settings as diffusion_settings
from tests.helpers import load_experiment

TINY_UNET = ["model.channels=8", "model.channel_mults=(1,)", "model.num_res_blocks=1",
             "model.attention_resolutions=()", "model.norm_groups=4", "model.timesteps=50",
             "model.sample_steps=5"]
TINY_MLP = ["model.hidden=32", "model.depth=1", "model.timesteps=50", "model.sample_steps=10"]
TOY = TINY_MLP + ["train.log_every=25", "train.coverage_samples=200",
                              "data.batch_size=64", "data.num_examples=2000"]


def small(method="ddpm", data=None, steps=3, overrides=()):
  config = config_lib.get_config(method, data)
  config_lib.apply_overrides(config, [
      "data.batch_size=32", "train.progress=False", "train.num_samples=0",
      f"train.steps={steps}", *overrides])
  return config


def perturbed(state, decay, scale=0.05):
  """The state with noisy EMA weights, so conditional and unconditional outputs differ."""
  generator = np.random.default_rng(42)  # host noise: nothing to compile
  del decay  # the EMA is stored as the averaged weights themselves
  ema = state.model_state["ema"]
  averaged = jax.tree.map(
      lambda x: x + scale * generator.standard_normal(x.shape).astype(np.float32),
      ema.ema)
  return state.replace(model_state={**state.model_state, "ema": ema._replace(ema=averaged)})


@pytest.fixture(scope="module")
def unet_run():
  """The U-Net on digits, two steps, with the full bound on the test split."""
  return jaxgen.fit(small(steps=2, overrides=TINY_UNET))


@pytest.fixture(scope="module")
def cfg_run():
  """The MLP denoiser with classifier-free guidance on digits, 150 steps."""
  config = load_experiment("diffusion_guidance").get_config(quick=True, steps=150,
                                                       sample_steps=10)
  config_lib.apply_overrides(config, ["train.progress=False", "train.log_every=25",
                                      "train.final_eval=True"])
  return jaxgen.fit(config)


@pytest.fixture(scope="module")
def classifier_run():
  """The MLP denoiser with a noise-conditional classifier on ring8, 150 steps."""
  return jaxgen.fit(small(data="toy2d:ring8", steps=150,
                          overrides=TOY + ["model.guidance=classifier"]))


@pytest.mark.slow
def test_digits_run_reports_the_whole_bound(unet_run):
  evaluation = unet_run.metrics["eval"]
  parts = ("prior_bits_per_dim", "diffusion_bits_per_dim", "decoder_bits_per_dim")
  assert evaluation["nll_bound_bits_per_dim"] == pytest.approx(
      sum(evaluation[p] for p in parts), rel=1e-6)
  # Discrete data: every term is a KL or −log P(bin), so all are non-negative.
  assert all(evaluation[p] >= 0 for p in parts)
  record = [r for r in unet_run.history if r["split"] == "test"][-1]
  assert record["protocol"]["num_examples"] == unet_run.spec.num_test
  assert "17 levels" in record["protocol"]["decoder"]
  assert "T=50" in record["protocol"]["estimator"]
  samples = np.asarray(jax.jit(lambda s, k: unet_run.method.sample(s, k, 3))(
      perturbed(unet_run.state, 0.999), jax.random.PRNGKey(0)))
  assert samples.shape == (3, 8, 8, 1)
  assert samples.min() >= -1.0 and samples.max() <= 1.0


@pytest.mark.slow
def test_train_loss_is_the_epsilon_mse_of_the_step_draws(cfg_run):
  method, state, config = cfg_run.method, cfg_run.state, cfg_run.config
  dataset = data_lib.from_config(config.data)
  batch = next(data_lib.train_iterator(dataset, batch_size=32, seed=5))
  _, metrics = jax.jit(method.train_step)(state, batch)
  # The oracle: the same draws, by hand, from the step's keys.
  keys = state.keys("time", "noise", "labels", "codec")
  t = np.asarray(rng.randint(keys["time"], (32,), 0, 50))
  noise = np.asarray(rng.normal(keys["noise"], (32, 8, 8, 1)), np.float64)
  drop = np.asarray(rng.bernoulli(keys["labels"], 0.1, (32,)))
  labels = np.where(drop, 10, batch["label"])  # label 10 = "no label"
  alpha_bar = schedules.get("linear", 50).alpha_bars[t][:, None, None, None]
  x0 = np.asarray(batch["x"], np.float64)  # data.scale='symmetric': already in [-1, 1]
  x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * noise
  net = diffusion.make_denoiser(diffusion_settings.resolve(config.model, (8, 8, 1), 10),
                               (8, 8, 1), 10)
  eps_hat, _ = jax.jit(net.apply)({"params": state.params["denoiser"]},
                                  jnp.asarray(x_t, jnp.float32), jnp.asarray(t),
                                  jnp.asarray(labels))
  expected = np.mean((noise - np.asarray(eps_hat, np.float64)) ** 2)
  assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
  assert float(metrics["simple"]) == float(metrics["loss"])


@pytest.mark.slow
def test_classifier_free_guidance_identities_are_exact(cfg_run):
  method, state = cfg_run.method, perturbed(cfg_run.state, 0.95)
  key = jax.random.PRNGKey(3)
  labels = jnp.arange(40, dtype=jnp.int32) % 10
  guided = jax.jit(lambda s, k, y, w: method.sample(s, k, 40, labels=y, guidance=w))
  unguided = jax.jit(lambda s, k, y: method.sample(s, k, 40, labels=y, guidance=None))
  unconditional = np.asarray(unguided(state, key, -jnp.ones(40, jnp.int32)))
  conditional = np.asarray(unguided(state, key, labels))
  assert np.abs(unconditional - conditional).max() > 1e-2  # the test is not vacuous
  # w = 0 is the unconditional model and w = 1 the conditional one, bit for bit.
  np.testing.assert_array_equal(np.asarray(guided(state, key, labels, 0.0)), unconditional)
  np.testing.assert_array_equal(np.asarray(guided(state, key, labels, 1.0)), conditional)
  assert np.abs(np.asarray(guided(state, key, labels, 3.0)) - conditional).max() > 1e-2
  # Default sampling: labels 0, 1, ... cycling over the classes, w = guidance_scale.
  default = jax.jit(lambda s, k: method.sample(s, k, 40))(state, key)
  np.testing.assert_array_equal(np.asarray(default),
                                np.asarray(guided(state, key, labels, 2.0)))


@pytest.mark.slow
def test_loss_falls_and_the_conditional_bound_is_reported(cfg_run):
  train = [r for r in cfg_run.history if r["split"] == "train"]
  assert train[-1]["loss"] < 0.9 * train[0]["loss"], [r["loss"] for r in train]
  protocol = [r for r in cfg_run.history if r["split"] == "test"][-1]["protocol"]
  assert protocol["conditioning"].startswith("−log p(x | y)")
  assert cfg_run.metrics["eval"]["nll_bound_bits_per_dim"] > 0


@pytest.mark.slow
def test_classifier_learns_and_guides(classifier_run):
  protocol = [r for r in classifier_run.history if r["split"] == "test"][-1]["protocol"]
  assert protocol["decoder"] == "Gaussian density"
  assert 0 <= classifier_run.metrics["eval"]["modes_covered"] <= 8
  train = [r for r in classifier_run.history if r["split"] == "train"]
  assert train[-1]["classifier_loss"] < train[0]["classifier_loss"] - 0.05
  method, state = classifier_run.method, classifier_run.state
  key = jax.random.PRNGKey(1)
  labels = jnp.zeros(256, jnp.int32)
  guided = jax.jit(lambda s, k, w: method.sample(s, k, 256, labels=labels, guidance=w))
  unguided = np.asarray(jax.jit(lambda s, k: method.sample(
      s, k, 256, labels=labels, guidance=None))(state, key))
  np.testing.assert_array_equal(np.asarray(guided(state, key, 0.0)), unguided)
  # Guided towards mode 0, more samples land nearest to its centre.
  modes = classifier_run.spec.modes
  share = lambda x: np.mean(np.argmin(np.linalg.norm(  # noqa: E731
      np.asarray(x)[:, None] - modes[None], axis=-1), axis=-1) == 0)
  assert share(guided(state, key, 5.0)) > share(unguided) + 0.1


@pytest.mark.slow
def test_eager_progress_sampling_equals_the_compiled_sampler(classifier_run):
  method, state = classifier_run.method, classifier_run.state
  key = jax.random.PRNGKey(2)
  compiled = jax.jit(lambda s, k: method.sample(s, k, 16, sampler="ddpm", steps=50,
                                                guidance=None))(state, key)
  eager = method.sample(state, key, 16, sampler="ddpm", steps=50, guidance=None,
                        progress=True)
  np.testing.assert_allclose(np.asarray(eager), np.asarray(compiled), rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_chain_snapshots_start_at_the_prior_draw_and_end_at_the_samples(cfg_run, sampler):
  method, state = cfg_run.method, cfg_run.state
  key = jax.random.PRNGKey(3)
  labels = jnp.arange(6) % 10
  chain = method.sample(state, key, 6, labels=labels, sampler=sampler, steps=10,
                        eta=0.5, snapshots=4)
  samples = method.sample(state, key, 6, labels=labels, sampler=sampler, steps=10, eta=0.5)
  assert chain.shape == (5,) + samples.shape
  np.testing.assert_allclose(np.asarray(chain[-1]), np.asarray(samples), rtol=1e-5, atol=1e-5)
  # x_T is the sampler's own prior draw (its "prior" key), in data space: the
  # digits are scaled to [-1, 1] (data.scale='symmetric'), images are clipped.
  assert tuple(cfg_run.spec.value_range) == (-1.0, 1.0)
  x_T = jax.random.normal(rng.split(key, "prior", "chain")["prior"], samples.shape)
  np.testing.assert_allclose(np.asarray(chain[0]), np.clip(np.asarray(x_T), -1.0, 1.0),
                             atol=1e-6)
  assert not np.allclose(np.asarray(chain[2]), np.asarray(chain[-1]))
  if sampler == "ddpm":  # (one sampler: the chunks compile anew)
    # With progress=True each run of steps goes in compiled chunks (2 steps
    # here, so runs of 3 are split) with a bar between them: the same chain.
    config = cfg_run.config.copy_and_resolve_references()
    config.model.progress_chunk = 2
    chunked = registry.get("ddpm").make(config, cfg_run.spec)
    shown = chunked.sample(state, key, 6, labels=labels, sampler=sampler, steps=10,
                           eta=0.5, snapshots=4, progress=True)
    np.testing.assert_allclose(np.asarray(shown), np.asarray(chain), rtol=1e-5, atol=1e-5)
  with pytest.raises(ConfigError, match="snapshots must be 0 to the number of sampling steps"):
    method.sample(state, key, 6, steps=10, snapshots=11)


VARIANTS = [
    ("digits", TINY_UNET + ["model.prediction=v", "model.loss=hybrid",
                            "model.variance=learned", "model.schedule=cosine",
                            "model.guidance=classifier_free"]),
    ("toy2d:ring8", TINY_MLP + ["model.prediction=x0", "model.loss=vlb",
                                "model.variance=fixed_large", "model.sampler=ddpm",
                                "model.conditional=True"]),
    ("digits", TINY_MLP + ["model.architecture=mlp", "model.guidance=classifier",
                           "data.binarize=dynamic", "data.scale=auto"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("data,overrides", VARIANTS)
def test_variants_trace_under_jit(data, overrides):
  config = small(data=data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  method = registry.get("ddpm").make(config, spec)
  batch = _zero_batch(spec)
  key = jax.random.PRNGKey(0)
  state = jax.eval_shape(method.init, key, batch)
  jax.jit(method.train_step).lower(state, batch)
  jax.jit(method.evaluate).lower(state, batch, key)
  jax.jit(lambda s, k: method.sample(s, k, 4)).lower(state, key)
  out = jax.eval_shape(method.train_step, state, batch)[1]
  assert "loss" in out and "grad_norm" in out
  if "model.loss=hybrid" in overrides:
    assert "vlb" in out


def _zero_batch(spec):
  batch = {"x": jnp.zeros((32,) + tuple(spec.shape))}
  if spec.num_classes:
    batch["label"] = jnp.zeros((32,), jnp.int32)
  return batch


@pytest.mark.slow
def test_latent_diffusion_trains_in_a_vae_code_space(tmp_path):
  latent = load_experiment("diffusion_latent")
  jaxgen.fit(latent.vae_config(quick=True, steps=3), workdir=tmp_path / "vae")
  config = latent.latent_config(quick=True, autoencoder_workdir=tmp_path / "vae", steps=3)
  config.train.progress = False
  result = jaxgen.fit(config)
  assert float(result.state.model_state["latent_scale"]) > 0
  samples = result.method.sample(result.state, jax.random.PRNGKey(0), 5)
  assert samples.shape == (5, 8, 8, 1)
  evaluation = result.metrics["eval"]
  assert np.isfinite(evaluation["nll_bound_bits_per_dim"])
  protocol = [r for r in result.history if r["split"] == "test"][-1]["protocol"]
  assert protocol["autoencoder"]["method"] == "vae"
  assert protocol["autoencoder"]["code_shape"] == [8]
  assert "not a bound on the image likelihood" in protocol["units"]
  # The autoencoder's data must be this run's data: the same transforms (the
  # binarized digits have the VAE's shape and range, yet are other data) ...
  config.data.binarize = "dynamic"
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    runs.build_method(config, spec)
  assert "trained with data.binarize='none', but this run has data.binarize='dynamic'" in (
      str(info.value)) and "\n" not in str(info.value)
  # ... and the same shape and value range.
  config.data.binarize = "none"
  config.data.scale = "symmetric"
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError, match="use the autoencoder's data settings"):
    runs.build_method(config, spec)


@pytest.mark.parametrize("method,data,overrides,fragment", [
    ("ddpm", None, ["model.prediction=score"], "unknown model.prediction 'score'; valid:"),
    ("ddpm", None, ["model.ema_decay=1.0"], "model.ema_decay must be < 1.0"),
    ("ddpm", None, ["model.timesteps=0"], "model.timesteps must be >= 1"),
    ("ddpm", None, ["model.variance=learned"], "only trained by the bound"),
    ("ddpm", "toy2d:ring8", ["model.architecture=unet"], "needs image data"),
    ("ddpm", None, ["model.channel_mults=(1, 2, 2, 2, 2)"], "divisible by 16"),
    ("ddpm", None, ["model.guidance=classifier_free", "model.label_dropout=0.0"],
     "label_dropout > 0"),
    ("ddpm", None, ["model.conditional=True", "data.labels=False"], "needs labelled data"),
    ("ddpm", None, ["model.sample_steps=5000"], "sample_steps must be"),
    ("latent_diffusion", None, [], "model.autoencoder_workdir is empty"),
])
def test_settings_that_do_not_fit_are_one_line_errors(method, data, overrides, fragment):
  config = small(method, data, overrides=overrides)
  spec = data_lib.from_config(config.data).spec
  with pytest.raises(ConfigError) as info:
    runs.build_method(config, spec)
  assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_sampling_arguments_are_checked(cfg_run):
  with pytest.raises(ConfigError, match="sampler 'euler' is not one of"):
    cfg_run.method.sample(cfg_run.state, jax.random.PRNGKey(0), 2, sampler="euler")
  unconditional = registry.get("ddpm").make(
      small(overrides=TINY_MLP + ["model.architecture=mlp"]), cfg_run.spec)
  with pytest.raises(ConfigError, match="not class-conditional"):
    unconditional.sample(None, jax.random.PRNGKey(0), 2, labels=jnp.zeros(2, jnp.int32))
  with pytest.raises(ConfigError, match="needs a model trained with"):
    unconditional.sample(None, jax.random.PRNGKey(0), 2, guidance=1.0)


@pytest.mark.slow
def test_evaluate_with_per_example_keys_does_not_depend_on_the_batching(unet_run):
  method, state = unet_run.method, unet_run.state
  batch = next(data_lib.eval_batches(data_lib.from_config(unet_run.config.data),
                                     split="test", batch_size=8))
  batch = {k: jnp.asarray(v) for k, v in batch.items() if k != "mask"}
  keys = rng.index_keys(jax.random.PRNGKey(3), jnp.arange(8))
  evaluate = jax.jit(method.evaluate)
  whole = evaluate(state, batch, keys)
  parts = [evaluate(state, {k: v[i:i + 4] for k, v in batch.items()}, keys[i:i + 4])
           for i in (0, 4)]
  for name, values in whole.items():
    np.testing.assert_allclose(np.concatenate([p[name] for p in parts]), values,
                               rtol=1e-5, atol=1e-6)


def _recording_space(space, seen):
  """`space` whose functions record the keys they are given (eager calls only)."""
  def init_state(x, key):
    seen.append(np.asarray(key))
    return space.init_state(x, key)

  def encode(model_state, x, key):
    seen.append(np.asarray(key))
    return space.encode(model_state, x, key)

  return space._replace(init_state=init_state, encode=encode)


@pytest.mark.slow
def test_no_key_is_used_twice_by_the_space():
  config = small(data="toy2d:ring8", overrides=TINY_MLP + ["data.num_examples=200"])
  spec = data_lib.from_config(config.data).spec
  seen = []
  space = _recording_space(diffusion.data_space(codec_lib.from_spec(spec), spec.shape),
                           seen)
  method = diffusion.build(config, space, None, "recorded")
  batch = {"x": jnp.zeros((4, 2))}
  state = method.init(jax.random.PRNGKey(0), batch)
  state, _ = method.train_step(state, batch)
  method.evaluate(state, batch, jax.random.PRNGKey(1))
  assert len(seen) == 3  # init_state at init, encode in the step and in evaluate
  assert len({key.tobytes() for key in seen}) == len(seen)


def test_sampling_and_evaluation_read_the_warmed_up_ema():
  config = small(data="toy2d:ring8", overrides=TINY_MLP + [
      "data.num_examples=200", "model.ema_decay=0.9"])
  spec = data_lib.from_config(config.data).spec
  method = registry.get("ddpm").make(config, spec)
  batch = {"x": jax.random.normal(jax.random.PRNGKey(5), (8, 2))}
  state = method.init(jax.random.PRNGKey(0), batch)
  model = method.train_step.args[0]
  # Before the first step the average is the initial weights.
  for got, want in zip(jax.tree.leaves(diffusion.averaged_params(model, state)),
                       jax.tree.leaves(state.params["denoiser"])):
    np.testing.assert_array_equal(got, want)
  step = jax.jit(method.train_step)
  expected = state.params["denoiser"]
  for n in range(3):
    state, _ = step(state, batch)
    rate = min(0.9, (1 + n) / (10 + n))     # the warm-up of core.optim.ema
    expected = jax.tree.map(lambda e, p, r=rate: r * e + (1 - r) * p, expected,
                            state.params["denoiser"])
  for got, want in zip(jax.tree.leaves(diffusion.averaged_params(model, state)),
                       jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _tiny_toy(steps, **train):
  config = small(data="toy2d:ring8", steps=steps, overrides=TINY_MLP + [
      "data.num_examples=200", "train.final_eval=False"])
  for key, value in train.items():
    config.train[key] = value
  return config


@pytest.mark.slow
def test_resume_and_devices_keep_the_ema_exact(tmp_path):
  uninterrupted = jaxgen.fit(_tiny_toy(6))
  jaxgen.fit(_tiny_toy(4, checkpoint_every=4), workdir=tmp_path / "run")
  resumed = jaxgen.fit(_tiny_toy(6, checkpoint_every=4), workdir=tmp_path / "run",
                       resume=True)
  for got, want in zip(jax.tree.leaves(resumed.state.model_state),
                       jax.tree.leaves(uninterrupted.state.model_state)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  one = jaxgen.fit(_tiny_toy(4, num_devices=1))
  four = jaxgen.fit(_tiny_toy(4, num_devices=4, strategy="pmap"))
  for got, want in zip(jax.tree.leaves(four.state.model_state),
                       jax.tree.leaves(one.state.model_state)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
