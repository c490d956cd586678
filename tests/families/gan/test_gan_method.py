"""The GAN method: every configuration traces, the step does what the papers say."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgen
from jaxgen import config as config_lib
from jaxgen import data as data_lib
from jaxgen.errors import ConfigError
from jaxgen.families.gan import objectives, settings

TINY = ["model.generator_hidden=(8,)", "model.discriminator_hidden=(8,)",
        "model.generator_channels=(4, 4)", "model.discriminator_channels=(4, 4)",
        "model.latent_dim=3", "model.code_dim=4",
        "tricks.minibatch_kernels=3", "tricks.reference_batch_size=4",
        "data.batch_size=16", "train.progress=False"]
_SPECS = {}


def tiny(method="gan", data="toy2d:ring8", overrides=()):
  config = config_lib.get_config(method, data)
  extra = ["model.q_hidden=4"] if method == "infogan" else []
  config_lib.apply_overrides(config, [*TINY, *extra, *overrides])
  return config


def spec_of(config):
  key = (config.data.name, config.data.scale, config.data.flatten, config.data.labels)
  if key not in _SPECS:
    _SPECS[key] = data_lib.from_config(config.data).spec
  return _SPECS[key]


def make(config):
  return jaxgen.registry.get(config.method).make(config, spec_of(config))


def example(spec, batch=16):
  out = {"x": jnp.zeros((batch,) + tuple(spec.shape), jnp.float32)}
  if spec.num_classes:
    out["label"] = jnp.arange(batch, dtype=jnp.int32) % spec.num_classes
  return out


OBJECTIVE_CASES = [[f"model.objective={o}"] for o in objectives.OBJECTIVES] + [
    ["model.objective=fgan", f"model.divergence={d}"] for d in
    ("total_variation", "kl", "reverse_kl", "pearson", "neyman", "squared_hellinger",
     "jeffrey", "jensen_shannon", "alpha")] + [
    ["tricks.feature_matching=True"], ["tricks.minibatch_discrimination=True"],
    ["tricks.virtual_batch_norm=True"], ["tricks.label_smoothing=0.1"],
    ["tricks.historical_averaging=0.1"], ["tricks.consensus=10.0"],
    ["tricks.r1_gamma=10.0"], ["model.n_critic=2", "model.critic_data=split"],
    ["model.generator_norm=batch", "model.discriminator_norm=layer"]]
IMAGE_CASES = [
    ("gan", []), ("gan", ["model.architecture=style"]), ("gan", ["model.objective=wgan_gp"]),
    ("gan", ["model.objective=began"]), ("gan", ["model.objective=ebgan"]),
    ("gan", ["tricks.virtual_batch_norm=True", "tricks.minibatch_discrimination=True"]),
    ("gan", ["tricks.consensus=1.0"]), ("cgan", []), ("cgan", ["model.objective=wgan_gp"]),
    ("acgan", []), ("infogan", []), ("infogan", ["model.categorical=0"]), ("ssgan", []),
    ("ssgan", ["model.architecture=dcgan", "model.discriminator_hidden_noise=0.0"])]


def trace_all(config, generator_functions=True):
  """Traces init, train_step, evaluate (and sample, decode) under jax.jit.

  Tracing only: jit's abstract evaluation runs the whole Python function, so
  shape errors and Python-side mistakes surface without paying for XLA.
  """
  method = make(config)
  spec = spec_of(config)
  batch = example(spec)
  key = jax.random.PRNGKey(0)
  state = jax.jit(method.init).trace(key, batch).out_info
  _, metrics = jax.jit(method.train_step).trace(state, batch).out_info
  assert "loss" in metrics and all(m.shape == () for m in metrics.values())
  per_example = jax.jit(method.evaluate).trace(state, batch, key).out_info
  assert all(v.shape == (16,) for v in per_example.values())
  if generator_functions:
    samples = jax.jit(lambda s, k: method.sample(s, k, 5)).trace(state, key).out_info
    assert samples.shape == (5,) + tuple(spec.shape)
    noise = {"noise_key": key} if config.model.architecture == "style" else {}
    decoded = jax.jit(lambda s, z: method.decode(s, z, **noise)).trace(
        state, jnp.zeros((3, config.model.latent_dim)))
    assert decoded.out_info.shape == (3,) + tuple(spec.shape)
  return metrics


@pytest.mark.parametrize("overrides", OBJECTIVE_CASES, ids=lambda o: ",".join(o))
def test_every_objective_and_trick_traces_under_jit(overrides):
  # sample and decode read only the generator: traced for the generator tricks.
  generator_trick = any("batch_norm" in o or "norm=" in o for o in overrides)
  metrics = trace_all(tiny(overrides=overrides), generator_functions=generator_trick
                      or overrides == OBJECTIVE_CASES[0])
  if "model.objective=began" in overrides:
    assert {"k", "convergence"} <= set(metrics)
  if "tricks.consensus=10.0" in overrides:
    assert "consensus" in metrics


@pytest.mark.parametrize("method,overrides", IMAGE_CASES, ids=lambda o: str(o))
def test_every_method_traces_on_images(method, overrides):
  metrics = trace_all(tiny(method, "digits", overrides))
  if method == "ssgan":
    assert {"supervised_loss", "unsupervised_loss", "feature_matching"} <= set(metrics)
  if method == "acgan":
    assert {"class_loss_real", "class_loss_fake"} <= set(metrics)


def test_objective_defaults_follow_the_objective_and_user_values_win():
  spec = spec_of(tiny())
  wgan = settings.resolve(tiny(overrides=["model.objective=wgan"]), spec, "gan")
  assert (wgan.n_critic, wgan.hyperparameters["clip"]) == (5, 0.01)
  assert wgan.discriminator_optim.name == "rmsprop"
  assert wgan.discriminator_optim.learning_rate == 5e-5
  gp = settings.resolve(tiny(overrides=["model.objective=wgan_gp",
                                        "generator_optim.learning_rate=3e-4"]), spec, "gan")
  assert (gp.n_critic, gp.hyperparameters["penalty_weight"]) == (5, 10.0)
  assert set(gp.hyperparameters) == {"penalty_weight"}  # no clip
  assert (gp.discriminator_optim.b1, gp.discriminator_optim.b2) == (0.0, 0.9)
  assert gp.generator_optim.learning_rate == 3e-4  # the user's TTUR setting
  assert gp.discriminator_optim.learning_rate == 1e-4
  began = settings.resolve(tiny(overrides=["model.objective=began"]), spec, "gan")
  assert began.hyperparameters == {"began_gamma": 0.5, "began_lambda_k": 0.001}
  info = settings.resolve(tiny("infogan", "digits"), spec_of(tiny("infogan", "digits")),
                          "infogan")
  assert (info.generator_optim.learning_rate, info.discriminator_optim.learning_rate) == (
      1e-3, 2e-4)
  # The dcgan critic switches to layer norm under a gradient penalty.
  image = settings.resolve(tiny(data="digits", overrides=["model.objective=wgan_gp"]),
                           spec_of(tiny(data="digits")), "gan")
  assert image.discriminator_norm == "layer"


@pytest.mark.parametrize("method,data,overrides,fragment", [
    ("gan", None, ["model.objective=wgan", "model.penalty_weight=5.0"],
     "model.penalty_weight applies to objective"),
    ("gan", None, ["model.clip=0.1"], "model.clip applies to objective 'wgan'"),
    ("gan", None, ["model.objective=hinge", "tricks.label_smoothing=0.1"],
     "label_smoothing applies to the cross-entropy objectives"),
    ("gan", None, ["model.objective=wgan_gp", "tricks.minibatch_discrimination=True"],
     "minibatch discrimination couples"),
    ("gan", "digits", ["model.objective=wgan_gp", "model.discriminator_norm=batch"],
     "batch norm couples"),
    ("gan", None, ["tricks.consensus=10.0", "model.n_critic=5"], "set model.n_critic=1"),
    ("gan", None, ["model.objective=ebgan", "tricks.minibatch_discrimination=True"],
     "autoencoder objective 'ebgan' has none"),
    ("gan", None, ["model.objective=fgan", "model.divergence=chi"], "model.divergence 'chi'"),
    ("gan", None, ["model.objective=fgan", "model.alpha=2.0"], "applies to model.divergence='alpha'"),
    ("gan", None, ["model.divergence=kl"], "model.divergence applies to objective 'fgan'"),
    ("gan", None, ["model.objective=wgn"], "model.objective='wgn' is not one of"),
    ("gan", None, ["model.architecture=dcgan"], "needs image data"),
    ("gan", None, ["model.n_critic=3", "model.critic_data=split"], "divisible by model.n_critic"),
    ("gan", None, ["model.sample_from=ema", "model.ema_decay=0.0"], "needs model.ema_decay > 0"),
    ("gan", "digits", ["model.architecture=style", "tricks.virtual_batch_norm=True"],
     "virtual_batch_norm"),
    ("acgan", "digits", ["model.objective=began"], "puts extra heads"),
    ("ssgan", "digits", ["model.objective=wgan"], "must be 'non_saturating' or 'minimax'"),
    ("cgan", "digits", ["data.labels=False"], "needs labelled data"),
    ("infogan", "digits", ["model.categorical=0", "model.continuous=0"], "infogan needs codes"),
    ("gan", None, ["generator_optim.name=adagrad"], "generator_optim.name 'adagrad'"),
])
def test_settings_that_do_not_fit_are_one_line_errors(method, data, overrides, fragment):
  config = tiny(method, data, overrides)
  with pytest.raises(ConfigError) as info:
    make(config)
  assert fragment in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------- running steps
def adam_count(opt_state):
  """Updates taken, from Adam's step counter (optax.adam = chain(adam, lr))."""
  adam_state = opt_state[0]
  assert isinstance(adam_state, optax.ScaleByAdamState)
  return int(adam_state.count)


