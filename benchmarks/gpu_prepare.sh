#!/usr/bin/env bash
# Prepares what benchmarks/gpu.sh needs on a GPU machine that reaches no package registry and
# receives at most 64 MiB of files per command: run it HERE (with the project's venv and built
# models), then send .gpu/ over in the calls it prints, one carried path per call.
#
#   bash benchmarks/gpu_prepare.sh          # writes .gpu/ (ignored by git), prints the plan
#
# .gpu/ is git-ignored.
# .gpu/parts/    onnxruntime-gpu 1.31.1 (CUDA 13, cp312) in 50 MB parts + its SHA-256
# .gpu/wheels/   the few pure-Python packages the engine needs that such a machine lacks
#                (pydantic and its kin, structlog, exifread), at this venv's versions
# .gpu/models/   the built production models (the model cache's layout)
# .gpu/fp32/     open_nsfw's fp32 build, for the fp32 row beside its INT8 successor
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WANT="onnxruntime-gpu==1.31.1"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
PURE=(pydantic pydantic-core pydantic-settings python-dotenv typing-inspection annotated-types
      structlog exifread)
CACHE=$($PY -c 'from streams.config import load_settings; print(load_settings().paths.model_cache)')

rm -rf .gpu
mkdir -p .gpu/parts .gpu/wheels .gpu/models .gpu/fp32 .gpu/download
download() {
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$1" "$2"
}
echo "downloading $WANT (about 256 MB)"
download .gpu/download "$WANT"
wheel=$(ls .gpu/download/onnxruntime_gpu-*.whl)
basename "$wheel" > .gpu/parts/WHEEL
(cd .gpu/download && sha256sum "$(basename "$wheel")") > .gpu/parts/SHA256SUMS
split -b 50M -d -a 2 "$wheel" .gpu/parts/part-
rm -rf .gpu/download
for name in "${PURE[@]}"; do
  version=$($PY -c "import importlib.metadata as m; print(m.version('$name'))")
  download .gpu/wheels "$name==$version"
done
# the production models as `darkroom models build` left them (build it first)
$PY - "$CACHE" <<'PYEOF'
import shutil, sys
from pathlib import Path
from streams.config import load_settings
from streams.models.repository import ModelRepository
cache = Path(sys.argv[1])
repository = ModelRepository.from_settings(load_settings())
for manifest in [*repository.production(), repository.get("open_nsfw")]:
    artifacts = repository.require_built(manifest)
    target = ".gpu/models" if not manifest.is_variant else ".gpu/fp32"
    shutil.copytree(artifacts.folder, Path(target) / manifest.name / manifest.version)
PYEOF
echo
du -sh .gpu/parts/part-* .gpu/wheels .gpu/models .gpu/fp32
echo
echo "Send it with the device tool's run, one call per line; what a call carries stays there"
echo "for the next calls while the machine is held:"
first=1
for part in .gpu/parts/part-*; do
  if [ $first = 1 ]; then
    echo "  carry [\"$part\", \".gpu/parts/WHEEL\", \".gpu/parts/SHA256SUMS\"]  command: true"
    first=0
  else
    echo "  carry [\"$part\"]  command: true"
  fi
done
echo "  carry [\".gpu/models\"]  command: true"
echo "  carry [\".gpu/fp32\", \".gpu/wheels\"]  command: bash benchmarks/gpu.sh \$OUT  (timeout_s 540)"
