"""Fingerprints: a short, stable hash of everything that changes a feature's numbers."""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np

FINGERPRINT_LENGTH = 12


def _plain(obj: Any) -> Any:
    """Turn obj into JSON-native values (dict with str keys, list, str, int, float, bool, None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_plain(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        # NaN/inf are not JSON; spell them so the hash is still defined and stable.
        return value if math.isfinite(value) else repr(value)
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return _plain(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f"fingerprint_of: cannot canonicalise a {type(obj).__name__} ({obj!r})")


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, floats as Python's shortest round-trip repr.

    Tuples become lists, numpy scalars/arrays become Python numbers/lists, paths become strings,
    dataclasses become dicts. Note 1 and 1.0 stay different (an int and a float are different
    settings)."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def fingerprint_of(obj: Any) -> str:
    """First 12 hex digits of sha256 over canonical_json(obj)."""
    digest = hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
    return digest[:FINGERPRINT_LENGTH]
