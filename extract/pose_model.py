"""BlazePose (MediaPipe 0.10.21's pose_detection + pose_landmark_full .tflite) in our own code.

Detection: the frame letterboxed into 224×224 (values in [-1, 1]); 2254 SSD anchors (strides 8,
16, 32, 32, 32; two anchors per cell and layer, fixed size, cell-centred); each raw box is x, y, w,
h and four keypoints (x, y) in 224-px units relative to its anchor; score = sigmoid(clip(raw,
±100)) ≥ 0.5; weighted NMS at IoU 0.3 (the best box and the score-weighted mean of the boxes it
suppresses). Keypoint 0 is the hip centre and keypoint 1 a point whose distance from it encodes the
body's size and direction.

Landmarks: the body region = square centred on the hip centre, side 2 × |kp1 - kp0| × 1.25,
rotated so that kp0→kp1 points up; cut at 256×256 (values in [0, 1], edge pixels replicated
outside the frame); 39 points × (x, y, z,
visibility logit, presence logit) in 256-px units, the pose flag (a probability), and 64×64×39
heatmaps that refine x, y where a point's heatmap is confident (7×7 sigmoid-weighted mean where
its maximum ≥ 0.5). Points 33 and 34 (hip centre and scale point again) give the region for the
next frame: that is how the model tracks a person; detection runs again only when the pose flag
drops below the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from extract.roi import Roi, cut, roi_from_alignment
from extract.tflite import TFLiteModel

N_LANDMARKS = 33  # body landmarks (MediaPipe's order: 0 nose … 11/12 shoulders … 23/24 hips … 32)
DETECT_SIZE, LANDMARK_SIZE, HEATMAP_KERNEL = 224, 256, 7
ROI_SCALE, ROI_TARGET_DEGREES = 1.25, 90.0


@lru_cache(maxsize=1)
def pose_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] (x, y), in the order of the detector's outputs."""
    strides = (8, 16, 32, 32, 32)
    out, layer = [], 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])  # layers sharing a grid
        cells = -(-DETECT_SIZE // strides[layer])
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, 2 * same, axis=0))
        layer += same
    return np.concatenate(out)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))  # = 1 / (1 + e^-x), no overflow


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extra: np.ndarray, threshold: float
                 ) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression: each kept box and its `extra` values (keypoints) are the
    score-weighted mean of the boxes overlapping the best remaining one by IoU > threshold."""
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order:
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > threshold
        group = [order[i] for i in np.flatnonzero(overlap)]
        w = scores[group][:, None]
        kept.append(((boxes[group] * w).sum(0) / w.sum(), float(scores[best]), (extra[group] * w).sum(0) / w.sum()))
        order = [order[i] for i in np.flatnonzero(~overlap)]
    return kept


@dataclass
class PoseDetection:
    box: np.ndarray        # (4,) x0, y0, x1, y1 pixels
    score: float
    keypoints: np.ndarray  # (4, 2) pixels


@dataclass
class PoseLandmarks:
    points: np.ndarray     # (33, 3) x, y pixels, z pixels (same scale as x; negative = nearer the camera)
    visibility: np.ndarray  # (33,) in [0, 1]
    presence: float        # pose flag in [0, 1]
    next_roi: Roi          # body region for the next frame


class PoseDetector:
    def __init__(self, model_path: str, min_score: float = 0.5, threads: int | None = None) -> None:
        self.model = TFLiteModel(model_path, threads)
        self.min_score = min_score

    def __call__(self, image: np.ndarray) -> list[PoseDetection]:
        h, w = image.shape[:2]
        frame = Roi(w / 2, h / 2, float(max(w, h)))  # letterbox: the frame inside a centred square
        out = self.model.run(cut(image, frame, DETECT_SIZE, (-1.0, 1.0)))
        raw = next(v for v in out.values() if v.shape[-1] == 12)[0]
        logits = next(v for v in out.values() if v.shape[-1] == 1)[0, :, 0]
        scores = _sigmoid(np.clip(logits, -100, 100))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        anchors = pose_anchors()[keep]
        raw = raw[keep] / DETECT_SIZE
        centre = raw[:, :2] + anchors
        boxes = np.concatenate([centre - raw[:, 2:4] / 2, centre + raw[:, 2:4] / 2], axis=1)
        keypoints = raw[:, 4:].reshape(-1, 4, 2) + anchors[:, None]
        results = []
        for box, score, kps in weighted_nms(boxes, scores[keep], keypoints.reshape(len(boxes), -1), 0.3):
            corners = frame.to_image(box.reshape(2, 2)).ravel()
            results.append(PoseDetection(corners, score, frame.to_image(kps.reshape(4, 2))))
        return results


def refine_from_heatmap(uv: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = 0.5) -> np.ndarray:
    """x, y in [0, 1] tensor units replaced by the sigmoid-weighted mean position in a kernel×kernel
    window of each point's heatmap (H, W, n), where the window's maximum is confident enough."""
    hm_h, hm_w, _ = heatmap.shape
    out = uv.copy()
    half = (kernel - 1) // 2
    for k in range(len(uv)):
        col, row = int(uv[k, 0] * hm_w), int(uv[k, 1] * hm_h)
        if not (0 <= col < hm_w and 0 <= row < hm_h):
            continue
        r0, r1, c0, c1 = max(0, row - half), min(hm_h, row + half + 1), max(0, col - half), min(hm_w, col + half + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, k].astype(np.float64))
        if conf.max() >= min_confidence and conf.sum() > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[k, 0] = (cols * conf).sum() / conf.sum() / hm_w
            out[k, 1] = (rows * conf).sum() / conf.sum() / hm_h
    return out


class PoseLandmarker:
    def __init__(self, model_path: str, threads: int | None = None) -> None:
        self.model = TFLiteModel(model_path, threads)

    def __call__(self, image: np.ndarray, roi: Roi) -> PoseLandmarks:
        out = self.model.run(cut(image, roi, LANDMARK_SIZE, (0.0, 1.0), border="replicate"))
        raw = next(v for v in out.values() if v.shape == (1, 195))[0].reshape(39, 5).astype(np.float64)
        flag = float(next(v for v in out.values() if v.shape == (1, 1))[0, 0])
        heatmap = next(v for v in out.values() if v.ndim == 4 and v.shape[-1] == 39)[0]
        uvz = raw[:, :3] / LANDMARK_SIZE
        uvz[:, :2] = refine_from_heatmap(uvz[:, :2], heatmap)
        points = roi.to_image(uvz)
        next_roi = roi_from_alignment(points[33, :2], points[34, :2], ROI_TARGET_DEGREES, ROI_SCALE)
        return PoseLandmarks(points[:N_LANDMARKS], _sigmoid(raw[:N_LANDMARKS, 3]), flag, next_roi)


class PoseTracker:
    """Per clip: detect the person once, then follow them with the landmark model's own region
    (re-detecting only when the pose flag falls below `min_presence`). Not thread-safe."""

    def __init__(self, detector: PoseDetector, landmarker: PoseLandmarker, min_presence: float = 0.5) -> None:
        self.detector, self.landmarker, self.min_presence = detector, landmarker, min_presence
        self.roi: Roi | None = None
        self.detections = 0  # detector calls (QA: how often tracking was lost)

    def reset(self) -> None:
        self.roi = None

    def __call__(self, image: np.ndarray) -> PoseLandmarks | None:
        if self.roi is not None:
            found = self.landmarker(image, self.roi)
            if found.presence >= self.min_presence:
                self.roi = found.next_roi
                return found
        self.roi = None
        self.detections += 1
        detections = self.detector(image)
        if not detections:
            return None
        best = max(detections, key=lambda d: d.score)
        found = self.landmarker(image, roi_from_alignment(best.keypoints[0], best.keypoints[1],
                                                          ROI_TARGET_DEGREES, ROI_SCALE))
        if found.presence < self.min_presence:
            return None
        self.roi = found.next_roi
        return found
