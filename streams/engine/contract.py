"""A variant's outputs must read like production's before anything downstream sees them.

Downstream of the engine, fields are read by shape: the near-duplicate search multiplies a
photo's embedding with the user's stored ones, the people index measures face embeddings against
centroids, the similar-photos search stacks embeddings into one matrix. A canary whose embedding
was 512 wide where production's is 1280 passed every check, was served, and the first photo of a
user with a near-duplicate candidate raised in a matrix product; the batch could not complete
and its partition stopped for good. ``mismatch`` compares a variant's fields with production's
for the same photo, structurally (types, keys, the width of every numeric vector, nested), so
such an output fails the variant for that photo, and production is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NUMBER = (int, float)


def mismatch(production: Mapping[str, Any], variant: Mapping[str, Any]) -> str | None:
    """Where ``variant`` cannot stand in for ``production`` (one line), or None if it can. A
    field production left empty (None) accepts anything; lists may differ in length (a photo's
    faces, its labels) except numeric vectors (embeddings), whose width is the contract."""
    for name, value in production.items():
        if name not in variant:
            return f"{name}: missing"
        problem = _compare(value, variant[name], name)
        if problem is not None:
            return problem
    return None


def _compare(ours: Any, theirs: Any, path: str) -> str | None:
    if ours is None or theirs is None:
        return None
    if isinstance(ours, bool) or isinstance(theirs, bool):
        same = isinstance(ours, bool) and isinstance(theirs, bool)
        return None if same else f"{path}: {_kind(theirs)}, production {_kind(ours)}"
    if isinstance(ours, _NUMBER) and isinstance(theirs, _NUMBER):
        return None
    if isinstance(ours, Mapping):
        if not isinstance(theirs, Mapping):
            return f"{path}: {_kind(theirs)}, production {_kind(ours)}"
        for key, value in ours.items():
            if key not in theirs:
                return f"{path}.{key}: missing"
            problem = _compare(value, theirs[key], f"{path}.{key}")
            if problem is not None:
                return problem
        return None
    if isinstance(ours, list | tuple):
        if not isinstance(theirs, list | tuple):
            return f"{path}: {_kind(theirs)}, production {_kind(ours)}"
        if _vector(ours) or _vector(theirs):
            if len(ours) != len(theirs) and ours and theirs:
                return f"{path}: width {len(theirs)}, production {len(ours)}"
            return None
        if ours and theirs:  # items alike: the first of each stands for the rest
            return _compare(ours[0], theirs[0], f"{path}[]")
        return None
    if type(ours) is not type(theirs):
        return f"{path}: {_kind(theirs)}, production {_kind(ours)}"
    return None


def _vector(value: list[Any] | tuple[Any, ...]) -> bool:
    return bool(value) and all(
        isinstance(x, _NUMBER) and not isinstance(x, bool) for x in value[:8]
    )


def _kind(value: Any) -> str:
    return type(value).__name__
