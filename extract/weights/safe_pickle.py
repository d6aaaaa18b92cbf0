"""A restricted unpickler for torch checkpoints that pickle more than tensors (e.g. POSTER V2).

`find_class` never imports anything. It hands out our own functions for exactly what rebuilding
tensors needs (torch's `_rebuild_tensor*`, storage types, dtypes), plain containers, and numeric numpy
arrays. Any other global becomes an inert `Placeholder` subclass that records the name and
ignores its arguments, so no pickled callable is ever executed. Storages are read from the
torch zip archive (`<prefix>/data/<key>`) as raw bytes.
"""
from __future__ import annotations

import _compat_pickle
import collections
import functools
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from extract.weights.errors import UnsafeCheckpoint

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_NUMERIC_DTYPE = re.compile(r"^[biufc]\d{1,2}$|^\?$")


class Placeholder:
    """Stands in for a refused global. Calling, building or filling it does nothing but
    remember the state it was given (inert data), so pickled whole modules can still
    yield their tensors."""

    global_name = "?"
    _eri_state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._eri_state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._eri_state = state

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        return type(self)()

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{self.global_name} placeholder>"


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage:
    def __init__(self, data: torch.UntypedStorage, dtype: torch.dtype) -> None:
        self.data, self.dtype = data, dtype


class NumpyArray:
    """A numeric numpy array rebuilt from its pickled state (object arrays are refused)."""

    def __init__(self, *args: Any) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        _version, shape, dtype, fortran, raw = state if len(state) == 5 else (None, *state)
        if isinstance(raw, str):  # Python 2 pickles
            raw = raw.encode("latin1")
        if not isinstance(dtype, _Dtype) or dtype.dtype is None or not isinstance(raw, (bytes, bytearray)):
            return
        try:
            arr = np.frombuffer(bytes(raw), dtype=dtype.dtype).reshape(tuple(shape), order="F" if fortran else "C")
        except (TypeError, ValueError):  # inconsistent state: leave it out, like any other object
            return
        self.array = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("=")))


class _Dtype:
    def __init__(self, code: Any = None, *args: Any) -> None:
        ok = isinstance(code, str) and bool(_NUMERIC_DTYPE.match(code))
        self.code, self.dtype = code, (np.dtype(code) if ok else None)

    def __setstate__(self, state: Any) -> None:
        if self.dtype is not None and isinstance(state, tuple) and len(state) > 1 and state[1] in "<>|=":
            self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" else self.dtype


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> NumpyArray:
    return NumpyArray()


def _numpy_scalar(dtype: Any, raw: Any = None) -> Any:
    if isinstance(dtype, _Dtype) and dtype.dtype is not None and isinstance(raw, (bytes, bytearray)) \
            and len(raw) == dtype.dtype.itemsize:
        return np.frombuffer(bytes(raw), dtype=dtype.dtype)[0].item()
    return _placeholder("numpy", "scalar")()


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode(encoding)


def _check_storage(storage: Any) -> _Storage:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor rebuild without a storage from the archive")
    return storage


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *rest: Any,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    st = _check_storage(storage)
    t = torch.empty((0,), dtype=dtype or st.dtype)
    return t.set_(st.data, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_tensor_v3(storage: Any, offset: int, size: Any, stride: Any, requires_grad: Any,
                       hooks: Any, dtype: Any, *rest: Any) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError("tensor rebuild with a non-dtype")
    return _rebuild_tensor(storage, offset, size, stride, dtype=dtype)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data  # a Parameter's data is all we keep


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter):
        return func(*args)
    return _placeholder("torch._tensor", "_rebuild_from_type_v2")()


@functools.lru_cache(maxsize=1)
def _safe_globals() -> dict[str, Any]:
    table: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "builtins.set": set, "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "_codecs.encode": _encode,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type,
        "torch.Size": tuple,
        "torch.UntypedStorage": _StorageType(torch.uint8),
    }
    for dtype, storage_name in torch.storage._dtype_to_storage_type_map().items():
        table[f"torch.{storage_name}"] = _StorageType(dtype)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            table[f"torch.{name}"] = getattr(torch, name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[f"{mod}._reconstruct"] = _numpy_reconstruct
        table[f"{mod}.scalar"] = _numpy_scalar
    table["numpy.ndarray"] = _Marker("numpy.ndarray")
    table["numpy.dtype"] = _Dtype
    return table


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name


_placeholders: dict[str, type[Placeholder]] = {}


def _placeholder(module: str, name: str) -> type[Placeholder]:
    full = f"{module}.{name}"
    if full not in _placeholders:
        cls_name = re.sub(r"\W", "_", name) or "Global"
        _placeholders[full] = type(cls_name, (Placeholder,), {"global_name": full})
    return _placeholders[full]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that never imports: allowlisted globals map to our own code, the rest to placeholders."""

    def __init__(self, file: io.BufferedIOBase, archive: zipfile.ZipFile | None = None,
                 prefix: str = "") -> None:
        super().__init__(file, encoding="latin1")
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, _Storage] = {}
        self._globals = _safe_globals()
        self.refused: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f"{module}.{name}"
        if full in self._globals:
            return self._globals[full]
        self.refused.add(full)
        return _placeholder(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._archive is None:
            raise pickle.UnpicklingError("persistent id in a plain pickle (not a torch zip checkpoint)")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("storage of an unknown type")
        key = key.decode() if isinstance(key, bytes) else str(key)
        if key not in self._storages:
            raw = bytearray(self._archive.read(f"{self._prefix}data/{key}"))
            expected = int(numel) * torch.empty((), dtype=storage_type.dtype).element_size()
            if len(raw) != expected:
                raise pickle.UnpicklingError(f"storage {key}: {len(raw)} bytes, expected {expected}")
            data = torch.frombuffer(raw, dtype=torch.uint8).untyped_storage() if raw else torch.UntypedStorage(0)
            self._storages[key] = _Storage(data, storage_type.dtype)
        return self._storages[key]


def restricted_load(path: Path) -> tuple[Any, set[str]]:
    """Unpickle a torch zip checkpoint or a plain pickle without running any pickled code.

    Returns (object tree with placeholders, names of refused globals)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                if not pkl:
                    raise UnsafeCheckpoint(f"{path}: a zip file without data.pkl is not a torch checkpoint")
                prefix = pkl[0][: -len("data.pkl")]
                byteorder = f"{prefix}byteorder"
                if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
                    raise UnsafeCheckpoint(f"{path}: big-endian checkpoints are not supported")
                unpickler = RestrictedUnpickler(io.BytesIO(archive.read(pkl[0])), archive, prefix)
                return unpickler.load(), unpickler.refused
        with path.open("rb") as f:
            unpickler = RestrictedUnpickler(f)
            obj = unpickler.load()
            if obj == _TORCH_LEGACY_MAGIC:
                raise UnsafeCheckpoint(f"{path}: legacy (pre-1.6) torch format holding non-tensor objects is "
                                       "not supported by the restricted reader; re-save it with a newer torch")
            return obj, unpickler.refused
    except UnsafeCheckpoint:
        raise
    except Exception as exc:  # any malformed stream: report, never half-load
        raise UnsafeCheckpoint(f"{path}: cannot be read by the restricted unpickler: "
                               f"{type(exc).__name__}: {exc}") from exc
