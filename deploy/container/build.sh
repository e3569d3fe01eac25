#!/usr/bin/env bash
# Build the worker image here with buildah (Debian's podman/buildah/runc; no registry image can
# be pulled on these machines, so the base is made from Debian packages with debootstrap and
# kept as localhost/darkroom-base:bookworm). Prints the build time and the image's size.
#   deploy/container/build.sh [TAG]      (BASE=image-name to build on another base)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$("$root/.venv/bin/python" -c 'import streams; print(streams.__version__)')
tag=${1:-localhost/darkroom-worker:$version}
base=${BASE:-localhost/darkroom-base:bookworm}

for tool in podman buildah runc; do
  command -v "$tool" > /dev/null || apt-get install -y -q podman buildah runc debootstrap > /dev/null
done
if [ "$base" = localhost/darkroom-base:bookworm ] && ! podman image exists "$base"; then
  command -v debootstrap > /dev/null || apt-get install -y -q debootstrap > /dev/null
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" > /dev/null
  tar -C "$rootfs" -c . | podman import - "$base" > /dev/null
  rm -rf "$rootfs"
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
"$root/.venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$context" "$root"
wheel=$(basename "$(ls "$context"/darkroom-*.whl)")
cp "$root/deploy/container/Containerfile" "$context/"
cp /etc/ssl/certs/ca-certificates.crt "$context/ca.crt" 2> /dev/null || : > "$context/ca.crt"

started=$(date +%s)
buildah bud --quiet --format docker --build-arg "BASE=$base" --build-arg "WHEEL=$wheel" \
  -t "$tag" -f "$context/Containerfile" "$context" > /dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "built $tag in $(( $(date +%s) - started )) s, $(( size / 1000000 )) MB"
