"""Rotated square regions of interest: cutting them out as model input and mapping results back.

The conventions are MediaPipe's (its ImageToTensor and LandmarkProjection calculators), so the
landmark models see the input they were trained on: a region is a centre, a side and a clockwise
rotation (radians, image y pointing down); its corners map onto the tensor's edges (the corner
(cx - s/2, cy - s/2) of an unrotated region is tensor coordinate (0, 0), the opposite corner
(size, size)); pixels outside the picture are zero or replicate the edge. A model's point (u, v) in [0, 1] tensor units
maps back to centre + side · R(rotation) · (u - 0.5, v - 0.5); depth z scales with the side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roi:
    cx: float
    cy: float
    side: float
    rotation: float = 0.0  # radians, clockwise on screen

    def _basis(self) -> np.ndarray:
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return self.side * np.array([[c, -s], [s, c]])

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """(n, 2) or (n, 3) points in tensor units [0, 1] → image pixels (z × side when present)."""
        uv = np.asarray(uv, np.float64)
        xy = (uv[:, :2] - 0.5) @ self._basis().T + (self.cx, self.cy)
        return np.concatenate([xy, uv[:, 2:] * self.side], axis=1)

    def to_tensor_units(self, xy: np.ndarray) -> np.ndarray:
        """Inverse of to_image for (n, 2) image points."""
        return (np.asarray(xy, np.float64)[:, :2] - (self.cx, self.cy)) @ np.linalg.inv(self._basis()).T + 0.5

    def scaled(self, factor: float) -> "Roi":
        return Roi(self.cx, self.cy, self.side * factor, self.rotation)


def cut(image: np.ndarray, roi: Roi, size: int, value_range: tuple[float, float] = (0.0, 1.0),
        border: str = "zero") -> np.ndarray:
    """The region as a float32 (1, size, size, 3) tensor, values mapped from [0, 255] to value_range;
    outside the picture: zeros, or the nearest edge pixel (border="replicate", MediaPipe's default)."""
    import cv2

    a = roi._basis() / size
    b = np.array([roi.cx, roi.cy]) - roi._basis() @ np.array([0.5, 0.5])
    inverse = np.concatenate([a, b[:, None]], axis=1)  # tensor pixel -> image pixel
    patch = cv2.warpAffine(np.ascontiguousarray(image), inverse, (size, size),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT,
                           borderValue=0)
    lo, hi = value_range
    return (patch.astype(np.float32) * ((hi - lo) / 255.0) + lo)[None]


def normalise_angle(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_towards(start: np.ndarray, end: np.ndarray, target_degrees: float) -> float:
    """Rotation that turns the image vector start→end (pixels) to `target_degrees` (counter-
    clockwise from the +x axis, on screen): MediaPipe's rotation from two keypoints."""
    return normalise_angle(math.radians(target_degrees) - math.atan2(-(end[1] - start[1]), end[0] - start[0]))


def roi_from_alignment(centre: np.ndarray, scale_point: np.ndarray, target_degrees: float,
                       scale: float) -> Roi:
    """Square region centred on `centre`, side 2·|scale_point - centre|·scale, rotated so that
    centre→scale_point points at target_degrees (the pose models' body region)."""
    side = 2.0 * float(np.hypot(*(np.asarray(scale_point) - centre)[:2])) * scale
    return Roi(float(centre[0]), float(centre[1]), side, rotation_towards(centre, scale_point, target_degrees))


def roi_from_box(box: np.ndarray, rotation: float, scale: float) -> Roi:
    """Square region on an axis-aligned box (x0, y0, x1, y1): its centre, longer side × scale."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale, rotation)
