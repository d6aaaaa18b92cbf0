"""The challenge metric: Pearson's r per emotion and their mean.

``pearson_columns`` reproduces ``scipy.stats.pearsonr(x, y).statistic`` column by
column (same centring, overflow-safe norms, clipping to [-1, 1], exact ±1 for n = 2,
NaN when either column is constant or holds a NaN), computed in float64 (equal to
scipy on float64 input; scipy on float32 input computes in float32).

Decision for scores (``score``): a constant prediction column has no defined r; scipy
gives NaN. For model selection and reports we count it as r = 0 (a constant predictor
carries no information about the ranking of clips, and a NaN would poison the mean and
early stopping). ``score`` keeps the raw NaNs in ``raw`` so nothing is hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fusion.labels import EMOTIONS


def pearson_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of x and y (N, K) -> (K,), as scipy does."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        return pearson_columns(x[:, None], y[:, None])
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError("x and y must have length at least 2")
    const = np.all(x == x[:1], axis=0) | np.all(y == y[:1], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = x - x.mean(axis=0, keepdims=True)
        ym = y - y.mean(axis=0, keepdims=True)
        xmax = np.abs(xm).max(axis=0, keepdims=True)
        ymax = np.abs(ym).max(axis=0, keepdims=True)
        normx = xmax * np.linalg.norm(xm / xmax, axis=0, keepdims=True)
        normy = ymax * np.linalg.norm(ym / ymax, axis=0, keepdims=True)
        r = np.sum((xm / normx) * (ym / normy), axis=0)
    r = np.clip(r, -1.0, 1.0)
    r[const] = np.nan
    if n == 2:
        r = np.round(r)
    return r


@dataclass
class Score:
    per_emotion: dict[str, float]
    mean: float
    raw: list[float] = field(default_factory=list)  # scipy's values, NaN kept

    def as_dict(self) -> dict:
        return {"mean_pcc": self.mean, "pcc": self.per_emotion,
                "undefined": [e for e, r in zip(EMOTIONS, self.raw) if np.isnan(r)]}


def score(pred: np.ndarray, true: np.ndarray) -> Score:
    """Per-emotion Pearson r and the mean (the challenge metric); NaN r counts as 0."""
    raw = pearson_columns(pred, true)
    safe = np.nan_to_num(raw, nan=0.0)
    return Score({e: float(v) for e, v in zip(EMOTIONS, safe)}, float(safe.mean()),
                 [float(v) for v in raw])
