"""Geometric face descriptors from the 468-point MediaPipe face mesh (pure numpy).

Points are (x, y, z) in pixels of one image (y down, z scaled like x, negative = nearer the
camera). Distances are in the image plane and divided by a length of the same face, so they do
not depend on the face's size in the picture:

- mouth_opening:        inner lips, upper (13) to lower (14), / inter-ocular distance (33-263)
- lip_corner_distance:  mouth corners 61-291 / inter-ocular distance
- eye_aperture_right:   upper (159) to lower (145) lid / eye width (33-133)   (the subject's right eye)
- eye_aperture_left:    upper (386) to lower (374) lid / eye width (362-263)
- brow_eye_right/left:  mid-brow (mean of 66, 105 / 296, 334) to the upper lid (159 / 386)
                        / inter-ocular distance
- yaw, pitch, roll:     head rotation in degrees from the mesh's own axes: x = outer eye corners
                        33 → 263, y = forehead (10) → chin (152) made orthogonal to x.
                        yaw > 0: the face turns towards the image's right (the subject's left);
                        pitch > 0: the chin goes back and the forehead forward (looking down);
                        roll > 0: the line of the eyes turns clockwise on screen (the subject's
                        left eye lower). A mirrored image flips yaw and roll, not pitch.
"""
from __future__ import annotations

import numpy as np

DESCRIPTORS = ("mouth_opening", "lip_corner_distance", "eye_aperture_right", "eye_aperture_left",
               "brow_eye_right", "brow_eye_left", "yaw", "pitch", "roll")

RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_UPPER_LID, RIGHT_LOWER_LID = 33, 133, 159, 145
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_UPPER_LID, LEFT_LOWER_LID = 263, 362, 386, 374
UPPER_INNER_LIP, LOWER_INNER_LIP, MOUTH_RIGHT, MOUTH_LEFT = 13, 14, 61, 291
RIGHT_BROW, LEFT_BROW = (66, 105), (296, 334)
FOREHEAD, CHIN = 10, 152


def _dist(points: np.ndarray, a: int, b: int) -> float:
    return float(np.hypot(*(points[a, :2] - points[b, :2])))


def head_angles(points: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; see the module docstring for the signs."""
    x = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    x = x / np.linalg.norm(x)
    y = points[CHIN] - points[FOREHEAD]
    y = y - (y @ x) * x
    y = y / np.linalg.norm(y)
    yaw = np.degrees(np.arctan2(x[2], x[0]))
    pitch = np.degrees(np.arctan2(y[2], y[1]))
    roll = np.degrees(np.arctan2(x[1], x[0]))
    return float(yaw), float(pitch), float(roll)


def descriptors(points: np.ndarray) -> np.ndarray:
    """float32 (9,) in DESCRIPTORS order for one face's (468, 3) mesh."""
    iod = max(_dist(points, RIGHT_EYE_OUTER, LEFT_EYE_OUTER), 1e-6)
    brow_r = points[list(RIGHT_BROW), :2].mean(axis=0)
    brow_l = points[list(LEFT_BROW), :2].mean(axis=0)
    values = [
        _dist(points, UPPER_INNER_LIP, LOWER_INNER_LIP) / iod,
        _dist(points, MOUTH_RIGHT, MOUTH_LEFT) / iod,
        _dist(points, RIGHT_UPPER_LID, RIGHT_LOWER_LID) / max(_dist(points, RIGHT_EYE_OUTER, RIGHT_EYE_INNER), 1e-6),
        _dist(points, LEFT_UPPER_LID, LEFT_LOWER_LID) / max(_dist(points, LEFT_EYE_INNER, LEFT_EYE_OUTER), 1e-6),
        float(np.hypot(*(brow_r - points[RIGHT_UPPER_LID, :2]))) / iod,
        float(np.hypot(*(brow_l - points[LEFT_UPPER_LID, :2]))) / iod,
        *head_angles(points),
    ]
    return np.asarray(values, np.float32)
