"""Face crops per sampled frame: detect (BlazeFace on LiteRT, extract.blazeface; optionally MTCNN
where it finds nothing) → track → fill → smooth → crop (square with margin, or aligned on dlib's landmarks).

The model file comes from the weights resolver (`blazeface`, short range, for faces
within ~2 m that fill a fair part of the frame; `blazeface_full_range` for small/far
faces). With `fallback_detector="mtcnn"` the frames where BlazeFace found no face get a
second pass with MTCNN (extract.face_mtcnn; its boxes are mapped to BlazeFace's framing).
Per frame the subject's face is chosen (extract.face_track.pick_subject), frames without a
detection are filled from detected frames within `fill_window` frames (counted in source
frames of the clip by default, i.e. 12 frames = 0.48 s at 25 fps whatever the sampling; or in
sampled frames with fill_unit="sampled"), the track is smoothed, each box is made square,
grown by `margin` on every side, cut out (padding outside the picture) and resized to `size`.
With `align="dlib68"` the crop is instead the similarity transform that puts dlib's 68-point
landmarks (five points of them) on the ArcFace template (extract.face_align; `margin` is not
used). Frames with no usable detection nearby fall back to a centred full-frame square. A clip
without any face is flagged in its QA values; it is not an error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from extract.face_track import DETECTED, FALLBACK, FILLED, fill_gaps, pick_subject, smooth, source_frame_numbers
from extract.media import Frames

log = logging.getLogger(__name__)

MTCNN_MAX_SIDE = 640  # MTCNN looks for faces down to 20 px: shrink less
# MTCNN's box → BlazeFace's framing of the same face (centre lower by 0.087 × side, side × 0.948: the
# mean over the six full-resolution reference photographs, BENCHMARKS.md), so a track can mix both
MTCNN_SHIFT_Y, MTCNN_SCALE = 0.087, 0.948
NO_DETECTOR, BLAZEFACE, MTCNN_DETECTOR = 0, 1, 2  # per-frame `detector` values
ALIGN_CHOICES, FALLBACK_CHOICES, FILL_UNITS = ("none", "dlib68"), ("none", "mtcnn"), ("source", "sampled")


@dataclass(frozen=True)
class FacePolicy:
    size: int = 224                 # output crop side (112 or 224 for the backbones)
    margin: float = 0.25            # fraction of the face box side added on each side
    fill_window: int = 12           # frames (see fill_unit) a detection may be carried over a gap
    min_confidence: float = 0.5     # detector score threshold
    smoothing_s: float = 0.2        # centred moving-average window over the track, seconds (0 = off)
    min_detection_rate: float = 0.5  # clips below are flagged
    pad: str = "black"              # outside the picture: "black" or "edge" (replicate)
    fill_unit: str = "source"       # fill_window counts "source" frames of the clip or "sampled" frames
    fallback_detector: str = "none"  # "mtcnn": second pass on frames where BlazeFace found nothing
    align: str = "none"             # "dlib68": similarity-aligned crops on dlib's 68 landmarks

    def __post_init__(self) -> None:
        if self.size < 8 or self.margin < 0 or self.fill_window < 0 or self.pad not in ("black", "edge"):
            raise ValueError(f"invalid FacePolicy: {self}")
        for name, allowed in (("fill_unit", FILL_UNITS), ("fallback_detector", FALLBACK_CHOICES),
                              ("align", ALIGN_CHOICES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"faces: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")


@dataclass
class FaceOutput:
    crops: np.ndarray        # uint8 (N, S, S, 3) RGB
    times: np.ndarray        # float64 (N,)
    boxes: np.ndarray        # float32 (N, 4) xyxy source pixels: the square each crop shows (may exceed the frame)
    face_boxes: np.ndarray   # float32 (N, 4) smoothed face box before margin; NaN on fallback frames
    status: np.ndarray       # int8 (N,) DETECTED / FILLED / FALLBACK (extract.face_track)
    scores: np.ndarray       # float32 (N,) detector confidence, 0 where not detected
    detector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # int8 (N,) which found it
    qa: dict[str, float] = field(default_factory=dict)


class BlazeFace:
    """BlazeFace (extract.blazeface: MediaPipe's face detection steps on the LiteRT interpreter,
    stateless, so it can be reused across clips); returns detections as (k, 5) arrays x0, y0, x1,
    y1, score in source pixels. The whole frame goes to the detector's letterbox, as in MediaPipe:
    shrinking it first (area-averaged) cost more than the detection at 640×480 and above and
    changed no detection on generated clips up to 1920×1080 (BENCHMARKS.md)."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5) -> None:
        from extract.blazeface import BlazeFaceDetector

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"face detector model not found: {path}")
        self._detector = BlazeFaceDetector(path, float(min_confidence))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self._detector(image).rows()

    def close(self) -> None:
        """Nothing to release (kept so FaceCropper's context-manager contract stays)."""


