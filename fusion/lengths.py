"""Length policies: bring variable-length (T_i, *row) sequences to a fixed number of steps.

A row is a vector (D,) or a token set (N, D); the policies act along T only, on each
token's channels alike, and keep the input's float dtype (float16 stays float16).

resample  every clip becomes exactly `steps` rows; longer clips are averaged over
          `steps` equal segments (adaptive average pooling, no aliasing), shorter clips
          are linearly interpolated; the mask is all True.
pad       the first `steps` rows are kept (truncation) and shorter clips are zero-padded
          at the end; the mask marks the real rows.
"""
from __future__ import annotations

import numpy as np

POLICIES = ("resample", "pad")


def resample(x: np.ndarray, steps: int) -> np.ndarray:
    """(L, *row) -> (steps, *row), in x's float dtype (float64 sums for the averages)."""
    length = x.shape[0]
    if length == steps:
        return x
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    flat = x.reshape(length, -1)
    if length > steps:
        csum = np.concatenate([np.zeros((1, flat.shape[1]), np.float64), np.cumsum(flat, axis=0, dtype=np.float64)])
        i = np.arange(steps)
        start = (i * length) // steps
        stop = -((-(i + 1) * length) // steps)  # ceil
        out = (csum[stop] - csum[start]) / (stop - start)[:, None]
    elif length == 1:
        out = np.repeat(flat, steps, axis=0)
    else:
        pos = np.linspace(0.0, length - 1, steps)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, length - 1)
        w = (pos - lo)[:, None]
        out = flat[lo] * (1.0 - w) + flat[hi] * w
    return out.astype(out_dtype, copy=False).reshape(steps, *x.shape[1:])


def fit_into(out: np.ndarray, mask: np.ndarray, x: np.ndarray, policy: str) -> None:
    """Write one clip `x` (L, *row) into its fixed-length slot `out` (steps, *row) and mask (steps,)."""
    steps = out.shape[0]
    if policy == "resample":
        out[...] = resample(x, steps)
    else:
        n = min(x.shape[0], steps)
        out[:n] = x[:n]
        mask[n:] = False


def to_fixed_length(seqs: list[np.ndarray | None], steps: int, policy: str,
                    dim: int | tuple[int, ...], dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Stack clips into (N, steps, *row) of `dtype` and an (N, steps) bool mask; `dim` is the
    row shape (D or (N, D)).

    A None entry (clip without this feature) becomes zeros with an all-True mask; the
    caller decides whether that is allowed (see fusion.data)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown length policy {policy!r}; use one of {POLICIES}")
    row = (dim,) if isinstance(dim, int) else tuple(dim)
    out = np.zeros((len(seqs), steps, *row), dtype)
    mask = np.ones((len(seqs), steps), bool)
    for i, x in enumerate(seqs):
        if x is not None:
            fit_into(out[i], mask[i], x, policy)
    return out, mask
