"""No tracked file holds an absolute path of the machine it was written on.

Results JSONs, docs and notebook outputs are written by scripts that know the
data's absolute path; what is committed must name it as the docs do
(`idx:../shared/data/mnist-t10k`, relative to the repository root), or the
file says where one engineer's checkout was instead of how to reproduce it.
"""

import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tracked_files():
  if shutil.which("git") is None or not (REPO / ".git").exists():
    pytest.skip("not a git checkout")
  listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                          check=True).stdout.decode().split("\0")
  return [REPO / name for name in listed if name]


def test_no_tracked_text_file_names_the_folder_above_the_checkout():
  # The checkout's parent: where ../shared lives, and where other worktrees sit.
  parent = str(REPO.parent) + "/"
  if parent == "/":
    pytest.skip("the checkout sits at the file system's root")
  offenders = []
  for path in _tracked_files():
    if not path.is_file() or path.stat().st_size > 5_000_000:
      continue
    data = path.read_bytes()
    if b"\0" in data[:8192]:   # binary (PNG, npz)
      continue
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
      if parent in line:
        offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
  assert not offenders, "\n".join(offenders[:20])
