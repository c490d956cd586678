"""`jaxgen launch`: N local processes of one multi-process run, without a cluster manager.

  jaxgen launch --processes 2 -- train vae --workdir runs/vae2
  jaxgen launch --processes 2 -- python my_experiment.py   # a script calling jaxgen.fit

Each child gets JAX_COORDINATOR_ADDRESS (127.0.0.1 and a free port, or
--coordinator), JAX_NUM_PROCESSES and JAX_PROCESS_ID, which
`jaxgen.engine.parallel.maybe_initialize_distributed` reads. A command that
starts with a jaxgen subcommand (train, eval, sample, list) runs as
`python -m jaxgen ...` with this interpreter; anything else runs as given.

The children run in their own process group, so a Ctrl-C in the terminal
reaches them once, through the launcher: SIGINT and SIGTERM are forwarded to
every child (each saves at the same agreed step and exits 128 + the signal).
The exit status is the first failure's (a child killed by signal S counts as
128 + S), or 0. When one child fails, the others are given `--grace` seconds to
end by themselves (they would otherwise wait in a collective for the failed
one) and are then killed.

The launcher itself never starts a JAX backend (it holds no devices).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from jaxgen.errors import ConfigError

JAXGEN_COMMANDS = ("train", "eval", "sample", "list")
_POLL_SECONDS = 0.05


def free_port(host: str = "127.0.0.1") -> int:
  """A TCP port that is free on `host` now (the OS picks it)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind((host, 0))
    return sock.getsockname()[1]


def child_command(command: Sequence[str]) -> list[str]:
  """The argv a child runs: jaxgen subcommands through this interpreter."""
  command = list(command)
  if not command:
    raise ConfigError("jaxgen launch needs a command after --, e.g. "
                      "`jaxgen launch --processes 2 -- train vae`")
  if command[0] in JAXGEN_COMMANDS:
    return [sys.executable, "-m", "jaxgen", *command]
  return command


def child_environments(processes: int, coordinator: str | None = None,
                       base: dict[str, str] | None = None) -> list[dict[str, str]]:
  """The environment of each of `processes` children."""
  if processes < 1:
    raise ConfigError(f"--processes must be at least 1, got {processes}")
  base = dict(os.environ if base is None else base)
  coordinator = coordinator or f"127.0.0.1:{free_port()}"
  if ":" not in coordinator:
    raise ConfigError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
  return [{**base, "JAX_COORDINATOR_ADDRESS": coordinator,
           "JAX_NUM_PROCESSES": str(processes), "JAX_PROCESS_ID": str(index)}
          for index in range(processes)]


def _status(returncode: int) -> int:
  """A child's exit status as a shell reports it (killed by S: 128 + S)."""
  return 128 - returncode if returncode < 0 else returncode


class _Children:
  """The running children; forwards signals to them."""

  def __init__(self, commands: list[list[str]], environments: list[dict[str, str]]):
    self.procs = [subprocess.Popen(argv, env=env, start_new_session=True)  # pylint: disable=consider-using-with
                  for argv, env in zip(commands, environments)]

  def send(self, signum: int) -> None:
    for proc in self.procs:
      if proc.poll() is None:
        try:
          os.killpg(proc.pid, signum)
        except ProcessLookupError:
          pass

  def wait(self, grace: float) -> int:
    """Waits for all; returns the first failure's status, or 0."""
    first_failure = 0
    failed_at = None
    while True:
      running = [p for p in self.procs if p.poll() is None]
      for proc in self.procs:
        code = proc.poll()
        if code not in (None, 0) and not first_failure:
          first_failure, failed_at = _status(code), time.monotonic()
      if not running:
        return first_failure
      if failed_at is not None and time.monotonic() - failed_at > grace:
        self.send(signal.SIGKILL)
        for proc in running:
          proc.wait()
        return first_failure
      time.sleep(_POLL_SECONDS)


def launch(command: Sequence[str], processes: int, coordinator: str | None = None,
           grace: float = 30.0) -> int:
  """Runs `command` as `processes` local processes of one run; returns the exit status."""
  argv = child_command(command)
  environments = child_environments(processes, coordinator)
  if grace < 0:
    raise ConfigError(f"--grace must be 0 or more seconds, got {grace}")
  children = _Children([argv] * processes, environments)
  previous = {}

  def forward(signum, frame):
    del frame
    children.send(signum)

  for sig in (signal.SIGINT, signal.SIGTERM):
    previous[sig] = signal.signal(sig, forward)
  try:
    return children.wait(grace)
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
    children.send(signal.SIGKILL)   # none is left running after we return
