"""WaveNet oracles: causality and the receptive field from the Jacobian, normalisation by
enumeration, the one-step (cached) form against the full pass, cached == naive generation."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgen import registry
from jaxgen.data import DataSpec
from jaxgen.families import wavenet
from jaxgen.families.wavenet import losses
from jaxgen.nn import wavenet as wavenet_nn


def tiny_spec(length=2, channels=1, num_classes=None):
  return DataSpec(name="tiny", shape=(length, channels), num_classes=num_classes,
                  num_train=16, num_test=16, is_image=False, value_range=(-1.0, 1.0),
                  binary=False, levels=256, is_sequence=True, companding="mu_law",
                  sample_rate=8000.0)


def tiny_config(conditional=False, depth=2, stacks=1, kernel=2):
  config = registry.get("wavenet").default_config("seq1d:sines")
  config.model.update(residual_channels=6, dilation_channels=5, skip_channels=7,
                      output_channels=8, depth=depth, stacks=stacks, kernel=kernel,
                      conditional=conditional)
  config.train = ml_collections.ConfigDict(dict(steps=10))
  return config


def noisy(params, seed=0, scale=0.3):
  """Parameters with noise on every leaf (biases too), so nothing cancels by accident."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 100), len(leaves))
  return tree.unflatten([p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def random_model(spec, config, seed=0):
  method = registry.get("wavenet").make(config, spec)
  model = wavenet.method.model_of(config, spec)
  state = jax.jit(method.init)(jax.random.PRNGKey(seed), {"x": jnp.zeros((1,) + spec.shape)})
  return method, model, state.replace(params={"network": noisy(state.params["network"], seed)})


@pytest.mark.parametrize("kernel,dilations,num_classes",
                         [(3, (1, 2, 1), 0), (2, (1, 2, 1, 2), 3)])
def test_logits_see_exactly_the_receptive_field(kernel, dilations, num_classes):
  net = wavenet_nn.WaveNet(levels=3, channels=2, dilations=dilations, kernel_size=kernel,
                           residual_channels=4, dilation_channels=3, skip_channels=8,
                           output_channels=32, num_classes=num_classes)
  length = 24
  inputs = jax.random.normal(jax.random.PRNGKey(0), (1, length, 6))
  labels = jnp.array([1]) if num_classes else None
  params = noisy(jax.jit(net.init)(jax.random.PRNGKey(1), inputs, labels))
  # (Wide output layers, so that no position's ReLUs are all off by chance.)
  jacobian = jax.jit(jax.jacrev(lambda x: net.apply(params, x, labels)))(inputs)
  depends = np.asarray(jnp.abs(jacobian).sum(axis=(0, 2, 3, 4, 6)))     # [t_out, s_in]
  field = wavenet_nn.receptive_field(kernel, dilations)
  assert field == (kernel - 1) * (1 + sum(dilations)) + 1
  t, s = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
  inside = (s < t) & (s >= t - field)
  assert np.all(depends[~inside] == 0.0)  # exactly: inputs at s >= t, or too far back
  assert np.all(depends[inside] > 0.0)    # and every input in the field matters
  assert net.receptive_field == field


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [True])  # (the unconditional network is a part)
def test_probabilities_of_all_signals_sum_to_one(conditional):
  spec = tiny_spec(length=2, num_classes=3 if conditional else None)
  method, model, state = random_model(spec, tiny_config(conditional))
  levels = np.array(list(itertools.product(range(256), repeat=2)), np.int32)[..., None]
  x = model.codec.from_level_index(jnp.asarray(levels))  # all 65,536 signals
  batch = {"x": x}
  if conditional:
    batch["label"] = jnp.full((len(x),), 2, jnp.int32)
  nats = jax.jit(method.evaluate)(state, batch, jax.random.PRNGKey(0))["nll_nats"]
  p = np.exp(-np.asarray(nats, np.float64))
  assert p.sum() == pytest.approx(1.0, abs=1e-4)
  assert p.max() > 10 * p.min()  # far from uniform: the test has teeth


def test_nll_is_the_sum_of_the_softmax_cross_entropies():
  logits = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 2, 7))
  levels = jax.random.randint(jax.random.PRNGKey(1), (3, 5, 2), 0, 7)
  probs = np.asarray(jax.nn.softmax(logits))
  expected = -np.log(np.take_along_axis(probs, np.asarray(levels)[..., None], -1)).sum(
      axis=(1, 2, 3))
  np.testing.assert_allclose(losses.nll(logits=logits, levels=levels), expected, rtol=1e-5)


