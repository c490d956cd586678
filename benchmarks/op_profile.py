"""Where a train step's time goes, by kind of operation, in jaxgen and in PyTorch.

Run: python benchmarks/op_profile.py [--rows ROW,ROW] [--steps N] [--out FILE] [--quick]

For each row of `benchmarks/vs_pytorch.py` (default: the rows where jaxgen is
slower than eager PyTorch), both implementations are built exactly as that
benchmark builds them (same model, batch, Adam settings; parameter counts
checked), warmed up, and then profiled over N train steps:

  jaxgen   `jax.profiler` trace; every XLA:CPU thunk (one per HLO instruction
           of the compiled step) with its duration. Each thunk is assigned a
           kind from the optimized HLO: a fusion by the operations it calls
           (a convolution, a dot, a reduction, only transposes/copies, or
           else elementwise) — one whose root is a transpose or copy counts
           as layout work, though XLA folds its producer's elementwise ops
           into it — any other instruction by its opcode; elementwise work
           outside the model's forward and backward (no jvp in its op_name)
           counts as the optimizer's.
  PyTorch  `torch.profiler`; each aten operator's self CPU time, assigned a
           kind by its name.

Both report milliseconds per step per kind: the summed durations of the
operations, not wall time (XLA runs independent thunks concurrently, each
operation may use both cores). The tables say *which kind of work* makes one
implementation slower, which a steps/s ratio cannot. Results:
benchmarks/results/op_profile.json.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import pathlib
import re
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common, vs_pytorch  # noqa: E402  pylint: disable=wrong-import-position

NORM = "normalization and reductions"
LAYOUT = "layout (transpose, copy, concat)"
KINDS = ("convolution", "matmul", NORM, LAYOUT, "elementwise (model)", "optimizer (and EMA)")
SLOWER_ROWS = ("vae-conv-mnist", "dcgan-32", "ddpm-digits", "ddpm-mnist", "pixelcnn-mnist")

_CALLS = re.compile(r"calls=(%?[\w.\-]+)")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*[^=]*?\b([a-z][\w\-]*)\(")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def hlo_kinds(hlo_text: str) -> dict[str, str]:
  """Instruction name -> kind, for every instruction of an optimized HLO module."""
  computations: dict[str, list[tuple[str, str]]] = {}
  calls: dict[str, str] = {}
  in_model: dict[str, bool] = {}
  current = None
  for line in hlo_text.splitlines():
    header = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*(?:\(.*\))?.*\{\s*$", line)
    if header and not line.startswith(" "):
      current = header.group(1)
      computations[current] = []
      continue
    match = _INSTRUCTION.match(line)
    if match and current is not None:
      name, opcode = match.groups()
      computations[current].append((name, opcode))
      # The model's forward and backward ops carry jvp(...) in their op_name;
      # the loss's last steps, the optimizer and the EMA do not.
      op_name = _OP_NAME.search(line)
      in_model[name] = bool(op_name) and "jvp(" in op_name.group(1)
      called = _CALLS.search(line)
      if called:
        calls[name] = called.group(1).lstrip("%")

  def opcodes(computation: str, depth: int = 0) -> set[str]:
    found = set()
    for name, opcode in computations.get(computation, ()):
      found.add(opcode)
      if name in calls and depth < 4:
        found |= opcodes(calls[name], depth + 1)
    return found

  kinds = {}
  for instructions in computations.values():
    for name, opcode in instructions:
      inner = opcodes(calls[name]) if name in calls else {opcode}
      kind = _kind_of_opcodes(name, inner)
      if kind == "elementwise (model)" and not in_model.get(name, True):
        kind = "optimizer (and EMA)"
      kinds[name] = kind
  return kinds


def _kind_of_opcodes(name: str, opcodes: set[str]) -> str:
  if name.startswith(("transpose", "copy")) and "convolution" not in opcodes \
      and "dot" not in opcodes and "reduce" not in opcodes:
    # XLA names a fusion after its root: a transpose or copy, into which it folds
    # the producer's elementwise ops (recomputed) — layout work, e.g. a weight
    # gradient's operand transpose.
    return LAYOUT
  if "convolution" in opcodes or name.startswith("conv"):
    return "convolution"
  if "dot" in opcodes or name.startswith("dot"):
    return "matmul"
  if "reduce" in opcodes or "reduce-window" in opcodes or name.startswith("reduce"):
    return NORM
  layout = {"transpose", "copy", "concatenate", "slice", "dynamic-slice", "pad", "reshape",
            "bitcast", "parameter", "broadcast", "dynamic-update-slice", "tuple",
            "get-tuple-element", "constant"}
  if opcodes <= layout:
    return LAYOUT
  return "elementwise (model)"


def torch_kind(op: str) -> str:
  """The kind of an aten operator, by its name."""
  name = op.removeprefix("aten::")
  if "conv" in name:
    return "convolution"
  if name in ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm", "_addmm_activation",
              "scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
              "_scaled_dot_product_flash_attention_for_cpu_backward"):
    return "matmul"
  if "norm" in name:
    return NORM
  if "adam" in name or name.startswith("_foreach"):
    return "optimizer (and EMA)"
  if name in ("sum", "mean", "max", "amax", "logsumexp", "var", "std", "min", "argmax",
              "max_pool2d_with_indices", "avg_pool2d", "avg_pool2d_backward",
              "max_pool2d_with_indices_backward", "norm"):
    return NORM
  if name in ("copy_", "cat", "clone", "contiguous", "permute", "transpose", "t", "view",
              "reshape", "_unsafe_view", "as_strided", "slice", "select", "expand", "pad",
              "constant_pad_nd", "narrow", "split", "chunk", "unsqueeze", "squeeze",
              "flatten", "stack", "index", "index_select", "to", "_to_copy", "empty_like",
              "zeros_like", "empty", "zero_", "fill_", "resize_", "new_zeros", "ones_like",
              "detach", "alias", "empty_strided"):
    return LAYOUT
  return "elementwise (model)"


def profile_jaxgen(step: vs_pytorch.JaxgenStep, steps: int) -> dict[str, Any]:
  """ms per step by kind, from a jax.profiler trace of `steps` train steps."""
  import jax  # pylint: disable=import-outside-toplevel
  compiled = step._step.lower(step.state, step.batch).compile()  # pylint: disable=protected-access
  kinds = hlo_kinds(compiled.as_text())
  with tempfile.TemporaryDirectory() as folder:
    jax.profiler.start_trace(folder, create_perfetto_trace=True)
    step.run(steps)
    jax.profiler.stop_trace()
    traces = glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(traces[-1]) as f:
      events = json.load(f)["traceEvents"]
  totals: dict[str, float] = collections.Counter()
  ops: dict[str, float] = collections.Counter()
  for event in events:
    op = event.get("args", {}).get("hlo_op") if event.get("ph") == "X" else None
    if op is None or "ThunkExecutor" in event["name"]:
      continue
    kind = kinds.get(op, _kind_of_opcodes(op, set()))
    totals[kind] += event["dur"] / 1e3 / steps
    ops[op] += event["dur"] / 1e3 / steps
  return {"ms_per_step": {k: totals.get(k, 0.0) for k in KINDS},
          "top_ops": [[op, round(ms, 3), kinds.get(op, "?")] for op, ms in ops.most_common(12)]}


def profile_torch(step: vs_pytorch.TorchStep, steps: int) -> dict[str, Any]:
  """ms per step by kind: aten operators' self CPU time over `steps` train steps."""
  import torch  # pylint: disable=import-outside-toplevel
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    step.run(steps)
  totals: dict[str, float] = collections.Counter()
  ops: dict[str, float] = collections.Counter()
  for entry in prof.key_averages():
    if not entry.key.startswith("aten::") and "adam" not in entry.key.lower():
      continue
    ms = entry.self_cpu_time_total / 1e3 / steps
    totals[torch_kind(entry.key)] += ms
    ops[entry.key] += ms
  return {"ms_per_step": {k: totals.get(k, 0.0) for k in KINDS},
          "top_ops": [[op, round(ms, 3), torch_kind(op)] for op, ms in ops.most_common(12)]}