def crop_square(image: np.ndarray, box: np.ndarray, size: int, pad: str = "black") -> np.ndarray:
    """Cut the square `box` (xyxy, may exceed the picture) out of `image` and resize to size×size."""
    import cv2

    h, w = image.shape[:2]
    x0, y0 = int(round(box[0])), int(round(box[1]))
    side = max(1, int(round(box[2] - box[0])))
    x1, y1 = x0 + side, y0 + side
    inner = image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    if inner.size == 0:
        patch = np.zeros((side, side, 3), np.uint8)
    else:
        border = cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT
        patch = cv2.copyMakeBorder(inner, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w), border, value=0)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def square_boxes(face_boxes: np.ndarray, status: np.ndarray, width: int, height: int, margin: float) -> np.ndarray:
    """Square crop regions: face box centre, side = longer side × (1 + 2·margin);
    FALLBACK rows: the centred full-frame square (side = shorter frame side)."""
    cx = (face_boxes[:, 0] + face_boxes[:, 2]) / 2
    cy = (face_boxes[:, 1] + face_boxes[:, 3]) / 2
    side = np.maximum(face_boxes[:, 2] - face_boxes[:, 0], face_boxes[:, 3] - face_boxes[:, 1]) * (1 + 2 * margin)
    fb = status == FALLBACK
    cx[fb], cy[fb], side[fb] = width / 2, height / 2, min(width, height)
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1).astype(np.float32)


def mtcnn_to_blazeface_box(boxes: np.ndarray) -> np.ndarray:
    """MTCNN rows (k, 5) → the square BlazeFace would draw around the same faces (score kept)."""
    out = np.array(boxes, np.float64, copy=True)
    side = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + MTCNN_SHIFT_Y * side
    half = side * MTCNN_SCALE / 2
    out[:, :4] = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)
    return out


class MTCNNFallback:
    """MTCNN on a frame shrunk to at most MTCNN_MAX_SIDE; rows in BlazeFace's layout and framing."""

    def __init__(self, weights: dict[str, str], min_confidence: float = 0.5) -> None:
        from extract.face_mtcnn import MTCNN

        self.mtcnn = MTCNN.from_paths(weights)
        self.min_confidence = min_confidence

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, MTCNN_MAX_SIDE / max(h, w))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        boxes, _ = self.mtcnn.detect(image)
        boxes = boxes[boxes[:, 4] >= self.min_confidence]
        boxes[:, :4] /= scale
        return mtcnn_to_blazeface_box(boxes)


def required_weights(policy: FacePolicy) -> tuple[str, ...]:
    """Weights entries beyond the BlazeFace model that a policy needs."""
    entries: tuple[str, ...] = ()
    if policy.fallback_detector == "mtcnn":
        entries += ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
    if policy.align == "dlib68":
        entries += ("dlib_shape_predictor_68",)
    return entries


