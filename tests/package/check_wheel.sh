#!/usr/bin/env bash
# The wheel outside the checkout, as a platform team installs it: build it, install it with its
# extras into a new virtual environment in a temporary folder, and from an empty folder run
# `darkroom --version`, `models install`, `models build` and the demo. `make test` runs this.
# The model cache (~/.cache/darkroom/models) is shared with the checkout: a model already built
# there is checked, not rebuilt (a fresh cache would add minutes of conversion).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

"$root/.venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$root"
wheel=$(ls "$work"/dist/darkroom-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "$wheel[build,samples]"

mkdir "$work/empty"
cd "$work/empty"
darkroom="$work/venv/bin/darkroom"
installed=$("$work/venv/bin/python" -c 'import streams; print(streams.__file__)')
case "$installed" in
  "$work"/venv/*) ;;
  *) echo "check_wheel: streams imported from $installed, not from the wheel" >&2; exit 1 ;;
esac
"$darkroom" --version
"$darkroom" models install > "$work/models-install.log" 2>&1 \
  || { cat "$work/models-install.log" >&2; exit 1; }
"$darkroom" models build > /dev/null
"$darkroom" demo > "$work/demo.log" 2>&1 || { tail -40 "$work/demo.log" >&2; exit 1; }
grep -q "worker and broker stopped" "$work/demo.log"
echo "check_wheel: $(basename "$wheel") ran from an empty folder ($(( $(date +%s) - started )) s)"
