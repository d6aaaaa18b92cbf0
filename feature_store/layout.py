"""What one clip item must look like, from the feature's spec.

Spec keys read here (all optional): `dtype` ("float32" default, "float16" to halve storage,
"uint8" for images such as the `faces` crops), `item_shape` (shape of one row, e.g. [224, 224, 3])
or `dim` (row width of 2-D float data), `extras` ({name: width}), `compression` ("gzip"/"lzf").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

ALLOWED_DTYPES = ("float32", "float16", "uint8")


@dataclass(frozen=True)
class ItemLayout:
    dtype: np.dtype
    item_shape: tuple[int, ...] | None  # None: not declared (dim alone constrains only 2-D data)
    dim: int | None
    compression: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "ItemLayout":
        name = str(spec.get("dtype") or "float32")
        if name not in ALLOWED_DTYPES:
            raise ValueError(f"spec dtype {name!r} not supported; use one of {ALLOWED_DTYPES}")
        shape = spec.get("item_shape")
        dim = spec.get("dim")
        return cls(np.dtype(name), tuple(int(s) for s in shape) if shape is not None else None,
                   int(dim) if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) else None,
                   spec.get("compression"))

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    def shape_problem(self, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        """Why an item of this shape/dtype does not fit the declared layout, or None."""
        if dtype != self.dtype:
            return f"dtype {dtype} but the spec declares {self.dtype}"
        if len(shape) < 2:
            return f"data shape {shape} has no time axis and row (expected (T, ...))"
        if self.item_shape is not None and tuple(shape[1:]) != self.item_shape:
            return f"data shape {shape} but the spec declares rows of {self.item_shape}"
        if self.item_shape is None and self.is_float and len(shape) != 2:
            return f"data shape {shape}: float features are (T, dim)"
        if self.item_shape is None and self.dim is not None and len(shape) == 2 and shape[1] != self.dim:
            return f"data shape {shape} but the spec declares dim {self.dim}"
        return None

    def prepare(self, clip_id: str, data: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate and convert one item for writing; ValueError naming the clip otherwise."""
        arr = np.asarray(data)
        if self.is_float:
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"clip {clip_id!r}: data dtype {arr.dtype} is not numeric")
            with np.errstate(over="ignore"):
                arr = arr.astype(self.dtype, copy=False)
        elif arr.dtype != self.dtype:
            raise ValueError(f"clip {clip_id!r}: data dtype {arr.dtype}, the spec declares {self.dtype}")
        problem = self.shape_problem(arr.shape, arr.dtype)
        if problem:
            raise ValueError(f"clip {clip_id!r}: {problem}")
        if arr.shape[0] == 0:
            raise ValueError(f"clip {clip_id!r}: no rows (T = 0); record an error for it instead")
        if self.is_float and not np.isfinite(arr).all():
            raise ValueError(f"clip {clip_id!r}: data has NaN/inf"
                             + (" (values beyond float16 range?)" if self.dtype == np.float16 else ""))
        t = np.asarray(times, dtype=np.float64)
        if t.shape != (arr.shape[0],):
            raise ValueError(f"clip {clip_id!r}: times shape {t.shape}, expected ({arr.shape[0]},)")
        if not np.isfinite(t).all():
            raise ValueError(f"clip {clip_id!r}: times have NaN/inf")
        return np.ascontiguousarray(arr), t
