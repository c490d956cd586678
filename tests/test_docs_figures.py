"""Figures in the docs: every one referenced exists, none is an orphan, and each
names the command that regenerates it (issue 18)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+\.png)\)")
SCRIPT = re.compile(r"([\w]+\.py)")
SCRIPTS = {p.name for folder in ("experiments", "benchmarks") for p in (ROOT / folder).glob("*.py")}


def _caption(lines, number):
  """The paragraph after the image at `lines[number]` (other images and blank
  lines between them skipped): where the caption is written."""
  i = number + 1
  while i < len(lines) and (not lines[i].strip() or IMAGE.search(lines[i])):
    i += 1
  caption = []
  while i < len(lines) and lines[i].strip():
    caption.append(lines[i])
    i += 1
  return lines[number] + "\n" + "\n".join(caption)


def _embeds():
  """(page, line number, target path, the image line and its caption)."""
  found = []
  for page in PAGES:
    lines = page.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
      for target in IMAGE.findall(line):
        found.append((page, number + 1, (page.parent / target).resolve(),
                      _caption(lines, number)))
  return found


def test_there_are_figures_and_they_are_small():
  files = sorted(FIGURES.glob("*.png"))
  assert files, "docs/figures holds no figure"
  sizes = {f.name: f.stat().st_size for f in files}
  assert sum(sizes.values()) < 3 * 2**20, sizes
  assert max(sizes.values()) < 400 * 2**10, sizes


def test_every_embedded_figure_exists_and_names_its_command():
  embeds = _embeds()
  assert embeds
  for page, line, target, caption in embeds:
    where = f"{page.relative_to(ROOT)}:{line}"
    assert target.is_file(), f"{where}: {target} does not exist"
    scripts = [name for name in SCRIPT.findall(caption) if name in SCRIPTS]
    assert scripts, (f"{where}: the caption names no script of experiments/ or "
                     f"benchmarks/ that regenerates the figure")


def test_no_figure_is_an_orphan():
  embedded = {target for _, _, target, _ in _embeds()}
  orphans = [f.name for f in FIGURES.glob("*.png") if f.resolve() not in embedded]
  assert not orphans, f"figures no page shows: {orphans}"


@pytest.mark.parametrize("text,expected", [
    ("![a](figures/x.png)", ["figures/x.png"]),
    ("see ![samples](figures/a_b.png) and ![c](figures/c.png)", ["figures/a_b.png", "figures/c.png"]),
    ("[not an image](figures/x.png)", []),
])
def test_the_reference_pattern(text, expected):
  assert IMAGE.findall(text) == expected
