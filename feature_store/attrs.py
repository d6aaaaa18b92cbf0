"""Per-clip attributes <-> HDF5 attributes.

Numbers, strings and booleans are stored as native HDF5 attributes (readable with any HDF5 tool);
numeric lists/arrays as small arrays; anything else JSON-able (None, dicts, mixed lists) as a JSON
string whose key is listed in the `_json_keys` attribute so it is decoded on read.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

RESERVED = ("clip_id", "_json_keys")
# Provenance attributes: numeric but not quality measures (excluded from QA summaries).
PROVENANCE_KEYS = frozenset({"source", "size", "mtime", "content_hash", "extractor", "extractor_version"})


def write_attrs(obj: Any, attrs: Mapping[str, Any]) -> None:
    """`obj`: anything with an HDF5-style `.attrs` mapping (the shard writer's groups)."""
    json_keys = []
    for key, value in attrs.items():
        if not isinstance(key, str) or not key or key in RESERVED:
            raise ValueError(f"attribute name {key!r} is empty, not a string or reserved {RESERVED}")
        if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating, str)):
            obj.attrs[key] = value
            continue
        arr = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if arr is not None and arr.ndim >= 1 and arr.size and arr.dtype.kind in "biuf":
            obj.attrs[key] = arr
            continue
        try:
            obj.attrs[key] = json.dumps(value, sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"attribute {key!r}: cannot store {type(value).__name__}: {exc}") from None
        json_keys.append(key)
    if json_keys:
        obj.attrs["_json_keys"] = json.dumps(json_keys)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_attrs(obj: Any) -> dict[str, Any]:
    raw = dict(obj.attrs)
    json_keys = set(json.loads(raw.pop("_json_keys", "[]")))
    raw.pop("clip_id", None)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in json_keys:
            out[key] = json.loads(value)
        elif isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        elif isinstance(value, bytes):
            out[key] = value.decode("utf-8")
        else:
            out[key] = value
    return out


def numeric_qa(attrs: Mapping[str, Any]) -> dict[str, float]:
    """Numeric per-clip values that are not provenance (e.g. face_detection_rate, duration)."""
    return {k: float(v) for k, v in attrs.items()
            if k not in PROVENANCE_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def is_flagged(attrs: Mapping[str, Any]) -> bool:
    """A clip is flagged when it carries a truthy `flagged` attribute or a non-empty `flags`."""
    return bool(attrs.get("flagged")) or bool(attrs.get("flags"))
