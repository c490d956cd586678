#!/usr/bin/env bash
# jaxgen's throughput benchmarks at accelerator scale on one NVIDIA GPU.
#
#   bash benchmarks/accelerator.sh               # a machine with an NVIDIA GPU and pip access
#   bash benchmarks/accelerator.sh --cpu-smoke   # the Python part on CPU, tiny widths (no install)
#
# On a GPU machine it
#   1. checks that nvidia-smi sees a GPU (exit 2 otherwise);
#   2. makes a virtual environment ($JAXGEN_ACCEL_VENV, default .venv-accelerator),
#      installs jaxgen with the tested versions (constraints.txt) and the CUDA 12
#      wheel of the same JAX version: jax[cuda12]==<constraints' jax>;
#   3. runs benchmarks/accelerator.py (DCGAN, DDPM U-Net and conv VAE on
#      32x32x3 batches of 128 and 256, float32 and bfloat16): images/s and model
#      FLOP utilisation against the GPU's published peak, JSON in
#      benchmarks/results/accelerator.json. The benchmark part stops starting rows
#      after $JAXGEN_ACCEL_BUDGET seconds (default 420), so that it ends in under
#      8 minutes; the install before it is not counted (it is timed and printed).
# Extra arguments go to accelerator.py (e.g. --only dcgan-b128-float32).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
BUDGET="${JAXGEN_ACCEL_BUDGET:-420}"

if [[ "${1:-}" == "--cpu-smoke" ]]; then
  shift
  exec env JAX_PLATFORMS=cpu PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" benchmarks/accelerator.py --cpu-smoke "$@"
fi

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "accelerator.sh: no NVIDIA GPU found (nvidia-smi); use --cpu-smoke for a CPU check" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

JAX_VERSION="$(sed -n 's/^jax==//p' constraints.txt)"
if [[ -z "$JAX_VERSION" ]]; then
  echo "accelerator.sh: constraints.txt pins no jax version" >&2
  exit 2
fi
VENV="${JAXGEN_ACCEL_VENV:-$REPO/.venv-accelerator}"
install_start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e "$REPO" -c constraints.txt
# The CUDA plugin and NVIDIA libraries of the same JAX version (jax and jaxlib
# stay at the constraints' pins).
"$VENV/bin/python" -m pip install --quiet "jax[cuda12]==${JAX_VERSION}" -c constraints.txt
echo "install: $((SECONDS - install_start)) s (jax ${JAX_VERSION} with CUDA 12)"

"$VENV/bin/python" -c 'import jax, sys; d = jax.devices(); print(d); sys.exit(d[0].platform != "gpu")' || {
  echo "accelerator.sh: JAX does not see the GPU after installing jax[cuda12]==${JAX_VERSION}" >&2
  exit 1
}

bench_start=$SECONDS
PYTHONPATH="$REPO" "$VENV/bin/python" benchmarks/accelerator.py --budget-seconds "$BUDGET" "$@"
echo "benchmarks: $((SECONDS - bench_start)) s"
