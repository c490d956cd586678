"""Latent tools: interpolation, traversal, the manifold grid, active units, plots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import latent
from jaxgen.errors import ConfigError
from jaxgen.viz import latent as viz_latent

# Jitted once per shape: eager dispatch would compile every primitive apart.
interpolate = jax.jit(latent.interpolate, static_argnums=2, static_argnames="kind")


def test_linear_interpolation_is_evenly_spaced_with_exact_endpoints():
  a, b = np.array([1.0, -2.0, 0.5]), np.array([3.0, 2.0, -1.5])
  path = np.asarray(interpolate(a, b, 5))
  assert path.shape == (5, 3)
  np.testing.assert_array_equal(path[0], a)
  np.testing.assert_allclose(path[-1], b, rtol=1e-6)
  np.testing.assert_allclose(path[2], (a + b) / 2, rtol=1e-6)
  np.testing.assert_allclose(np.diff(path, axis=0), np.tile((b - a) / 4, (4, 1)), rtol=1e-5)


def test_slerp_endpoints_constant_norm_and_constant_angular_speed():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 16)).astype(np.float32)
  b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal norms
  path = np.asarray(interpolate(a, b, 9, kind="spherical"), np.float64)
  np.testing.assert_array_equal(path[0], a)
  np.testing.assert_array_equal(path[-1], b)
  norms = np.linalg.norm(path, axis=-1)
  np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-5)
  # The straight line dips well inside the sphere; slerp does not.
  midpoint_linear = np.linalg.norm((a + b) / 2)
  assert midpoint_linear < 0.9 * norms[4]
  unit = path / norms[:, None]
  angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], -1), -1, 1))
  total = np.arccos(np.dot(a, b) / np.dot(a, a))
  np.testing.assert_allclose(angles, total / 8, rtol=1e-3)
  # Each point lies in the plane spanned by a and b.
  basis, _ = np.linalg.qr(np.stack([a, b], 1).astype(np.float64))
  np.testing.assert_allclose(basis @ (basis.T @ path.T), path.T, atol=1e-5)


def test_slerp_of_orthogonal_unit_vectors_and_of_different_norms():
  a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
  path = np.asarray(interpolate(a, b, 3, kind="spherical"))
  np.testing.assert_allclose(path[1], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
  # Norms 1 and 3: the formula is linear in (a, b), so it scales each part.
  path = np.asarray(interpolate(a, 3 * b, 3, kind="spherical"))
  np.testing.assert_allclose(path[1], [np.sqrt(0.5), 3 * np.sqrt(0.5)], rtol=1e-6)


def test_slerp_pairs_a_batch_and_falls_back_to_linear_when_parallel():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(2, 4, 8)).astype(np.float32)
  batched = np.asarray(interpolate(a, b, 6, kind="spherical"))
  assert batched.shape == (6, 4, 8)
  for i in range(4):
    np.testing.assert_allclose(
        batched[:, i], interpolate(a[i], b[i], 6, kind="spherical"), rtol=1e-5,
        atol=1e-6)
  parallel = np.asarray(interpolate(a[0], 2 * a[0], 5, kind="spherical"))
  np.testing.assert_allclose(parallel, interpolate(a[0], 2 * a[0], 5), rtol=1e-6)
  zero = np.asarray(interpolate(np.zeros(8), b[0], 3, kind="spherical"))
  assert np.all(np.isfinite(zero))
  np.testing.assert_allclose(zero[1], b[0] / 2, rtol=1e-6)


def test_interpolate_is_jittable_and_differentiable():
  a, b = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0])
  path = jax.jit(lambda a, b: latent.interpolate(a, b, 4, kind="spherical"))(a, b)
  np.testing.assert_allclose(path[1], [np.cos(np.pi / 6), np.sin(np.pi / 6), 0], atol=1e-6)
  # Equal endpoints take the linear branch; its gradient must stay finite.
  grad = jax.jit(jax.grad(lambda a: jnp.sum(latent.interpolate(a, a, 3, kind="spherical"))))(a)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("call, fragment", [
    (lambda: interpolate(np.ones(2), np.ones(2), 4, kind="cubic"), "not one of"),
    (lambda: interpolate(np.ones(2), np.ones(2), 1), "num >= 2"),
    (lambda: latent.traverse(np.ones(3), 3, [0.0]), "outside"),
    (lambda: latent.manifold_grid(1), "num_per_side"),
    (lambda: latent.manifold_grid(4, latent_dim=2, dims=(0, 2)), "dims"),
])
def test_bad_arguments_are_one_line_config_errors(call, fragment):
  with pytest.raises(ConfigError) as info:
    call()
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_traverse_sets_one_coordinate_and_keeps_the_rest():
  z = np.arange(6, dtype=np.float32).reshape(2, 3)
  values = [-1.0, 0.0, 2.5]
  out = np.asarray(latent.traverse(z, 1, values))
  assert out.shape == (3, 2, 3)
  for v, value in enumerate(values):
    np.testing.assert_array_equal(out[v, :, 1], value)
    np.testing.assert_array_equal(out[v][:, [0, 2]], z[:, [0, 2]])
  np.testing.assert_array_equal(np.asarray(latent.traverse(z[0], -1, [7.0]))[0], [0, 1, 7])


def test_manifold_grid_follows_the_inverse_normal_cdf():
  n = 5
  grid = np.asarray(jax.jit(latent.manifold_grid, static_argnums=0)(n))
  assert grid.shape == (n * n, 2)
  values = stats.norm.ppf(np.linspace(0.05, 0.95, n))
  # Row r, column c: first dimension decreasing down the rows, second increasing.
  np.testing.assert_allclose(grid.reshape(n, n, 2)[:, 0, 0], values[::-1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grid.reshape(n, n, 2)[0, :, 1], values, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(grid.reshape(n, n, 2)[:, :, 0].std(1), 0, atol=1e-7)
  wide = np.asarray(latent.manifold_grid(3, latent_dim=4, dims=(2, 0),
                                         base=np.array([0.0, 9.0, 0.0, -9.0])))
  assert wide.shape == (9, 4)
  np.testing.assert_array_equal(wide[:, 1], 9.0)
  np.testing.assert_array_equal(wide[:, 3], -9.0)
  np.testing.assert_allclose(wide[:3, 0], stats.norm.ppf([0.05, 0.5, 0.95]),
                             rtol=1e-5, atol=1e-6)


def test_active_units_uses_the_variance_of_posterior_means():
  rng = np.random.default_rng(2)
  scales = np.array([1.0, 0.3, 0.11, 0.09, 0.01, 0.0])  # variances 1, .09, .0121, .0081, ...
  means = rng.standard_normal((20_000, 6)) * scales + rng.normal(size=6)
  units = latent.active_units(means)
  np.testing.assert_allclose(units.variance, means.var(0), rtol=1e-4, atol=1e-9)
  np.testing.assert_array_equal(units.active, [True, True, True, False, False, False])
  assert int(units.count) == 3
  assert int(latent.active_units(means, threshold=0.05).count) == 2
  with pytest.raises(ValueError):
    latent.active_units(np.ones(4))


def test_encode_all_batches_and_takes_the_mean_of_a_pair():
  x = np.arange(14, dtype=np.float32).reshape(7, 2)
  encode = lambda state, x, key: (x * state, -x)  # noqa: E731
  codes = latent.encode_all(encode, 2.0, x, batch_size=3)
  np.testing.assert_array_equal(codes, 2 * x)


def test_plots_are_written(tmp_path):
  rng = np.random.default_rng(3)
  rows = rng.random((3, 5, 8, 8, 1))
  paths = [
      viz_latent.save_rows(tmp_path / "rows.png", rows),
      viz_latent.save_rows(tmp_path / "flat.png", rows.reshape(3, 5, 64), image_shape=(8, 8, 1)),
      viz_latent.save_manifold(tmp_path / "manifold.png", rng.random((9, 8, 8, 1)), 3),
      viz_latent.save_codes(tmp_path / "codes.png", rng.normal(size=(50, 2)),
                            labels=rng.integers(0, 10, 50), title="codes"),
      viz_latent.save_active_units(tmp_path / "units.png", np.array([1.0, 0.02, 1e-4])),
  ]
  for path in paths:
    assert path.stat().st_size > 500
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with pytest.raises(ValueError, match="do not fill"):
    viz_latent.save_manifold(tmp_path / "bad.png", rng.random((8, 8, 8, 1)), 3)