@pytest.mark.parametrize("kernel", [3])  # kernel 2: the generation test below
def test_one_step_form_gives_the_full_pass_logits(kernel):
  """Teacher forcing through `step` (queues) and through `stack` on the receptive-field
  window reproduce the full pass's logits at every t (float tolerance 1e-5)."""
  spec = tiny_spec(length=20, channels=2, num_classes=3)
  config = tiny_config(conditional=True, depth=2, stacks=2, kernel=kernel)
  _, model, state = random_model(spec, config)
  variables = {"params": state.params["network"]}
  levels = jax.random.randint(jax.random.PRNGKey(3), (2, 20, 2), 0, 256)
  labels = jnp.array([0, 2])
  full = jax.jit(model.network.apply)(variables, wavenet.method.one_hot(model, levels), labels)
  net, field = model.network, model.receptive_field
  queues = net.apply(variables, 2, method=wavenet_nn.WaveNet.initial_queues)
  shifted = jnp.concatenate([jnp.full((2, field, 2), -1), levels], axis=1)  # x_{t-1} at field+t

  @jax.jit
  def both(queues, t):
    previous = wavenet.method.one_hot(model, shifted[:, field - 1 + t])
    step, queues = net.apply(variables, previous, queues, t, labels,
                             method=wavenet_nn.WaveNet.step)
    window = wavenet.method.one_hot(model, jax.lax.dynamic_slice_in_dim(shifted, t, field, 1))
    valid = (jnp.arange(field) + t - field + 1 >= 0).astype(jnp.float32)
    naive = net.apply(variables, window, labels, valid, method=wavenet_nn.WaveNet.stack)
    return step, naive[:, -1], queues

  for t in range(20):
    step, naive, queues = both(queues, t)
    np.testing.assert_allclose(step, full[:, t], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(naive, full[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conditional", [True])  # unconditional: the API/CLI test
def test_cached_and_naive_generation_draw_the_same_signals(conditional):
  """The same key gives the same levels, bit for bit (the logits agree to ~1e-6 and
  the draws are Gumbel-max on them with the same noise)."""
  spec = tiny_spec(length=40, num_classes=3 if conditional else None)
  _, model, state = random_model(spec, tiny_config(conditional, depth=3, stacks=2))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(jnp.arange(5))
  labels = jnp.array([0, 1, 2, 0, 1]) if conditional else None
  draw = jax.jit(lambda p, cached: wavenet.generate(model, p, keys, labels, 40, cached=cached),
                 static_argnums=1)
  cached = np.asarray(draw(state.params["network"], True))
  naive = np.asarray(draw(state.params["network"], False))
  assert cached.shape == (5, 40, 1)
  np.testing.assert_array_equal(cached, naive)
  assert len(np.unique(cached)) > 20  # noisy parameters: varied draws, not one level


def test_samples_do_not_depend_on_how_many_are_drawn():
  spec = tiny_spec(length=12)
  method, _, state = random_model(spec, tiny_config())
  key = jax.random.PRNGKey(4)
  three = jax.jit(lambda s: method.sample(s, key, 3))(state)
  five = jax.jit(lambda s: method.sample(s, key, 5))(state)
  np.testing.assert_array_equal(three, five[:3])
  longer = jax.jit(lambda s: method.sample(s, key, 3, length=30))(state)
  assert longer.shape == (3, 30, 1)
  np.testing.assert_array_equal(longer[:, :12], three)  # the first 12 samples agree
  grid = (np.asarray(three) + 1) * 127.5  # data space: the companded level grid
  np.testing.assert_allclose(grid, np.rint(grid), atol=1e-3)
