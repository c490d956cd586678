"""The shared codec: scaling round trip, dequantization, discrete likelihood, bits/dim."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import data as data_lib
from jaxgen.core import rng
from jaxgen.data import codec as codec_lib
from jaxgen.errors import ConfigError


def test_bits_per_dim_against_a_hand_computation():
  # 8-bit images dequantized in [0, 1), model space [-1, 1]: a model density of
  # 1.5 nats per dimension in model space is 1.5 − log(2/256) nats per
  # dimension on the integer grid (dy/dk = 2/256), i.e. (1.5 + ln 128)/ln 2 bits.
  codec = codec_lib.Codec(low=0.0, high=1.0, levels=256, dequantized=True)
  dims = 784
  got = float(codec.bits_per_dim(jnp.float32(1.5 * dims), dims=dims))
  assert got == pytest.approx((1.5 + math.log(128.0)) / math.log(2.0), rel=1e-6)
  assert got == pytest.approx(1.5 / math.log(2) + 7.0, rel=1e-6)
  # Continuous data in [0, 4]: dy/dx = 1/2, so bits = (nats/D + ln 2)/ln 2.
  continuous = codec_lib.Codec(low=0.0, high=4.0, bounded=False)
  assert float(continuous.bits_per_dim(jnp.float32(3.0), dims=3)) == pytest.approx(
      (1.0 + math.log(2.0)) / math.log(2.0), rel=1e-6)
  # Discrete data: probabilities carry no units.
  binary = codec_lib.Codec(low=0.0, high=1.0, levels=2)
  assert float(binary.bits_per_dim(jnp.float32(10 * math.log(2)), dims=10)) == (
      pytest.approx(1.0, rel=1e-6))


def test_a_uniform_density_on_the_grid_gives_log2_levels_bits():
  # The uniform density on model space [-1, 1] is 1/2 per dimension; dequantized
  # from L levels it is exactly log2(L) bits/dim on the integer grid.
  levels, dims = 17, 64
  codec = codec_lib.Codec(low=-1.0, high=1.0, levels=levels, dequantized=True)
  nats = jnp.float32(dims * math.log(2.0))
  assert float(codec.bits_per_dim(nats, dims=dims)) == pytest.approx(math.log2(levels),
                                                                      rel=1e-6)


@pytest.mark.parametrize("low,high,bounded", [(0.0, 1.0, True), (-1.0, 1.0, True),
                                              (-3.0, 5.0, False), (0.0, 255.0, True)])
def test_scaling_round_trip(low, high, bounded):
  codec = codec_lib.Codec(low=low, high=high, bounded=bounded)
  x = jnp.linspace(low, high, 11)
  y = codec.encode(x)
  np.testing.assert_allclose(np.asarray(y)[[0, -1]], [-1.0, 1.0], atol=1e-6)
  np.testing.assert_allclose(codec.decode(y), x, rtol=1e-6, atol=1e-5 * (high - low))
  outside = codec.decode(jnp.array([-1.5, 1.5]))
  if bounded:
    np.testing.assert_allclose(outside, [low, high])
  else:
    assert float(outside[0]) < low and float(outside[1]) > high


def test_dequantization_range_and_levels():
  levels = 5
  codec = codec_lib.Codec(low=0.0, high=1.0, levels=levels)
  grid = jnp.linspace(0.0, 1.0, levels)
  x = jnp.tile(grid, (2000, 1))
  x_tilde = np.asarray(codec.dequantize(jax.random.PRNGKey(0), x))
  k = np.arange(levels)
  # Level k fills [k/L, (k+1)/L): inside its bin, and the whole bin is used.
  assert np.all(x_tilde >= k / levels) and np.all(x_tilde < (k + 1) / levels)
  np.testing.assert_allclose(x_tilde.min(0), k / levels, atol=2e-3)
  np.testing.assert_allclose(x_tilde.max(0), (k + 1) / levels, atol=2e-3)
  np.testing.assert_allclose(x_tilde.mean(0), (k + 0.5) / levels, atol=5e-3)
  assert codec.dequantized_codec().dequantized
  # Per-example keys: example i depends only on its own key.
  keys = rng.index_keys(jax.random.PRNGKey(1), jnp.arange(6))
  both = codec.dequantize(keys, x[:6])
  np.testing.assert_array_equal(codec.dequantize(keys[3:], x[3:6]), both[3:])
  with pytest.raises(ValueError, match="needs discrete data"):
    codec.dequantized_codec().dequantize(jax.random.PRNGKey(0), x)


def test_the_pipelines_dequantized_data_share_the_codecs_units():
  # data.dequantize=True: (k + u)/L in [0, 1); the codec's dequantize gives the
  # same range from the grid k/(L−1), so either path reports the same units.
  dataset = data_lib.load_dataset("digits", dequantize=True, max_examples=50)
  codec = codec_lib.from_spec(dataset.spec, dequantized=True)
  assert (codec.low, codec.high, codec.levels) == (0.0, 1.0, 17)
  assert codec.log_jacobian == pytest.approx(math.log(2.0 / 17))
  assert "integer units" in codec.units


def test_from_spec_picks_levels_and_bounds():
  digits = data_lib.load_dataset("digits", max_examples=10).spec
  assert codec_lib.from_spec(digits) == codec_lib.Codec(0.0, 1.0, levels=17, bounded=True)
  binary = data_lib.load_dataset("digits", binarize="dynamic", max_examples=10).spec
  assert codec_lib.from_spec(binary).levels == 2
  ring = data_lib.load_dataset("toy2d:ring8", num_examples=100).spec
  continuous = codec_lib.from_spec(ring)
  assert continuous.levels is None and not continuous.bounded
  assert continuous.log_jacobian == pytest.approx(
      math.log(2.0 / (ring.value_range[1] - ring.value_range[0])))
  with pytest.raises(ConfigError, match="dequantized data need discrete"):
    codec_lib.from_spec(ring, dequantized=True)
  with pytest.raises(ConfigError, match="non-empty value range"):
    codec_lib.Codec(low=1.0, high=1.0)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_gaussian_matches_scipy_and_sums_to_one(levels):
  grid = np.linspace(-1.0, 1.0, levels)
  mean, log_scale = 0.13, math.log(0.2)
  got = np.asarray(codec_lib.discretized_gaussian_log_prob(
      x=jnp.asarray(grid[:, None], jnp.float32), mean=mean, log_scale=log_scale,
      levels=levels), np.float64)
  edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
  cdf = stats.norm.cdf(edges, mean, math.exp(log_scale))
  expected = np.log(np.maximum(np.diff(cdf), 1e-12))
  np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
  assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-4)


def test_discretized_gaussian_on_another_range_is_the_rescaled_one():
  # The same bins in data units [0, 255]: the masses do not depend on the units.
  levels = 256
  x = jnp.arange(levels, dtype=jnp.float32)[:, None]
  in_data = codec_lib.discretized_gaussian_log_prob(
      x=x, mean=100.0, log_scale=math.log(12.75), levels=levels, low=0.0, high=255.0)
  in_model = codec_lib.discretized_gaussian_log_prob(
      x=x / 127.5 - 1.0, mean=100.0 / 127.5 - 1.0, log_scale=math.log(0.1), levels=levels)
  np.testing.assert_allclose(in_data, in_model, rtol=1e-4, atol=1e-4)


def test_level_indices_round_trip_on_the_grid():
  codec = codec_lib.Codec(low=-1.0, high=1.0, levels=17)
  k = jnp.arange(17)
  x = codec.from_level_index(k)
  np.testing.assert_allclose(x, np.linspace(-1, 1, 17), atol=1e-6)
  np.testing.assert_array_equal(codec.level_index(x), k)
  # Values off the grid go to the nearest level, and stay in 0..levels−1.
  np.testing.assert_array_equal(codec.level_index(jnp.array([-2.0, 0.06, 0.07, 3.0])),
                                [0, 8, 9, 16])
  with pytest.raises(ValueError, match="needs discrete data"):
    codec.dequantized_codec().level_index(x)
