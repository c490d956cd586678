"""The CLI's persistent compilation cache: where it goes, how it is turned off, that it hits."""

import os
import pathlib
import subprocess
import sys

import pytest

from jaxgen import _compile_cache, cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_default_folder_follows_xdg_cache_home(tmp_path):
  env = {"XDG_CACHE_HOME": str(tmp_path)}
  assert _compile_cache.choose(environ=env) == tmp_path / "jaxgen" / "xla"
  home = pathlib.Path("~/.cache").expanduser()
  assert _compile_cache.choose(environ={}) == home / "jaxgen" / "xla"


def test_variable_relocates_or_turns_off_and_flag_turns_off(tmp_path):
  elsewhere = tmp_path / "elsewhere"
  assert _compile_cache.choose(environ={"JAXGEN_COMPILE_CACHE": str(elsewhere)}) == elsewhere
  for off in ("off", "0", "none", "False"):
    assert _compile_cache.choose(environ={"JAXGEN_COMPILE_CACHE": off}) is None
  assert _compile_cache.choose(disabled=True, environ={"XDG_CACHE_HOME": str(tmp_path)}) is None


def test_a_cache_the_user_configured_wins(tmp_path):
  env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
  assert _compile_cache.choose(environ=env, configured=str(tmp_path / "mine")) == \
      tmp_path / "mine"


def test_every_command_that_compiles_has_the_flag():
  parser = cli._parser()
  for argv in (["train", "vae"], ["sample", "--workdir", "w"], ["eval", "--workdir", "w"]):
    assert parser.parse_args(argv + ["--no-compile-cache"]).no_compile_cache
    assert not parser.parse_args(argv).no_compile_cache


def _train(tmp_path, name, *extra):
  """`jaxgen train` in a fresh process with the cache under tmp_path/xdg."""
  env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
         "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
  for variable in ("JAX_COMPILATION_CACHE_DIR", "JAXGEN_COMPILE_CACHE"):
    env.pop(variable, None)
  command = [sys.executable, "-m", "jaxgen", "train", "vae", "--steps", "2", "--no-progress",
             "--workdir", str(tmp_path / name), "--set", "model.hidden=(16,)",
             "--set", "model.latent_dim=2", "--set", "data.batch_size=32",
             "--set", "train.num_samples=0", "--set", "train.final_eval=False", *extra]
  done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
  assert done.returncode == 0, done.stderr[-2000:]


def _entries(folder):
  return sorted(p.name for p in folder.glob("*-cache")) if folder.exists() else []


@pytest.mark.slow
def test_cli_fills_the_cache_and_a_second_process_hits_it(tmp_path):
  cache = tmp_path / "xdg" / "jaxgen" / "xla"
  _train(tmp_path, "off", "--no-compile-cache")
  assert not cache.exists()
  _train(tmp_path, "first")
  first = _entries(cache)
  assert any(name.startswith("jit_train_step-") for name in first), first
  _train(tmp_path, "second")
  # The same programs: every one was loaded, none compiled and written again.
  assert _entries(cache) == first
