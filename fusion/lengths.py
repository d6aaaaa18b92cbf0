"""Length policies: bring variable-length (T_i, D) sequences to a fixed number of steps.

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
    """(L, D) -> (steps, D)."""
    length = x.shape[0]
    if length == steps:
        return x
    if length > steps:
        csum = np.concatenate([np.zeros((1, x.shape[1]), np.float64), np.cumsum(x, axis=0, dtype=np.float64)])
        i = np.arange(steps)
        start = (i * length) // steps
        stop = -((-(i + 1) * length) // steps)  # ceil
        return ((csum[stop] - csum[start]) / (stop - start)[:, None]).astype(np.float32)
    if length == 1:
        return np.repeat(x, steps, axis=0)
    pos = np.linspace(0.0, length - 1, steps)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, length - 1)
    w = (pos - lo)[:, None]
    return (x[lo] * (1.0 - w) + x[hi] * w).astype(np.float32)


def to_fixed_length(seqs: list[np.ndarray | None], steps: int, policy: str,
                    dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack clips into (N, steps, dim) float32 and an (N, steps) bool mask.

    A None entry (clip without this feature) becomes zeros with an all-True mask; the
    caller decides whether that is allowed (see fusion.data)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown length policy {policy!r}; use one of {POLICIES}")
    out = np.zeros((len(seqs), steps, dim), np.float32)
    mask = np.ones((len(seqs), steps), bool)
    for i, x in enumerate(seqs):
        if x is None:
            continue
        if policy == "resample":
            out[i] = resample(x, steps)
        else:
            n = min(x.shape[0], steps)
            out[i, :n] = x[:n]
            mask[i, n:] = False
    return out, mask
