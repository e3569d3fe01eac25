"""Hypothesis strategies that generate records for any Avro schema (used by codec tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = st.text(max_size=12)

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": _TEXT,
    "bytes": st.binary(max_size=16),
}

timestamps_ms = st.integers(0, 4_102_444_800_000).map(
    lambda ms: _EPOCH + timedelta(milliseconds=ms)
)


def records(schema: Any) -> st.SearchStrategy[Any]:
    """Values valid for ``schema`` (a parsed-JSON Avro schema)."""
    return _strategy(schema, {}, namespace="")


def _strategy(schema: Any, named: dict[str, Any], namespace: str) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([_strategy(branch, named, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        full = schema if "." in schema else f"{namespace}.{schema}"
        return st.deferred(lambda: _strategy(named[full], named, namespace))
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return timestamps_ms
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind in ("record", "enum", "fixed"):
        namespace = schema.get("namespace", namespace)
        named[f"{namespace}.{schema['name']}"] = schema
    if kind == "record":
        fields = {f["name"]: _strategy(f["type"], named, namespace) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_strategy(schema["items"], named, namespace), max_size=3)
    if kind == "map":
        return st.dictionaries(_TEXT, _strategy(schema["values"], named, namespace), max_size=3)
    raise NotImplementedError(f"no strategy for Avro type {kind!r}")