class FaceCropper:
    """Reusable per process: the detector(s) are created once and applied to many clips.

    `weights` maps the extra entries the policy needs to their paths: mtcnn_pnet/rnet/onet for
    fallback_detector="mtcnn", dlib_shape_predictor_68 for align="dlib68"."""

    def __init__(self, model_path: str | Path, policy: FacePolicy | None = None,
                 weights: dict[str, str] | None = None) -> None:
        self.policy = policy or FacePolicy()
        weights = dict(weights or {})
        missing = [e for e in required_weights(self.policy) if e not in weights]
        if missing:
            raise ValueError(f"faces: {self._needs()} needs the weights entr{'y' if len(missing) == 1 else 'ies'} "
                             f"{', '.join(missing)} (fetch with: eri-weights fetch {' '.join(missing)})")
        self.detector = BlazeFace(model_path, self.policy.min_confidence)
        self.fallback = MTCNNFallback(weights, self.policy.min_confidence) \
            if self.policy.fallback_detector == "mtcnn" else None
        self.landmarker = None
        if self.policy.align == "dlib68":
            from extract.face_align import Dlib68

            self.landmarker = Dlib68(weights["dlib_shape_predictor_68"])

    def _needs(self) -> str:
        parts = [f"fallback_detector={self.policy.fallback_detector}"] if self.policy.fallback_detector != "none" else []
        return " and ".join(parts + ([f"align={self.policy.align}"] if self.policy.align != "none" else []))

    def detect(self, images: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Per frame: detections (k, 5) and which detector produced them (BLAZEFACE / MTCNN_DETECTOR /
        NO_DETECTOR)."""
        detections, source = [], np.zeros(len(images), np.int8)
        for i, img in enumerate(images):
            dets = self.detector(img)
            if len(dets):
                source[i] = BLAZEFACE
            elif self.fallback is not None:
                dets = self.fallback(img)
                source[i] = MTCNN_DETECTOR if len(dets) else NO_DETECTOR
            detections.append(dets)
        return detections, source

    def _positions(self, frames: Frames) -> np.ndarray | None:
        if self.policy.fill_unit == "sampled" or not frames.fps:
            return None
        return source_frame_numbers(frames.times, frames.fps)

    def crop(self, frames: Frames) -> FaceOutput:
        p = self.policy
        n = len(frames.images)
        detections, source = self.detect(frames.images)
        boxes, scores = pick_subject(detections)
        found = ~np.isnan(boxes).any(axis=1)
        source = np.where(found, source, NO_DETECTOR).astype(np.int8)  # frames with only other faces
        boxes, status = fill_gaps(boxes, p.fill_window, self._positions(frames))
        boxes = smooth(boxes, status, frames.times, p.smoothing_s)
        h, w = frames.images.shape[1:3] if n else (0, 0)
        squares = square_boxes(boxes, status, w, h, p.margin)
        crops = np.zeros((n, p.size, p.size, 3), np.uint8)
        for i, image in enumerate(frames.images):
            if self.landmarker is not None and status[i] != FALLBACK:
                crops[i], squares[i] = self._aligned(image, boxes[i])
            else:
                crops[i] = crop_square(image, squares[i], p.size, p.pad)
        qa = self._qa(status, source, frames.path)
        return FaceOutput(crops=crops, times=np.asarray(frames.times, np.float64), boxes=squares,
                          face_boxes=boxes.astype(np.float32), status=status, scores=scores.astype(np.float32),
                          detector=source, qa=qa)

    def _aligned(self, image: np.ndarray, face_box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from extract.face_align import aligned_crop, crop_region, five_points

        crop, matrix = aligned_crop(image, five_points(self.landmarker.for_face(image, face_box)),
                                    self.policy.size, self.policy.pad)
        return crop, crop_region(matrix, self.policy.size).astype(np.float32)

    def _qa(self, status: np.ndarray, source: np.ndarray, path: str) -> dict[str, float]:
        n = len(status)
        detected = int((status == DETECTED).sum())
        rate = detected / n if n else 0.0
        qa = {"face_detection_rate": rate, "frames": float(n), "frames_filled": float((status == FILLED).sum()),
              "frames_fallback": float((status == FALLBACK).sum()),
              "flagged": float(detected == 0 or rate < self.policy.min_detection_rate)}
        if self.fallback is not None:
            qa["frames_blazeface"] = float((source == BLAZEFACE).sum())
            qa["frames_mtcnn"] = float((source == MTCNN_DETECTOR).sum())
        if qa["flagged"]:
            log.info("%s: face detected in %d of %d frames: flagged", path or "clip", detected, n)
        return qa

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> "FaceCropper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
