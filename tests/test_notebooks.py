"""The notebooks keep running: their code cells, with training shortened."""

import json
import pathlib

import matplotlib
import pytest

import jaxgen

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_runs(path, monkeypatch):
  matplotlib.use("Agg")
  fit = jaxgen.fit

  def short_fit(config, **kwargs):
    config.train.steps = min(config.train.steps, 20)
    return fit(config, **kwargs)

  monkeypatch.setattr(jaxgen, "fit", short_fit)
  cells = json.loads(path.read_text())["cells"]
  namespace: dict = {}
  for cell in cells:
    if cell["cell_type"] == "code":
      exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)  # noqa: S102
  assert namespace, "the notebook has no code"
