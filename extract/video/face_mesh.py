"""`face_mesh`: face geometry per frame from MediaPipe Face Mesh on the cached `faces` crops.

Per frame, data float32 = 9 descriptors (extract.face_geometry.DESCRIPTORS, in that order:
mouth_opening, lip_corner_distance, eye_aperture_right, eye_aperture_left, brow_eye_right,
brow_eye_left, yaw, pitch, roll), then presence (the model's face probability), then — with
`landmarks=true`, the default — the 468 landmarks × (x, y, z) normalised to the face crop: (0, 0)
its top-left corner, (1, 1) its bottom-right one, z in the same unit (the crop is the face box
grown by the faces feature's margin, or the aligned crop with --align dlib68). Frames where the
model sees no face (presence < min_presence, e.g. the centred fallback crops) are zeros except
presence. dim = 10 + 1404 with landmarks, 10 without.

The model runs twice per crop (passes=2): on the whole crop, then on the region its first
landmarks give (eyes levelled), as MediaPipe tracks from one video frame to the next.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

N_DESCRIPTORS, N_POINTS = 9, 468


@dataclass(frozen=True)
class FaceMeshConfig:
    landmarks: bool = True     # append the 468×3 crop-normalised landmarks to the descriptors
    passes: int = 2            # 1: whole crop only; 2: then the region from the first landmarks
    min_presence: float = 0.5  # face probability below this: the row is zeros (but presence)

    def __post_init__(self) -> None:
        if not isinstance(self.landmarks, bool):
            raise ValueError(f"face_mesh: landmarks must be true or false, got {self.landmarks!r}")
        if self.passes not in (1, 2, 3):
            raise ValueError(f"face_mesh: passes must be 1, 2 or 3, got {self.passes}")
        if not 0.0 <= self.min_presence <= 1.0:
            raise ValueError(f"face_mesh: min_presence must be in [0, 1], got {self.min_presence}")

    @property
    def dim(self) -> int:
        return N_DESCRIPTORS + 1 + (N_POINTS * 3 if self.landmarks else 0)


class FaceMeshExtractor:
    def __init__(self, model_path: str, config: FaceMeshConfig) -> None:
        from extract.face_mesh_model import FaceMeshModel

        self.model = FaceMeshModel(model_path)
        self.config = config

    def row(self, crop: np.ndarray) -> np.ndarray:
        from extract.face_geometry import descriptors

        out = np.zeros(self.config.dim, np.float32)
        mesh = self.model.on_crop(crop, self.config.passes)
        out[N_DESCRIPTORS] = mesh.presence
        if mesh.presence >= self.config.min_presence:
            out[:N_DESCRIPTORS] = descriptors(mesh.points)
            if self.config.landmarks:
                out[N_DESCRIPTORS + 1:] = (mesh.points / crop.shape[0]).ravel()
        return out

    def run(self, crops: list[np.ndarray], times: list[np.ndarray]) -> list[FeatureOutput]:
        outputs = []
        for clip, t in zip(crops, times, strict=True):
            data = np.stack([self.row(c) for c in clip]) if len(clip) else np.zeros((0, self.config.dim), np.float32)
            outputs.append(FeatureOutput(data=data, times=np.asarray(t, np.float64)))
        return outputs


def _build(opts: BuildOptions) -> FaceMeshExtractor:
    path = opts.weights.get("face_mesh") or opts.weights_path
    if path is None:
        from extract.weights import resolve

        path = str(resolve("face_mesh").path)
    return FaceMeshExtractor(path, SPEC.resolve_config(opts.config))


SPEC = FeatureSpec(
    name="face_mesh",
    modality="video",
    version="1",
    input="faces",
    build=_build,
    shape=lambda config, weights: OutputShape((config.dim,)),
    config=FaceMeshConfig,
    weights="face_mesh",
    examples=({"landmarks": False}, {"passes": 1}),
    description=("MediaPipe Face Mesh (468 points, 0.10.21 .tflite via LiteRT) on the cached face crops: "
                 "9 geometric descriptors (mouth opening, lip corner distance, eye apertures, brow-eye "
                 "distances, head yaw/pitch/roll), presence, and the landmarks normalised to the crop"),
)
