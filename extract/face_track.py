"""Turning per-frame face detections into one smooth subject track (pure numpy).

Boxes are float xyxy in source pixels. A frame's detections are an array (k, 5):
x0, y0, x1, y1, score. Frame statuses: DETECTED, FILLED (copied/interpolated from nearby
detected frames), FALLBACK (no detection near enough: the caller crops the frame centre).
"""
from __future__ import annotations

import numpy as np

DETECTED, FILLED, FALLBACK = 0, 1, 2


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` (4,) with each row of `b` (k, 4)."""
    b = np.atleast_2d(b)
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _prominence(dets: np.ndarray) -> np.ndarray:
    """Largest × most confident: score × sqrt(area) (sqrt: a face twice as wide counts twice)."""
    area = np.clip(dets[:, 2] - dets[:, 0], 0, None) * np.clip(dets[:, 3] - dets[:, 1], 0, None)
    return dets[:, 4] * np.sqrt(area)


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    """Same face in two frames? Centres within one face side and sides within a factor 2."""
    sa, sb = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if min(sa, sb) <= 0 or max(sa, sb) > 2 * min(sa, sb):
        return False
    d = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return bool(d <= (sa + sb) / 2)


def _link(detections: list[np.ndarray]) -> list[dict[int, np.ndarray]]:
    """Greedy frame-to-frame linking of detections into tracks {frame index: row}."""
    tracks: list[dict[int, np.ndarray]] = []
    last: list[np.ndarray] = []
    for i, dets in enumerate(detections):
        pairs = sorted(((iou(last[t][:4], d[None, :4])[0], t, j) for t in range(len(tracks))
                        for j, d in enumerate(dets) if _near(last[t][:4], d[:4])), reverse=True)
        taken_t, taken_j = set(), set()
        for _, t, j in pairs:
            if t not in taken_t and j not in taken_j:
                tracks[t][i], last[t] = dets[j], dets[j]
                taken_t.add(t)
                taken_j.add(j)
        for j, d in enumerate(dets):
            if j not in taken_j:
                tracks.append({i: d})
                last.append(d)
    return tracks


def pick_subject(detections: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One box per frame: (boxes (N, 4) float64, NaN where none; scores (N,)).

    Detections are linked into tracks (same face in consecutive detected frames: near
    centres, similar size); the subject is the track with the largest summed prominence
    (largest × most confident × present longest). Frames where only other faces were
    found count as "no detection" and are filled from the subject's neighbouring frames.
    """
    n = len(detections)
    boxes = np.full((n, 4), np.nan)
    scores = np.zeros(n)
    tracks = _link([np.asarray(d, np.float64).reshape(-1, 5) for d in detections])
    if not tracks:
        return boxes, scores
    subject = max(tracks, key=lambda tr: float(_prominence(np.array(list(tr.values()))).sum()))
    for i, row in subject.items():
        boxes[i], scores[i] = row[:4], row[4]
    return boxes, scores


def fill_gaps(boxes: np.ndarray, window: float, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN rows from detected frames at most `window` away.

    Distances are in `positions` (e.g. source frame numbers, so that the window means the same
    time whatever the sampling), by default the row index. Both sides within the window → linear
    interpolation by position; one side → copy of the nearest. Returns (boxes with gaps filled,
    NaN left where FALLBACK; status (N,) int8).
    """
    boxes = np.array(boxes, dtype=np.float64, copy=True)
    pos = np.arange(len(boxes), dtype=np.float64) if positions is None else np.asarray(positions, np.float64)
    have = ~np.isnan(boxes).any(axis=1)
    status = np.where(have, DETECTED, FALLBACK).astype(np.int8)
    idx = np.flatnonzero(have)
    if not len(idx):
        return boxes, status
    eps = 1e-6
    for i in np.flatnonzero(~have):
        k = np.searchsorted(idx, i)
        left = idx[k - 1] if k > 0 and pos[i] - pos[idx[k - 1]] <= window + eps else None
        right = idx[k] if k < len(idx) and pos[idx[k]] - pos[i] <= window + eps else None
        if left is not None and right is not None:
            w = (pos[i] - pos[left]) / max(pos[right] - pos[left], eps)
            boxes[i] = (1 - w) * boxes[left] + w * boxes[right]
        elif left is not None or right is not None:
            boxes[i] = boxes[left if left is not None else right]
        else:
            continue
        status[i] = FILLED
    return boxes, status


def source_frame_numbers(times: np.ndarray, fps: float) -> np.ndarray:
    """Frame numbers in the source video of frames shown at `times` (seconds) at `fps`."""
    return np.round(np.asarray(times, np.float64) * fps)


def smooth(boxes: np.ndarray, status: np.ndarray, times: np.ndarray, window_s: float) -> np.ndarray:
    """Centred moving average of the boxes over `window_s` seconds (0 = off).

    Averaged within runs of consecutive non-FALLBACK frames only; near a run's ends the
    window shrinks symmetrically, so a moving face is not dragged towards the run's edge.
    A window in seconds (not frames) keeps sparse sampling from averaging across real motion.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    half = window_s / 2
    if half <= 0:
        return out
    times = np.asarray(times, np.float64)
    ok = status != FALLBACK
    n, i = len(out), 0
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < n and ok[j]:
            j += 1
        t = times[i:j]
        for r in range(j - i):
            h = min(half, t[r] - t[0], t[-1] - t[r]) + 1e-9
            lo, hi = np.searchsorted(t, t[r] - h, "left"), np.searchsorted(t, t[r] + h, "right")
            out[i + r] = boxes[i + lo:i + hi].mean(axis=0)
        i = j
    return out
