"""Face alignment as the dual-branch ERI papers do it: 68 dlib landmarks → five points →
similarity transform onto a canonical five-point template → crop.

- `Dlib68`: dlib's shape predictor (weights entry `dlib_shape_predictor_68`, run with `dlib` /
  `dlib-bin`). It was trained on boxes of dlib's HOG detector; our face boxes come from BlazeFace,
  so each box is first mapped to the box the HOG detector would have drawn (centre 0.068 × side
  higher, side × 0.984: the mean over the six full-resolution reference photographs in
  BENCHMARKS.md).
- Five points from the 68 (iBUG 300-W markup, 0-based): the two eye centres (mean of 36-41 and of
  42-47), the nose tip (30) and the mouth corners (48, 54), ordered image-left to image-right.
- Template: the standard 112×112 five-point template of the ArcFace crops, scaled to the crop
  side; the fit is a least-squares similarity (rotation, uniform scale, shift; Umeyama 1991).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]])
DLIB_BOX_SHIFT_Y, DLIB_BOX_SCALE = -0.068, 0.984
EYE_A, EYE_B, NOSE_TIP, MOUTH_A, MOUTH_B = range(36, 42), range(42, 48), 30, 48, 54


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(5, 2): eye centres, nose tip, mouth corners (image-left first) from dlib's 68 points."""
    p = np.asarray(landmarks68, np.float64)
    return np.stack([p[list(EYE_A)].mean(0), p[list(EYE_B)].mean(0), p[NOSE_TIP], p[MOUTH_A], p[MOUTH_B]])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix of the least-squares similarity mapping src points onto dst (no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum() / max(a.var(0).sum(), 1e-12))
    return np.concatenate([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]], axis=1)


def template(size: int) -> np.ndarray:
    return TEMPLATE_112 * (size / 112.0)


def aligned_crop(image: np.ndarray, points5: np.ndarray, size: int, pad: str = "black") -> tuple[np.ndarray, np.ndarray]:
    """(uint8 size×size×3 crop, 2×3 matrix image → crop) aligning points5 to the template."""
    import cv2

    matrix = similarity(points5, template(size))
    border = cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT
    crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=border, borderValue=0)
    return crop, matrix


def crop_region(matrix: np.ndarray, size: int) -> np.ndarray:
    """The axis-aligned square (xyxy, source pixels) with the centre and side of the crop's region."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    centre = inverse @ np.array([size / 2, size / 2, 1.0])
    side = size / float(np.hypot(*matrix[:, 0]))
    return np.array([centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2])


def dlib_box(face_box: np.ndarray) -> np.ndarray:
    """A BlazeFace box (xyxy) mapped to the box dlib's HOG detector draws around the same face."""
    x0, y0, x1, y1 = (float(v) for v in face_box[:4])
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + DLIB_BOX_SHIFT_Y * side
    half = side * DLIB_BOX_SCALE / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


class Dlib68:
    """dlib's 68-point shape predictor, loaded once."""

    def __init__(self, model_path: str | Path) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ImportError("--align dlib68 needs dlib: pip install dlib-bin (or dlib)") from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"dlib shape predictor not found: {path}")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def __call__(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) float landmarks (pixels) inside the dlib-style `box` (xyxy)."""
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        shape = self._predictor(np.ascontiguousarray(image), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float64)

    def for_face(self, image: np.ndarray, face_box: np.ndarray) -> np.ndarray:
        return self(image, dlib_box(face_box))
