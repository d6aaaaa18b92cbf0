"""MediaPipe Face Mesh (0.10.21's face_landmark.tflite, 468 points) in our own code.

The model sees a 192×192 cut of a square face region (values in [0, 1], edge pixels replicated
outside the picture) and returns 468 × (x, y, z) in 192-px units and a face-presence logit. The
region is MediaPipe's: from a detection, the box's centre, longer side × 1.5, rotated so that the
eyes are level; when tracking, from the previous landmarks: their bounding box's centre, longer
side × 1.5, rotated so that the outer eye corners (points 33 → 263) are level.

On cached face crops (extract.faces: a square of 1.5 × the detected face box, upright) the first
pass uses the whole crop as the region, the second the region from the first pass's landmarks
(as MediaPipe does from one video frame to the next), which also levels a tilted head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extract.roi import Roi, cut, roi_from_box, rotation_towards
from extract.tflite import TFLiteModel

N_POINTS = 468
INPUT_SIZE = 192
ROI_SCALE = 1.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the subject's right / left: image left / right when facing us


@dataclass
class FaceMesh:
    points: np.ndarray  # (468, 3) x, y, z pixels of the image the region was cut from (z scaled like x)
    presence: float     # face presence probability
    roi: Roi            # the region the model saw


def roi_from_landmarks(points: np.ndarray) -> Roi:
    """MediaPipe's tracking region: landmarks' bounding box, eyes levelled, × 1.5."""
    box = np.array([*points[:, :2].min(axis=0), *points[:, :2].max(axis=0)])
    rotation = rotation_towards(points[RIGHT_EYE_OUTER, :2], points[LEFT_EYE_OUTER, :2], 0.0)
    return roi_from_box(box, rotation, ROI_SCALE)


class FaceMeshModel:
    def __init__(self, model_path: str, threads: int | None = None) -> None:
        self.model = TFLiteModel(model_path, threads)

    def __call__(self, image: np.ndarray, roi: Roi) -> FaceMesh:
        out = self.model.run(cut(image, roi, INPUT_SIZE, (0.0, 1.0), border="replicate"))
        raw = next(v for v in out.values() if v.size == N_POINTS * 3).reshape(N_POINTS, 3).astype(np.float64)
        logit = float(next(v for v in out.values() if v.size == 1).ravel()[0])
        points = roi.to_image(raw / INPUT_SIZE)
        return FaceMesh(points, float(1.0 / (1.0 + np.exp(-logit))), roi)

    def on_crop(self, crop: np.ndarray, passes: int = 2) -> FaceMesh:
        """Landmarks in the crop's pixels: pass 1 on the whole crop, then from the landmarks."""
        side = float(crop.shape[0])
        mesh = self(crop, Roi(side / 2, side / 2, side))
        for _ in range(passes - 1):
            mesh = self(crop, roi_from_landmarks(mesh.points))
        return mesh
