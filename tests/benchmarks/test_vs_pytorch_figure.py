"""benchmarks/vs_pytorch.py's bar chart: drawn from saved results, without PyTorch or timing."""

import json

import numpy as np
import pytest

from benchmarks import vs_pytorch


def _results(rows, date="2026-12-07"):
  """A results file's content with rows {name: (jaxgen, eager, compile or None)}."""
  out = {}
  for name, (jaxgen, eager, compiled) in rows.items():
    rates = {"jaxgen": jaxgen, "torch_eager": eager}
    if compiled is not None:
      rates["torch_compile"] = compiled
    out[name] = {"batch_size": 8, "steps_per_sec": rates,
                 "ratio": {"jaxgen_over_eager": jaxgen / eager},
                 "torch_compile_error": None if compiled else "InductorError: x"}
  return {"benchmark": "vs_pytorch", "machine": {"date": date},
          "settings": {"rounds": 7}, "load_average_1min_start": 1.25,
          "load_average_1min_end": 1.75, "rows": out}


def _bars(ax):
  """(width, y, colour) of every bar in a panel, top to bottom."""
  bars = [(p.get_width(), p.get_y() + p.get_height() / 2, p.get_facecolor())
          for p in ax.patches]
  return sorted(bars, key=lambda b: b[1])


def test_the_bars_are_the_saved_rates_one_panel_per_file():
  first = _results({"a": (855.4, 575.2, 752.3), "b": (5.36, 7.95, None)})
  second = _results({"c": (11.0, 12.4, 17.1), "a": (1.0, 1.0, 1.0)}, date="2026-12-08")
  figure = vs_pytorch.draw_figure([("one.json", first), ("two.json", second)])
  top, bottom = figure.axes
  # Row a, then row b (whose torch.compile failed: no bar, an n/a note).
  assert [round(w, 2) for w, _, _ in _bars(top)] == [855.4, 575.2, 752.3, 5.36, 7.95]
  assert any("torch.compile: n/a (failed)" in t.get_text() for t in top.texts)
  # Row a of the second file is not drawn again; row c is.
  assert [round(w, 2) for w, _, _ in _bars(bottom)] == [11.0, 12.4, 17.1]
  assert [t.get_text() for t in bottom.get_yticklabels()] == ["c (8)"]
  assert "two.json: 2026-12-08" in bottom.get_title()
  assert "load 1.2 to 1.8" in top.get_title()
  # The colours say which implementation a bar is; the value labels say its rate.
  colours = {tuple(np.round(c, 3)) for _, _, c in _bars(top)[:3]}
  assert len(colours) == 3
  labels = [t.get_text() for t in top.texts]
  assert "855  (1.49x eager)" in labels and "575" in labels
  assert top.get_xscale() == "log"


def test_figure_only_redraws_from_files_and_refuses_a_bad_one(tmp_path):
  paths = []
  for i, rows in enumerate([{"a": (10.0, 8.0, 12.0)}, {"b": (3.0, 4.0, None)}]):
    paths.append(tmp_path / f"r{i}.json")
    paths[-1].write_text(json.dumps(_results(rows)))
  out = tmp_path / "fig" / "chart.png"
  done = vs_pytorch.main(["--figure-only", *map(str, paths), "--figure", str(out)])
  assert done == {"figure": str(out)}
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size < 100 * 2**10
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"benchmark": "gan_throughput", "rows": {}}))
  for files in ([str(bad)], [str(tmp_path / "missing.json")]):
    with pytest.raises(SystemExit) as error:
      vs_pytorch.main(["--figure-only", *files, "--figure", str(tmp_path / "no.png")])
    assert error.value.code == 2
  assert not (tmp_path / "no.png").exists()


def test_a_run_redraws_both_docs_files_or_only_its_own(tmp_path):
  standard = [p.resolve() for p in vs_pytorch.FIGURE_SOURCES]
  assert vs_pytorch.figure_sources(standard[1])[-1] == standard[1]
  assert set(vs_pytorch.figure_sources(standard[1])) <= set(standard)
  assert vs_pytorch.figure_sources(tmp_path / "mine.json") == [
      (tmp_path / "mine.json").resolve()]


def test_the_docs_chart_shows_the_saved_results():
  """Every rate in the two results files of docs/performance.md is a bar of its chart."""
  sources = [(p.name, vs_pytorch.read_results(p)) for p in vs_pytorch.FIGURE_SOURCES]
  figure = vs_pytorch.draw_figure(sources)
  assert len(figure.axes) == len(sources)
  for ax, (_, results) in zip(figure.axes, sources):
    expected = [rate for r in results["rows"].values()
                for name in vs_pytorch.IMPLEMENTATIONS
                for rate in [r["steps_per_sec"].get(name)] if rate is not None]
    np.testing.assert_allclose([w for w, _, _ in _bars(ax)], expected)
