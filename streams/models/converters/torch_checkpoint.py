"""Read PyTorch ``state_dict`` checkpoints into numpy arrays without torch.

Two on-disk layouts are supported:

* the zip layout written by ``torch.save`` since torch 1.6
  (``<prefix>/data.pkl`` plus one raw file per storage in ``<prefix>/data/``);
* the legacy layout written before that (a stream of pickles followed by the
  raw storages), which is what torchvision's 2018-2019 checkpoints such as
  ``mobilenet_v2-b0353104.pth`` use.

Unpickling is restricted: only ``collections.OrderedDict``, the tensor rebuild
helpers and the typed storage classes are resolvable, and they resolve to inert
stand-ins defined here. Any other global aborts with :class:`CheckpointError`,
so a malicious checkpoint cannot run code.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from streams.errors import OperationError

__all__ = ["CheckpointError", "load_state_dict"]

_LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL: Final = 1001
_BFLOAT16: Final = "BFloat16Storage"

# Storage class name -> little-endian numpy dtype of one element on disk.
_STORAGE_DTYPES: Final[dict[str, str]] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    _BFLOAT16: "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}

Array = npt.NDArray[Any]


class CheckpointError(OperationError):
    """The checkpoint is malformed or contains something we refuse to load."""


@dataclass(frozen=True)
class _StorageType:
    """Inert stand-in for a ``torch.<Type>Storage`` class."""

    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        """On-disk element dtype of this storage type."""
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _StorageRef:
    """A (possibly offset) reference to a storage that is read later."""

    key: str
    storage_type: _StorageType
    numel: int
    view_offset: int = 0


@dataclass(frozen=True)
class _TensorRef:
    """A tensor described by the pickle; materialised once storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    """Validate that ``value`` is a tuple of non-negative ints."""
    if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise CheckpointError(f"bad tensor {what}: {value!r}")
    return value


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    *_ignored: object,
) -> _TensorRef:
    """Safe replacement for ``torch._utils._rebuild_tensor_v2``."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError("tensor does not reference a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointError(f"bad storage offset: {storage_offset!r}")
    shape = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise CheckpointError("tensor size and stride differ in length")
    return _TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data: object, *_ignored: object) -> object:
    """Safe replacement for ``torch._utils._rebuild_parameter``."""
    if not isinstance(data, _TensorRef):
        raise CheckpointError("parameter does not wrap a tensor")
    return data


_ALLOWED_GLOBALS: Final[dict[tuple[str, str], object]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}

StorageResolver = Callable[[tuple[object, ...]], _StorageRef]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals to inert stand-ins."""

    def __init__(self, file: IO[bytes], resolver: StorageResolver | None) -> None:
        """Wrap ``file``; ``resolver`` handles persistent storage ids."""
        super().__init__(file)
        self._resolver = resolver

    def find_class(self, module: str, name: str, /) -> object:
        """Return the stand-in for an allowed global or refuse."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(f"refusing to unpickle global {module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        """Resolve a ``('storage', ...)`` persistent id to a storage ref."""
        if self._resolver is None or not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        if pid[0] != "storage":
            raise CheckpointError(f"unsupported persistent id type {pid[0]!r}")
        return self._resolver(pid)


def _storage_fields(pid: tuple[object, ...]) -> tuple[_StorageType, str, int]:
    """Extract (type, key, numel) from a storage persistent id."""
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(storage_type, _StorageType):
        raise CheckpointError(f"unknown storage type {storage_type!r}")
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise CheckpointError(f"bad storage id {pid!r}")
    return storage_type, key, numel


def _decode_storage(raw: bytes, ref: _StorageRef) -> Array:
    """Turn raw little-endian storage bytes into a flat native numpy array."""
    dtype = ref.storage_type.dtype
    if len(raw) < ref.numel * dtype.itemsize:
        raise CheckpointError(f"storage {ref.key} is truncated")
    flat = np.frombuffer(raw, dtype=dtype, count=ref.numel)
    if ref.storage_type.name == _BFLOAT16:
        return (flat.astype(np.uint32) << 16).view(np.float32)
    return flat.astype(dtype.newbyteorder("="), copy=False)


def _materialise_tensor(ref: _TensorRef, flat: Array) -> Array:
    """Copy one tensor out of its flat storage, honouring offset and stride."""
    start = ref.storage.view_offset + ref.offset
    if 0 in ref.size:
        return np.empty(ref.size, dtype=flat.dtype)
    last = start + sum((d - 1) * s for d, s in zip(ref.size, ref.stride, strict=True))
    if last >= flat.size:
        raise CheckpointError(f"tensor exceeds storage {ref.storage.key}")
    view = np.lib.stride_tricks.as_strided(
        flat[start:],
        shape=ref.size,
        strides=tuple(s * flat.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view, copy=True, order="C")


def _materialise(tree: object, storages: Mapping[str, Array]) -> object:
    """Recursively replace tensor refs in ``tree`` by numpy arrays."""
    if isinstance(tree, _TensorRef):
        return _materialise_tensor(tree, storages[tree.storage.key])
    if isinstance(tree, dict):
        return type(tree)((k, _materialise(v, storages)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree)(_materialise(v, storages) for v in tree)
    return tree


def _as_state_dict(tree: object) -> dict[str, Array]:
    """Check that ``tree`` is a flat ``{name: array}`` mapping and copy it."""
    if not isinstance(tree, dict):
        raise CheckpointError(f"checkpoint is a {type(tree).__name__}, not a dict")
    out: dict[str, Array] = {}
    for key, value in tree.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(f"entry {key!r} is not a named tensor")
        out[key] = value
    return out


def _read_zip(path: Path) -> dict[str, Array]:
    """Load a zip-layout checkpoint (torch >= 1.6)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.rsplit("/", 1)[-1] == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError(f"expected one data.pkl, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order).strip() != b"little":
            raise CheckpointError("big-endian checkpoints are not supported")
        refs: dict[str, _StorageRef] = {}

        def resolve(pid: tuple[object, ...]) -> _StorageRef:
            """Record a storage named by a zip persistent id."""
            if len(pid) != 5:
                raise CheckpointError(f"bad storage id {pid!r}")
            storage_type, key, numel = _storage_fields(pid)
            return refs.setdefault(key, _StorageRef(key, storage_type, numel))

        with archive.open(pickles[0]) as handle:
            tree = _RestrictedUnpickler(handle, resolve).load()
        storages = {
            key: _decode_storage(archive.read(f"{prefix}data/{key}"), ref)
            for key, ref in refs.items()
        }
    return _as_state_dict(_materialise(tree, storages))


def _legacy_resolver(refs: dict[str, _StorageRef]) -> StorageResolver:
    """Build the persistent-id resolver for the legacy layout."""

    def resolve(pid: tuple[object, ...]) -> _StorageRef:
        """Record a root storage and return it, or a view into it."""
        if len(pid) != 6:
            raise CheckpointError(f"bad storage id {pid!r}")
        storage_type, key, numel = _storage_fields(pid)
        root = refs.setdefault(key, _StorageRef(key, storage_type, numel))
        view = pid[5]
        if view is None:
            return root
        if not isinstance(view, tuple) or len(view) != 3:
            raise CheckpointError(f"bad storage view {view!r}")
        _, offset, view_size = view
        if not isinstance(offset, int) or not isinstance(view_size, int):
            raise CheckpointError(f"bad storage view {view!r}")
        return _StorageRef(key, storage_type, view_size, offset)

    return resolve


def _read_legacy_storage(handle: IO[bytes], ref: _StorageRef) -> Array:
    """Read one ``<int64 numel><raw bytes>`` record of the legacy layout."""
    header = handle.read(8)
    if len(header) != 8:
        raise CheckpointError("legacy checkpoint is truncated")
    (numel,) = struct.unpack("<q", header)
    if numel != ref.numel:
        raise CheckpointError(f"storage {ref.key}: {numel} != {ref.numel} elements")
    raw = handle.read(numel * ref.storage_type.dtype.itemsize)
    return _decode_storage(raw, ref)


def _read_legacy(path: Path) -> dict[str, Array]:
    """Load a legacy-layout checkpoint (torch < 1.6)."""
    with path.open("rb") as handle:
        if _RestrictedUnpickler(handle, None).load() != _LEGACY_MAGIC:
            raise CheckpointError("not a torch checkpoint (bad magic number)")
        if _RestrictedUnpickler(handle, None).load() != _LEGACY_PROTOCOL:
            raise CheckpointError("unsupported legacy protocol version")
        sys_info = _RestrictedUnpickler(handle, None).load()
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise CheckpointError("big-endian checkpoints are not supported")
        refs: dict[str, _StorageRef] = {}
        tree = _RestrictedUnpickler(handle, _legacy_resolver(refs)).load()
        keys = _RestrictedUnpickler(handle, None).load()
        if not isinstance(keys, list) or sorted(keys) != sorted(refs):
            raise CheckpointError("storage key list does not match the pickle")
        storages = {key: _read_legacy_storage(handle, refs[key]) for key in keys}
    return _as_state_dict(_materialise(tree, storages))


def load_state_dict(path: str | Path) -> dict[str, Array]:
    """Load a torch ``state_dict`` file as ``{name: numpy array}`` without torch."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