@pytest.mark.slow
def test_the_critic_loop_takes_n_updates_and_wgan_clips_after_each():
  # WGAN with Adam (for its update counter), a large step so clipping binds,
  # and the batch split into one minibatch per critic step.
  config = tiny(overrides=["model.objective=wgan", "discriminator_optim.name=adam",
                           "discriminator_optim.learning_rate=0.5", "model.clip=0.05",
                           "model.n_critic=4", "model.critic_data=split"])
  method = make(config)
  batch = {"x": 3.0 * jax.random.normal(jax.random.PRNGKey(1), (16, 2)),
           "label": jnp.zeros(16, jnp.int32)}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  new_state, metrics = jax.jit(method.train_step)(state, batch)
  assert adam_count(new_state.opt_state["discriminator"]) == 4
  assert int(new_state.step) == 1 and np.isfinite(float(metrics["loss"]))
  kernels = [p["kernel"] for p in new_state.params["discriminator"].values()]
  old_kernels = [p["kernel"] for p in state.params["discriminator"].values()]
  assert all(bool(jnp.any(a != b)) for a, b in zip(kernels, old_kernels))
  leaves = np.concatenate([np.ravel(p) for p in jax.tree.leaves(new_state.params["discriminator"])])
  assert np.all(np.abs(leaves) <= 0.05 + 1e-8)
  assert np.sum(np.abs(leaves) == np.float32(0.05)) > leaves.size // 2  # the bound binds


