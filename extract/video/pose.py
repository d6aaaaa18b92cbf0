"""`pose`: 2-D/3-D body skeleton per sampled frame (MediaPipe BlazePose, extract.pose_model).

Input: decoded frames (extract.media.Frames) sampled by this feature's own policy: `fps` (default
2.0, one frame every 0.5 s as the attention-fusion ERI paper's pose stream), or `frames` (that
many, spread over the clip) or `every` (every n-th frame) when set > 0. The person is detected in
the first frame and then tracked with the landmark model's own region (re-detected when lost).

Per frame, data (133,) float32 = 33 landmarks × (x, y, z, visibility) in MediaPipe's landmark
order, then presence. x, y, z are normalised to the torso: origin = the centre between the hips
(23, 24), unit = the distance from it to the centre between the shoulders (11, 12), image axes
(x to the right, y down, z towards the camera negative). visibility is the model's probability
that the point is visible. Frames without a person: all zeros, presence 0.
QA: pose_detection_rate (frames with a person / frames), pose_detector_runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

N_LANDMARKS = 33
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
DIM = N_LANDMARKS * 4 + 1
WEIGHTS = ("pose_detector", "pose_landmark_full")


@dataclass(frozen=True)
class PoseConfig:
    fps: float = 2.0         # frames per second to analyse (the default policy)
    frames: int = 0          # > 0: this many frames spread over the clip instead
    every: int = 0           # > 0: every n-th decoded frame instead
    min_detection: float = 0.5  # person detector score threshold
    min_presence: float = 0.5   # pose flag below this: tracking lost, re-detect; frame has no person

    def __post_init__(self) -> None:
        if self.frames < 0 or self.every < 0 or (self.frames and self.every):
            raise ValueError(f"pose: set at most one of frames, every (> 0), got frames={self.frames}, every={self.every}")
        if not (self.frames or self.every) and not self.fps > 0:
            raise ValueError(f"pose: fps must be positive, got {self.fps}")
        for name in ("min_detection", "min_presence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"pose: {name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def sampling(self):
        """The extract.media.Sampling this config selects."""
        from extract.media import Sampling

        if self.frames:
            return Sampling(frames=self.frames)
        if self.every:
            return Sampling(every=self.every)
        return Sampling(fps=self.fps)


def torso_normalised(points: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """(33, 3) pixel landmarks + (33,) visibility → (132,) torso-normalised x, y, z, visibility."""
    hips = points[[LEFT_HIP, RIGHT_HIP]].mean(axis=0)
    shoulders = points[[LEFT_SHOULDER, RIGHT_SHOULDER], :2].mean(axis=0)
    unit = max(float(np.hypot(*(shoulders - hips[:2]))), 1e-6)
    xyz = (points - [hips[0], hips[1], 0.0]) / unit
    return np.concatenate([xyz, visibility[:, None]], axis=1).astype(np.float32).ravel()


class PoseExtractor:
    """Holds both models for its lifetime; runs clip by clip (tracking state is per clip)."""

    def __init__(self, detector_path: str, landmark_path: str, config: PoseConfig) -> None:
        from extract.pose_model import PoseDetector, PoseLandmarker, PoseTracker

        self.config = config
        self.tracker = PoseTracker(PoseDetector(detector_path, config.min_detection),
                                   PoseLandmarker(landmark_path), config.min_presence)

    def run_clip(self, frames) -> FeatureOutput:
        self.tracker.reset()
        runs_before = self.tracker.detections
        data = np.zeros((len(frames.images), DIM), np.float32)
        for i, image in enumerate(frames.images):
            found = self.tracker(image)
            if found is not None:
                data[i, :-1] = torso_normalised(found.points, found.visibility)
                data[i, -1] = 1.0
        n = len(data)
        qa = {"pose_detection_rate": float(data[:, -1].mean()) if n else 0.0,
              "pose_detector_runs": float(self.tracker.detections - runs_before)}
        return FeatureOutput(data=data, times=np.asarray(frames.times, np.float64), qa=qa)

    def run(self, frames_list: list) -> list[FeatureOutput]:
        return [self.run_clip(frames) for frames in frames_list]


def _build(opts: BuildOptions) -> PoseExtractor:
    config = SPEC.resolve_config(opts.config)
    paths = dict(opts.weights)
    missing = [e for e in WEIGHTS if e not in paths]
    if missing:
        from extract.weights import resolve

        paths.update({e: str(resolve(e).path) for e in missing})
    return PoseExtractor(paths["pose_detector"], paths["pose_landmark_full"], config)


SPEC = FeatureSpec(
    name="pose",
    modality="video",
    version="1",
    input="frames",
    build=_build,
    shape=lambda config, weights: OutputShape((DIM,)),
    config=PoseConfig,
    weights=lambda config: WEIGHTS,
    examples=({"fps": 4.0}, {"frames": 8}),
    description=("body pose per sampled frame (own sampling, default 2 fps): MediaPipe BlazePose detector + "
                 "full landmark model (0.10.21 .tflite via LiteRT), tracked through the clip; 33 landmarks × "
                 "(x, y, z, visibility) normalised to the torso (origin hip centre, unit shoulder-hip "
                 "distance) + presence = 133-d"),
)
