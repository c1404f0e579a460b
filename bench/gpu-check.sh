#!/usr/bin/env bash
# The GPU check (issue 7): build the addon with CUDA, run the CUDA tests on the device (the
# kernels, and training / encoding with device 'cuda' against the CPU), then benchmark every CUDA
# kernel against the device's measured limits and DCL-S training through train({ device: 'cuda' })
# at batch 256 against the CPU, and write a Markdown table to $OUT/gpu-check.md (or ./gpu-check.md). Meant for a machine with an NVIDIA GPU, its driver and a
# CUDA toolkit (nvcc); about 3 minutes on an H100 (the build is most of it), 8 at the very most.
#
#   bench/gpu-check.sh            # from the repository root or anywhere
#   DCL_CUDA_ARCHS=90 bench/gpu-check.sh   # force the architecture list (default: this GPU's)
#   bench/gpu-check.sh --prebuilt # no install or build: use $DCL_ADDON (default
#                                 # build-gpu-check/Release/dcl_native.node) and the compiled dist/,
#                                 # e.g. on a GPU machine without registry access
# Other arguments go to the benchmark (dist/bench/gpu.js: --quick, --out FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
prebuilt=0
if [[ "${1:-}" == "--prebuilt" ]]; then
  prebuilt=1
  shift
fi
start=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

step "environment"
node --version
nvcc --version | tail -n 1 || { echo "nvcc not found: a CUDA toolkit is needed to build the kernels" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader || echo "(nvidia-smi not available)"

# Build for this GPU's architecture only (a full build compiles five): compute_cap 9.0 -> 90.
if [[ -z "${DCL_CUDA_ARCHS:-}" ]]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
  if [[ "$cap" =~ ^[0-9]+$ ]]; then export DCL_CUDA_ARCHS="${cap}-real"; fi
fi
echo "DCL_CUDA_ARCHS=${DCL_CUDA_ARCHS:-all}"

if [[ $prebuilt == 0 ]]; then
  step "dependencies"
  if [[ ! -d node_modules/cmake-js || ! -d node_modules/uvu ]]; then
    npm ci --ignore-scripts --no-audit --no-fund
  fi
  step "build with CUDA (build-gpu-check/)"
  DCL_CUDA=ON npx cmake-js compile --out build-gpu-check
  export DCL_ADDON="$PWD/build-gpu-check/Release/dcl_native.node"
  npx tsc -p tsconfig.json
else
  export DCL_ADDON="${DCL_ADDON:-$PWD/build-gpu-check/Release/dcl_native.node}"
  echo "prebuilt addon: $DCL_ADDON"
fi
node -e "const c = require(process.env.DCL_ADDON).cudaStatus(); console.log(JSON.stringify(c)); if (!c.usable) process.exit(1);" \
  || { echo "CUDA is compiled in but not usable here (see the reason above)" >&2; exit 1; }

step "CUDA tests"
DCL_EXPECT_CUDA=1 node scripts/run-tests.mjs '(cuda|cuda-train|capabilities)\.test\.js$'

step "benchmark"
node dist/bench/gpu.js "$@"

step "done"
