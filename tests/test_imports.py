"""The import rule: families import the core, never the runner (`jaxgen.engine`,
nor `jaxgen.api`/`jaxgen.cli` or the top-level package that re-exports them).

Read from the source with `ast`, so an import inside a function or under
`if TYPE_CHECKING:` counts too, and nothing has to be executed.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxgen"
FORBIDDEN = ("jaxgen.engine", "jaxgen.api", "jaxgen.cli")


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
  """The absolute name of `from <level dots><module> import ...` in `importer`."""
  if not level:
    return module or ""
  base = importer.split(".")
  base = base if is_package else base[:-1]
  base = base[:len(base) - (level - 1)]
  return ".".join(base + ([module] if module else []))


def _forbidden(name: str) -> bool:
  return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def runner_imports(source: str, importer: str = "jaxgen.families.x",
                   is_package: bool = False) -> list[str]:
  """The imports of `jaxgen.engine` (or anything under it) in `source`."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      # `import jaxgen` binds the package, whose top level is the runner's API.
      found += [alias.name for alias in node.names
                if _forbidden(alias.name) or alias.name == "jaxgen"]
    elif isinstance(node, ast.ImportFrom):
      base = _resolve(node.module, node.level, importer, is_package)
      if _forbidden(base):
        found.append(base)
      else:  # `from jaxgen import engine`
        found += [f"{base}.{alias.name}" for alias in node.names
                  if _forbidden(f"{base}.{alias.name}")]
  return found


@pytest.mark.parametrize("source,expected", [
    ("import jaxgen.engine", ["jaxgen.engine"]),
    ("import jaxgen.engine.loop as loop", ["jaxgen.engine.loop"]),
    ("from jaxgen.engine import parallel", ["jaxgen.engine"]),
    ("from jaxgen.engine.parallel import mean_over_devices", ["jaxgen.engine.parallel"]),
    ("from jaxgen import engine, nn", ["jaxgen.engine"]),
    ("def f():\n  from jaxgen.engine import rng\n  return rng", ["jaxgen.engine"]),
    ("from ...engine import loop", ["jaxgen.engine"]),
    ("from ... import engine", ["jaxgen.engine"]),
    ("from .. import engine", []),  # jaxgen.families.engine, not the runner
    ("from jaxgen.core import rng\nimport jaxgen.nn\nfrom jaxgen import data", []),
    ("import jaxgen.engineering_notes", []),
    ("def make():\n  import jaxgen\n  return jaxgen.load", ["jaxgen"]),
    ("from jaxgen import api", ["jaxgen.api"]),
    ("from jaxgen.api import load", ["jaxgen.api"]),
    ("import jaxgen.nn", []),
    ("from . import losses", []),
])
def test_the_checker_finds_runner_imports(source, expected):
  assert runner_imports(source, "jaxgen.families.gan.method") == expected


FAMILY_FILES = sorted((PACKAGE / "families").rglob("*.py"))


def test_there_are_family_modules_to_check():
  assert any(p.name == "__init__.py" for p in FAMILY_FILES) and len(FAMILY_FILES) > 3


@pytest.mark.parametrize("path", FAMILY_FILES,
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_families_never_import_the_runner(path):
  found = runner_imports(path.read_text(encoding="utf-8"), _module_name(path),
                         path.name == "__init__.py")
  assert not found, f"{path.relative_to(PACKAGE)} imports the runner: {found}"
