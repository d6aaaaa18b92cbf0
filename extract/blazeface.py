"""BlazeFace (MediaPipe 0.10.21's face_detection_short_range / full_range_sparse .tflite) in our own code.

The steps and constants are those of MediaPipe's FaceDetection graph (the 0.10.21 wheel's
FaceDetectionShortRange / FaceDetectionFullRange subgraphs and their calculator options):
- the whole frame letterboxed into the model's square input (aspect kept, centred, zero pixels
  around it), bilinear, values mapped from [0, 255] to [-1, 1];
- SSD anchor centres on a grid per stride, ceil(size / stride) cells, cell-centred (offset 0.5),
  fixed size 1: short range (128 px) strides 8, 16, 16, 16 with two anchors per cell and layer
  (aspect ratio 1 plus the interpolated scale) = 512 + 384 = 896; full range (192 px) one layer of
  stride 4 with one anchor per cell = 48 × 48 = 2304;
- each raw row is x, y, w, h and six keypoints (x, y) in input pixels relative to its anchor;
  score = sigmoid(clip(logit, ±100)), kept when ≥ the threshold;
- weighted non-max suppression at IoU 0.3 (extract.pose_model.weighted_nms), in tensor units,
  then boxes and keypoints mapped back to source pixels through the letterbox.
Keypoints (MediaPipe's order): right eye, left eye, nose tip, mouth centre, right ear tragion,
left ear tragion (the subject's right and left: the right eye is on the image's left).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import takewhile
from pathlib import Path

import numpy as np

from extract.pose_model import weighted_nms
from extract.roi import Roi
from extract.tflite import TFLiteModel

N_KEYPOINTS = 6
SCORE_CLIP = 100.0
NMS_IOU = 0.3


@dataclass(frozen=True)
class BlazeFaceModel:
    """MediaPipe's options for one BlazeFace variant."""

    name: str
    size: int                      # square input side, pixels
    strides: tuple[int, ...]       # one per SSD layer
    interpolated_anchor: bool      # a second anchor per cell and layer (MediaPipe's interpolated scale)
    default_threshold: float       # MediaPipe's min_score_thresh for this model

    @property
    def anchors_per_layer(self) -> int:
        return 1 + int(self.interpolated_anchor)


SHORT_RANGE = BlazeFaceModel("short_range", 128, (8, 16, 16, 16), True, 0.5)
FULL_RANGE = BlazeFaceModel("full_range", 192, (4,), False, 0.6)
_BY_SIZE = {m.size: m for m in (SHORT_RANGE, FULL_RANGE)}