@pytest.mark.slow
def test_ema_is_the_warmed_up_average_and_history_the_running_mean():
  decay = 0.9
  config = tiny(overrides=[f"model.ema_decay={decay}", "tricks.historical_averaging=0.5",
                           "model.objective=began"])
  method = make(config)
  raw = make(tiny(overrides=["model.sample_from=generator", f"model.ema_decay={decay}",
                             "tricks.historical_averaging=0.5", "model.objective=began"]))
  batch = {"x": jax.random.normal(jax.random.PRNGKey(1), (16, 2)),
           "label": jnp.zeros(16, jnp.int32)}
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step)
  sample = jax.jit(lambda s: method.sample(s, jax.random.PRNGKey(3), 6))
  sample_raw = jax.jit(lambda s: raw.sample(s, jax.random.PRNGKey(3), 6))
  history_g = [state.params["generator"]]
  history_d = [state.params["discriminator"]]
  ks = [0.0]
  for t in range(1, 4):
    state, metrics = step(state, batch)
    history_g.append(state.params["generator"])
    history_d.append(state.params["discriminator"])
    # BEGAN's controller: k_{t+1} = clip(k_t + λ_k (γ L(x) - L(G(z))), 0, 1).
    expected_k = np.clip(ks[-1] + 0.001 * (0.5 * float(metrics["real_energy"])
                                           - float(metrics["fake_energy"])), 0, 1)
    np.testing.assert_allclose(float(state.model_state["k"]), expected_k, rtol=1e-5, atol=1e-9)
    ks.append(float(state.model_state["k"]))
    assert adam_count(state.opt_state["discriminator"]) == t  # n_critic = 1
    assert adam_count(state.opt_state["generator"]) == t
  expected = history_g[0]   # core.optim.ema: a copy of the initial weights, then warm-up
  for n, params in enumerate(history_g[1:]):
    rate = min(decay, (1 + n) / (10 + n))
    expected = jax.tree.map(lambda e, p, r=rate: r * e + (1 - r) * p, expected, params)
  ema = state.model_state["ema_generator"]
  assert int(ema.count) == 3
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               ema.ema, expected)
  assert not np.allclose(sample(state), sample_raw(state))
  mean_g = jax.tree.map(lambda *ps: sum(ps) / len(ps), *history_g)
  mean_d = jax.tree.map(lambda *ps: sum(ps) / len(ps), *history_d)
  hist = state.model_state["historical"]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               hist["generator"], mean_g)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               hist["discriminator"], mean_d)
  assert int(hist["count_generator"]) == 4 and int(hist["count_discriminator"]) == 4