def profile_row(name: str, steps: int, warmup: int) -> dict[str, Any]:
  row = vs_pytorch.ROWS[name]
  images = vs_pytorch.synthetic_images(row)
  jax_step = vs_pytorch.JaxgenStep(row, images)
  torch_step = vs_pytorch.TorchStep(row, jax_step, images, compiled=False)
  parameters = vs_pytorch.check_parity(row, jax_step, torch_step)
  jax_step.run(warmup)
  torch_step.run(warmup)
  result = {"description": row.description, "batch_size": row.batch_size,
            "parameters": parameters, "steps_profiled": steps,
            "jaxgen": profile_jaxgen(jax_step, steps),
            "torch_eager": profile_torch(torch_step, steps)}
  result["table"] = table_lines(result)
  return result


def table_lines(result: dict[str, Any]) -> list[str]:
  """Markdown rows: kind | jaxgen ms/step | PyTorch ms/step."""
  jax_ms, torch_ms = result["jaxgen"]["ms_per_step"], result["torch_eager"]["ms_per_step"]
  lines = ["| kind | jaxgen ms/step | PyTorch eager ms/step |", "|---|---|---|"]
  for kind in KINDS:
    if jax_ms[kind] >= 0.05 or torch_ms[kind] >= 0.05:
      lines.append(f"| {kind} | {jax_ms[kind]:.1f} | {torch_ms[kind]:.1f} |")
  lines.append(f"| **sum** | **{sum(jax_ms.values()):.1f}** | **{sum(torch_ms.values()):.1f}** |")
  return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default=",".join(SLOWER_ROWS),
                      help=f"comma-separated rows of vs_pytorch.py (choices: {', '.join(vs_pytorch.ROWS)})")
  parser.add_argument("--steps", type=int, default=10, help="train steps profiled per side")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--out", default=None, help="default: benchmarks/results/op_profile.json")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                      help="PyTorch intra-op threads and the cores both may run on (as "
                           "vs_pytorch.py); 1 gives per-operation CPU work, robust to a loaded "
                           "machine, where PyTorch's spinning threads suffer most")
  parser.add_argument("--quick", action="store_true", help="one small row, 2 steps (smoke test)")
  args = parser.parse_args(argv)
  rows = [r for r in args.rows.split(",") if r]
  unknown = [r for r in rows if r not in vs_pytorch.ROWS]
  if args.threads < 1 or args.steps < 1 or args.warmup < 0:
    parser.error("--threads and --steps must be >= 1, --warmup >= 0")
  if unknown or not rows:
    parser.error(f"unknown row(s) {', '.join(unknown) or '(none given)'}; "
                 f"choose from {', '.join(vs_pytorch.ROWS)}")
  if args.quick:
    rows, args.steps, args.warmup = ["ddpm-digits"], 2, 1
  args.rows = rows
  return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  # Before the first jax call, as vs_pytorch.main: XLA sizes its thread pool
  # by the cores the process may run on when its backend starts.
  cores = sorted(os.sched_getaffinity(0))
  if args.threads < len(cores):
    os.sched_setaffinity(0, cores[:args.threads])
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(args.threads)
  results = {"benchmark": "op_profile", "machine": common.machine(),
             "versions": common.versions("jax", "jaxlib", "torch"),
             "load_average_1min_start": os.getloadavg()[0], "quick": args.quick,
             "threads": args.threads,
             "units": "milliseconds of operation time per train step (summed durations, "
                      "not wall time)", "rows": {}}
  for name in args.rows:
    print(f"profiling {name} ...", flush=True)
    results["rows"][name] = profile_row(name, args.steps, args.warmup)
    print("\n".join(results["rows"][name]["table"]), flush=True)
  results["load_average_1min_end"] = os.getloadavg()[0]
  path = pathlib.Path(args.out) if args.out else common.RESULTS / "op_profile.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(results, indent=2) + "\n")
  print(f"wrote {path}")
  return results


if __name__ == "__main__":
  main()