@lru_cache(maxsize=None)
def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """(n, 2) anchor centres (x, y) in [0, 1], in the order of the model's outputs: layers that share
    a stride share one grid (row-major), with per_layer anchors per cell for each of them."""
    out, layer = [], 0
    while layer < len(strides):
        same = len(list(takewhile(lambda s: s == strides[layer], strides[layer:])))  # layers sharing a grid
        cells = -(-size // strides[layer])
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_layer * same, axis=0))
        layer += same
    anchors = np.concatenate(out)
    anchors.flags.writeable = False
    return anchors


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Roi]:
    """The frame centred in a square (aspect kept, zero pixels around it) as a float32 (1, size, size, 3)
    tensor in [-1, 1], and that square as a region (tensor units → pixels with Roi.to_image).

    Like MediaPipe's OpenCV image-to-tensor step this maps the square's corners onto the tensor's
    with a perspective warp: OpenCV's warpPerspective and warpAffine round the sampling positions
    differently, and with warpAffine (extract.roi.cut) BlazeFace's keypoints move by up to 0.25 px
    and scores by up to 0.0015 on frames whose width is not a multiple of 4 (measured on widths
    301-323; tests/extract/test_blazeface.py checks it)."""
    import cv2

    h, w = image.shape[:2]
    frame = Roi(w / 2, h / 2, float(max(w, h)))
    x0, y0 = frame.cx - frame.side / 2, frame.cy - frame.side / 2
    corners = np.float32([[x0, y0], [x0 + frame.side, y0], [x0 + frame.side, y0 + frame.side], [x0, y0 + frame.side]])
    target = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    patch = cv2.warpPerspective(np.ascontiguousarray(image), cv2.getPerspectiveTransform(corners, target),
                                (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return (patch.astype(np.float32) * (2.0 / 255.0) - 1.0)[None], frame


@dataclass
class FaceDetections:
    boxes: np.ndarray      # (k, 4) float64 x0, y0, x1, y1 source pixels
    scores: np.ndarray     # (k,) float64 in [0, 1], best first
    keypoints: np.ndarray  # (k, 6, 2) float64 x, y source pixels (order: module docstring)

    def __len__(self) -> int:
        return len(self.scores)

    def rows(self) -> np.ndarray:
        """(k, 5) x0, y0, x1, y1, score: the layout extract.face_track works on."""
        return np.concatenate([self.boxes, self.scores[:, None]], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x) without overflow warnings


class BlazeFaceDetector:
    """One LiteRT interpreter for a BlazeFace .tflite (variant chosen by its input size); stateless
    between calls. `min_score` defaults to MediaPipe's threshold for the variant."""

    def __init__(self, model_path: str | Path, min_score: float | None = None, threads: int | None = 1) -> None:
        self.model = TFLiteModel(model_path, threads)
        shape = self.model.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[1] not in _BY_SIZE or shape[3] != 3:
            raise ValueError(f"{self.model.path}: input {shape} is not a BlazeFace model "
                             f"(expected 1×S×S×3 with S in {sorted(_BY_SIZE)})")
        self.spec = _BY_SIZE[shape[1]]
        self.anchors = ssd_anchors(self.spec.size, self.spec.strides, self.spec.anchors_per_layer)
        self.min_score = self.spec.default_threshold if min_score is None else float(min_score)
        self._check_outputs()

    def _check_outputs(self) -> None:
        out = self.model.run(np.zeros(self.model.input_shape, np.float32))
        shapes = sorted(v.shape for v in out.values())
        n = len(self.anchors)
        if shapes != [(1, n, 1), (1, n, 4 + 2 * N_KEYPOINTS)]:
            raise ValueError(f"{self.model.path}: outputs {shapes}, expected (1, {n}, 16) boxes and (1, {n}, 1) "
                             f"scores for BlazeFace {self.spec.name}")

    def tensor(self, image: np.ndarray) -> tuple[np.ndarray, Roi]:
        """The model input for an RGB uint8 frame and the letterbox region it shows."""
        return letterbox(image, self.spec.size)

    def __call__(self, image: np.ndarray) -> FaceDetections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"BlazeFace needs an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        x, frame = self.tensor(image)
        out = self.model.run(x)
        raw = next(v for v in out.values() if v.shape[-1] == 4 + 2 * N_KEYPOINTS)[0]
        logits = next(v for v in out.values() if v.shape[-1] == 1)[0, :, 0]
        found = decode(raw, logits, self.anchors, self.spec.size, self.min_score)
        return FaceDetections(
            boxes=frame.to_image(found.boxes.reshape(-1, 2)).reshape(-1, 4),
            scores=found.scores,
            keypoints=frame.to_image(found.keypoints.reshape(-1, 2)).reshape(-1, N_KEYPOINTS, 2))


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int, min_score: float) -> FaceDetections:
    """The model's rows (n, 16) and score logits (n,) → merged detections in tensor units ([0, 1] of
    the letterboxed square), best first."""
    raw = np.asarray(raw, np.float64)
    scores = _sigmoid(np.clip(np.asarray(logits, np.float64), -SCORE_CLIP, SCORE_CLIP))
    keep = np.flatnonzero((scores >= min_score) & (scores > 0))  # a zero score has no weight in the merge
    keep = keep[(raw[keep, 2] > 0) & (raw[keep, 3] > 0)]  # boxes of no extent are invalid
    if not len(keep):
        return FaceDetections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, N_KEYPOINTS, 2)))
    rel = raw[keep] / size
    centre = rel[:, :2] + anchors[keep]
    boxes = np.concatenate([centre - rel[:, 2:4] / 2, centre + rel[:, 2:4] / 2], axis=1)
    keypoints = rel[:, 4:].reshape(-1, N_KEYPOINTS, 2) + anchors[keep][:, None]
    merged = weighted_nms(boxes, scores[keep], keypoints.reshape(len(keep), -1), NMS_IOU)
    return FaceDetections(boxes=np.array([b for b, _, _ in merged]), scores=np.array([s for _, s, _ in merged]),
                          keypoints=np.array([k for _, _, k in merged]).reshape(-1, N_KEYPOINTS, 2))
