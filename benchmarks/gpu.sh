#!/usr/bin/env bash
# The GPU benchmarks, as one script for a machine with one NVIDIA GPU, many cores and CUDA 13
# libraries that reaches no package registry (prepare it with benchmarks/gpu_prepare.sh):
#
#   bash benchmarks/gpu.sh OUT_DIR        # from the repository root; under 8 minutes
#
# 1. what the machine has (GPU, driver, cores, Python, the packages that matter) -> machine.txt
# 2. onnxruntime with the CUDA provider: the one installed if it has CUDA, else the carried
#    onnxruntime-gpu wheel (.gpu/parts, checked by SHA-256) and .gpu/wheels, into /tmp/darkroom-site;
#    the CUDA libraries of the machine's nvidia-* Python packages go on LD_LIBRARY_PATH
# 3. `python -m benchmarks.engine` with the CUDA provider (cuda/), then TensorRT if it loads
#    (tensorrt/, --quick: TensorRT builds an engine per input shape)
# 4. `python -m benchmarks.decode_ceiling` with every core decoding
# Everything lands in OUT_DIR (at most 8 files, as the device tool brings back), log included.
#
# GPU_SH_PYTHON picks the interpreter (default python3); GPU_SH_CPU_OK=1 lets it run without an
# NVIDIA GPU (to test the script itself: the benchmarks then run on the CPU provider);
# GPU_SH_INSTALL=1 installs the carried wheels even where onnxruntime has CUDA already.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu.sh OUT_DIR}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
PY=${GPU_SH_PYTHON:-python3}
SITE=/tmp/darkroom-site
started=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - started )) s)"; }

step "machine"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  echo "cores: $(nproc)"
  "$PY" -V
  "$PY" -m pip list 2>/dev/null | grep -iE '^(onnxruntime|numpy|opencv|nvidia-(cublas|cudnn|cuda-runtime|cufft|curand)|tensorrt|pydantic|structlog|scikit-image) ' || true
} | tee "$OUT/machine.txt"
if ! nvidia-smi -L >/dev/null 2>&1 && [ "${GPU_SH_CPU_OK:-0}" != 1 ]; then
  echo "no NVIDIA GPU here (GPU_SH_CPU_OK=1 runs the script on the CPU anyway)"; exit 2
fi

step "onnxruntime with CUDA"
has_cuda() { "$PY" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; }
if ! has_cuda || [ "${GPU_SH_INSTALL:-0}" = 1 ]; then
  wheel=/tmp/$(cat .gpu/parts/WHEEL) || { echo "no .gpu/parts: run benchmarks/gpu_prepare.sh and carry it"; exit 3; }
  cat .gpu/parts/part-* > "$wheel"
  (cd /tmp && sha256sum -c "$OLDPWD/.gpu/parts/SHA256SUMS") || { echo "the wheel's parts do not add up"; exit 3; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$wheel" .gpu/wheels/*.whl || exit 3
  rm -f "$wheel"
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# onnxruntime-gpu finds CUDA and cuDNN through the loader: the nvidia-* packages' lib folders
NV=$("$PY" -c 'import glob, os, site; print(":".join(d for b in site.getsitepackages() for d in sorted(glob.glob(os.path.join(b, "nvidia", "*", "lib")))))')
export LD_LIBRARY_PATH="$NV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$PY" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())' || exit 3
"$PY" -c 'import streams.engine' || { echo "the engine does not import: a package is missing"; exit 3; }

# the carried builds, unless this machine has built its own
if [ -d .gpu/models ]; then
  export DARKROOM_PATHS_MODEL_CACHE="$PWD/.gpu/models"
  [ -d .gpu/fp32 ] && cp -rn .gpu/fp32/. .gpu/models/
fi
export DARKROOM_ENGINE_VARIANTS=none PYTHONUNBUFFERED=1
quick=()
[ "${GPU_SH_CPU_OK:-0}" = 1 ] && ! nvidia-smi -L >/dev/null 2>&1 && quick=(--quick)

step "engine benchmark, CUDA provider"
DARKROOM_ENGINE_PROVIDERS='["cuda","cpu"]' timeout 240 "$PY" -m benchmarks.engine "${quick[@]}" --out "$OUT/cuda"
echo "exit status $?"

step "engine benchmark, TensorRT provider (quick)"
DARKROOM_ENGINE_PROVIDERS='["tensorrt","cuda","cpu"]' timeout 120 "$PY" -m benchmarks.engine --quick --out "$OUT/tensorrt"
echo "exit status $?"

step "decode-bound ceiling, every core decoding"
timeout 90 "$PY" -m benchmarks.decode_ceiling --threads "1,$(nproc)" --runs 2 --out "$OUT"
echo "exit status $?"

rm -f "$OUT"/*/engine.png  # the tool brings back 8 files; the tables say it all
step "done"
ls -R "$OUT"
