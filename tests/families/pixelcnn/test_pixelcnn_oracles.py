"""PixelCNN oracles on tiny images: normalization by enumeration, sampling and
completion against the enumerated distribution, determinism, per-example values."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgen import registry
from jaxgen.core import rng
from jaxgen.data import DataSpec
from jaxgen.families import pixelcnn
from jaxgen.families.pixelcnn import losses

ARCHITECTURES = ["pixelcnn", "gated"]


def tiny_spec(shape=(2, 2, 1), binary=True, levels=None, num_classes=None):
  return DataSpec(name="tiny", shape=shape, num_classes=num_classes, num_train=16,
                  num_test=16, is_image=True, value_range=(0.0, 1.0), binary=binary,
                  levels=levels)


def tiny_config(architecture, conditional=False):
  config = registry.get("pixelcnn").default_config("digits")
  config.model.update(architecture=architecture, features=6, layers=1, first_kernel=3,
                      kernel=3, output_features=6, conditional=conditional)
  config.train = ml_collections.ConfigDict(dict(steps=10))
  return config


def random_state(method, spec, seed=0, scale=0.5):
  """An initialised state with noise on every parameter, so p(x) is far from uniform."""
  batch = {"x": jnp.zeros((1,) + spec.shape)}
  state = method.init(jax.random.PRNGKey(seed), batch)
  leaves, tree = jax.tree.flatten(state.params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 100), len(leaves))
  noisy = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
  return state.replace(params=tree.unflatten(noisy))


def all_images(spec, levels):
  """Every image on the grid: [levels^D, *shape] data values in [0, 1]."""
  values = np.array(list(itertools.product(range(levels), repeat=spec.dim)), np.float32)
  return jnp.asarray(values.reshape((-1,) + spec.shape) / (levels - 1))


def probabilities(method, state, images, labels=None):
  batch = {"x": images}
  if labels is not None:
    batch["label"] = labels
  nats = jax.jit(method.evaluate)(state, batch, jax.random.PRNGKey(0))["nll_nats"]
  return np.exp(-np.asarray(nats, np.float64))


CASES = [((2, 2, 1), True, None),    # 16 binary images
         ((1, 2, 2), False, 3),      # two channels (R → G), 3 levels: 81 images
         ((1, 1, 3), False, 4)]      # one RGB pixel, 4 levels: 64 images


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("shape,binary,levels", CASES)
def test_probabilities_of_all_images_sum_to_one(architecture, shape, binary, levels):
  spec = tiny_spec(shape, binary, levels)
  method = registry.get("pixelcnn").make(tiny_config(architecture), spec)
  state = random_state(method, spec)
  p = probabilities(method, state, all_images(spec, 2 if binary else levels))
  assert p.sum() == pytest.approx(1.0, abs=1e-5)
  assert p.max() > 3 * p.min()  # not the uniform distribution: the test has teeth


def test_nll_is_the_sum_of_the_softmax_cross_entropies():
  logits = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 2, 1, 4))
  levels = jax.random.randint(jax.random.PRNGKey(1), (3, 2, 2, 1), 0, 4)
  expected = -np.log(np.take_along_axis(np.asarray(jax.nn.softmax(logits)),
                                        np.asarray(levels)[..., None], -1)).sum(axis=(1, 2, 3, 4))
  np.testing.assert_allclose(losses.nll(logits=logits, levels=levels), expected, rtol=1e-5)
  with pytest.raises(ValueError, match="do not fit"):
    losses.nll(logits=logits, levels=levels[:, :1])


def _frequencies(images, levels):
  codes = np.asarray(images).reshape(len(images), -1) * (levels - 1)
  index = np.round(codes).astype(int) @ (levels ** np.arange(codes.shape[1])[::-1])
  return np.bincount(index, minlength=levels ** codes.shape[1]) / len(images)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_samples_follow_the_enumerated_distribution(architecture):
  spec = tiny_spec()
  method = registry.get("pixelcnn").make(tiny_config(architecture), spec)
  state = random_state(method, spec)
  p = probabilities(method, state, all_images(spec, 2))
  num = 4000
  samples = jax.jit(lambda s, k: method.sample(s, k, num))(state, jax.random.PRNGKey(7))
  frequencies = _frequencies(samples, 2)
  # 4 standard errors of a binomial frequency, per image.
  np.testing.assert_array_less(np.abs(frequencies - p), 4 * np.sqrt(p * (1 - p) / num) + 1e-3)


def test_sampling_is_deterministic_per_key_and_per_example():
  spec = tiny_spec((3, 3, 1))
  method = registry.get("pixelcnn").make(tiny_config("gated"), spec)
  state = random_state(method, spec)
  draw = jax.jit(lambda s, k: method.sample(s, k, 6))
  first, again = draw(state, jax.random.PRNGKey(1)), draw(state, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, draw(state, jax.random.PRNGKey(2)))
  # Example i draws from fold_in(key, i): the first three of six are the three.
  three = jax.jit(lambda s, k: method.sample(s, k, 3))(state, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(first[:3], three)
  assert set(np.unique(np.asarray(first))) <= {0.0, 1.0}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_completion_keeps_observed_values_and_fills_the_rest(architecture):
  spec = tiny_spec((4, 4, 1))
  method = registry.get("pixelcnn").make(tiny_config(architecture), spec)
  state = random_state(method, spec)
  images = jax.random.bernoulli(jax.random.PRNGKey(3), 0.5, (8, 4, 4, 1)).astype(jnp.float32)
  key = jax.random.PRNGKey(4)
  # Fully observed: the input comes back.
  full = pixelcnn.complete(method, state, key, images, jnp.ones((8, 4, 4)))
  np.testing.assert_array_equal(full, images)
  # A random mask (per pixel): observed pixels are untouched.
  mask = jax.random.bernoulli(jax.random.PRNGKey(5), 0.5, (8, 4, 4, 1))
  completed = pixelcnn.complete(method, state, key, images, mask)
  np.testing.assert_array_equal(np.where(mask, completed, -1), np.where(mask, images, -1))
  # Nothing observed: plain sampling.
  np.testing.assert_array_equal(
      pixelcnn.complete(method, state, key, images, jnp.zeros((8, 4, 4, 1))),
      method.sample(state, key, 8))


def test_completing_the_last_pixel_draws_from_its_conditional():
  spec = tiny_spec()
  method = registry.get("pixelcnn").make(tiny_config("gated"), spec)
  state = random_state(method, spec)
  p = probabilities(method, state, all_images(spec, 2)).reshape(8, 2)  # [x1x2x3, x4]
  conditional = p[:, 1] / p.sum(axis=1)     # p(x4 = 1 | x1, x2, x3)
  prefix = 5                                 # x1, x2, x3 = 1, 0, 1
  num = 4000
  images = jnp.broadcast_to(all_images(spec, 2)[2 * prefix], (num, 2, 2, 1))
  mask = jnp.broadcast_to(jnp.array([[1, 1], [1, 0]]), (num, 2, 2))
  completed = jax.jit(lambda s, k: pixelcnn.complete(method, s, k, images, mask))(
      state, jax.random.PRNGKey(8))
  share = float(np.mean(np.asarray(completed)[:, 1, 1, 0]))
  q = conditional[prefix]
  assert abs(share - q) < 4 * np.sqrt(q * (1 - q) / num) + 1e-3, (share, q)


def test_evaluation_does_not_depend_on_the_batching():
  spec = tiny_spec((3, 3, 1))
  method = registry.get("pixelcnn").make(tiny_config("pixelcnn"), spec)
  state = random_state(method, spec)
  x = jax.random.bernoulli(jax.random.PRNGKey(3), 0.5, (8, 3, 3, 1)).astype(jnp.float32)
  keys = rng.index_keys(jax.random.PRNGKey(3), jnp.arange(8))
  evaluate = jax.jit(method.evaluate)
  whole = evaluate(state, {"x": x}, keys)
  parts = [evaluate(state, {"x": x[i:i + 4]}, keys[i:i + 4]) for i in (0, 4)]
  for name, values in whole.items():
    np.testing.assert_allclose(np.concatenate([p[name] for p in parts]), values, rtol=1e-6)
  np.testing.assert_allclose(whole["nll_bits_per_dim"], whole["nll_nats"] / (9 * np.log(2)),
                             rtol=1e-6)


def test_class_conditional_gated_model_uses_the_labels():
  spec = tiny_spec(num_classes=3)
  method = registry.get("pixelcnn").make(tiny_config("gated", conditional=True), spec)
  state = random_state(method, spec)
  images = all_images(spec, 2)
  per_class = [probabilities(method, state, images, jnp.full((16,), c)) for c in range(3)]
  for p in per_class:  # p(x | y) is normalized for every y ...
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
  assert np.abs(per_class[0] - per_class[1]).max() > 1e-3  # ... and depends on y
  samples = method.sample(state, jax.random.PRNGKey(0), 4, labels=jnp.array([0, 1, 2, 0]))
  assert samples.shape == (4, 2, 2, 1)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_sampling_in_chunks_of_rows_gives_the_one_call_samples(architecture, capsys):
  """progress=True runs compiled chunks of image rows with a bar; the images are those
  of one compiled call with the same key (plain sampling and completion, colour data)."""
  spec = tiny_spec((3, 2, 3), binary=False, levels=4)
  method = registry.get("pixelcnn").make(tiny_config(architecture), spec)
  state = random_state(method, spec)
  key = jax.random.PRNGKey(7)
  one_call = jax.jit(lambda s, k: method.sample(s, k, 6))(state, key)
  chunked = method.sample(state, key, 6, progress=True)
  np.testing.assert_array_equal(chunked, one_call)
  assert len(np.unique(np.asarray(one_call))) == 4  # all four levels drawn: not degenerate
  assert "3/3" in capsys.readouterr().err  # the bar counted the three rows
  model = method.sample.args[0]
  keys = rng.index_keys(key, jnp.arange(6))
  start = jnp.zeros((6,) + spec.shape, jnp.int32)
  unknown = jnp.zeros((6,) + spec.shape, bool)
  for rows in (2, 3):  # chunks that do not and do cover the height
    levels = pixelcnn.method.fill_in_chunks(model, state.params["network"], keys, start,
                                            unknown, None, rows_per_chunk=rows, progress=False)
    np.testing.assert_array_equal(model.codec.from_level_index(levels), one_call)
  # Completion: the first row observed (skipped), the others drawn as in one call.
  images = jax.random.randint(jax.random.PRNGKey(8), (6,) + spec.shape, 0, 4) / 3.0
  mask = jnp.broadcast_to((jnp.arange(3) < 1)[None, :, None], (6, 3, 2))
  completed = method.sample(state, key, 6, observed=images, mask=mask, progress=True)
  np.testing.assert_array_equal(
      completed, jax.jit(lambda s, k: pixelcnn.complete(method, s, k, images, mask))(state, key))
  np.testing.assert_array_equal(completed[:, :1], images[:, :1])
  assert not np.array_equal(completed[:, 1:], images[:, 1:])