@pytest.mark.slow
def test_ssgan_reads_only_the_first_labels_of_each_class_in_the_stream():
  # Noise layers off: they are traced above, and compile slowly.
  config = tiny("ssgan", "digits", ["model.labels_per_class=2", "data.batch_size=32",
                                    "model.discriminator_input_noise=0.0",
                                    "model.discriminator_hidden_noise=0.0"])
  method = make(config)
  dataset = data_lib.from_config(config.data)
  stream = data_lib.train_iterator(dataset, batch_size=32, seed=0)
  batches = [next(stream) for _ in range(3)]
  state = jax.jit(method.init)(jax.random.PRNGKey(0), batches[0])
  step = jax.jit(method.train_step)
  for batch in batches:
    state, metrics = step(state, batch)
  assert np.isfinite(float(metrics["supervised_loss"]))
  bank = jax.device_get(state.model_state["labelled"])
  xs = np.concatenate([b["x"] for b in batches])
  ys = np.concatenate([b["label"] for b in batches])
  for c in range(10):
    first = xs[ys == c][:2]
    assert bank["count"][c] == min(2, len(first))
    np.testing.assert_array_equal(bank["x"][c][:len(first)], first)


@pytest.mark.slow
def test_pmap_on_four_devices_gives_the_one_device_parameters():
  # Batch norm in both networks, feature matching and minibatch features: each
  # needs global-batch statistics under pmap (axis-aware BatchNorm, the
  # straight-through global mean, the gathered batch).
  overrides = ["tricks.feature_matching=True", "tricks.minibatch_discrimination=True",
               "model.generator_norm=batch", "model.discriminator_norm=batch",
               "train.final_eval=False", "train.num_samples=0", "train.log_every=1"]
  results = {}
  for strategy, devices in (("jit", 1), ("pmap", 4)):
    config = tiny("gan", "toy2d:ring8", overrides + ["model.discriminator_hidden=(8, 8)"])
    config.train.update(steps=2, strategy=strategy, num_devices=devices)
    results[strategy] = jaxgen.fit(config)
  one, four = results["jit"].state, results["pmap"].state
  for tree in ("params", "model_state"):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 getattr(one, tree), getattr(four, tree))
  assert results["jit"].metrics["train"]["loss"] == pytest.approx(
      results["pmap"].metrics["train"]["loss"], rel=1e-4)
