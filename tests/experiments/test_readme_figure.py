"""experiments/readme_figure.py composes the docs figures into the README's composite."""

import numpy as np
import pytest
from PIL import Image

from tests.helpers import load_experiment


def test_cut_takes_the_fractions_of_the_image():
  module = load_experiment("readme_figure")
  image = np.arange(200).reshape(10, 20)
  np.testing.assert_array_equal(module.cut(image, (0.25, 0.1, 0.5, 0.6)), image[1:6, 5:10])
  np.testing.assert_array_equal(module.cut(image, (0.0, 0.0, 1.0, 1.0)), image)


def test_composite_from_the_docs_figures(tmp_path):
  module = load_experiment("readme_figure")
  root = module.FIGURES.parents[1]
  for panel in module.PANELS:   # every panel comes from a docs figure and its script
    assert (module.FIGURES / panel.file).is_file(), panel
    assert (root / panel.script.split()[0]).is_file(), panel
  path = module.main(["--out", str(tmp_path / "families.png")])
  assert 0 < path.stat().st_size < 150 * 2**10
  with Image.open(path) as image:
    assert image.width > 400 and image.height > 200
  with pytest.raises(SystemExit, match="gan_dcgan_digits.py"):   # a source figure missing
    module.main(["--out", str(tmp_path / "x.png"), "--figures", str(tmp_path / "empty")])
