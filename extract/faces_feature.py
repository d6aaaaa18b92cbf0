"""`faces`: cached face crops, so every visual backbone reuses one decode + detection pass.

Input: decoded frames (extract.media.Frames) of many clips. Output per clip: data = uint8
(N, S, S, 3) RGB crops, times = the sampled frame times, extras boxes (N, 4) float32 = the
square region of the source frame (display pixels, xyxy, may reach outside it) each crop
shows, and face_status (N, 1) float32 (0 detected, 1 filled from neighbours, 2 centred
fallback); qa = face_detection_rate, frames, frames_filled, frames_fallback, flagged (1.0
when no face was found or the rate is below min_detection_rate).

Rows are S×S×3 images (item_shape [S, S, 3], S = the `size` option), not vectors.
Config: extract.faces.FacePolicy's fields plus `detector`: "short" (BlazeFace short range, weights
entry `blazeface`) or "full" (full range, entry `blazeface_full_range`).
"""
from __future__ import annotations

from dataclasses import dataclass

from extract.faces import FacePolicy
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

_DETECTOR_WEIGHTS = {"short": "blazeface", "full": "blazeface_full_range"}
EXTRAS = {"boxes": 4, "face_status": 1}


@dataclass(frozen=True)
class FacesConfig(FacePolicy):
    """The crop policy (extract.faces.FacePolicy) plus which BlazeFace model detects."""

    detector: str = "short"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.detector not in _DETECTOR_WEIGHTS:
            raise ValueError(f"faces: detector must be one of {sorted(_DETECTOR_WEIGHTS)}, got {self.detector!r}")


class FacesExtractor:
    """Holds one detector for its lifetime (create once per worker, run on many clips)."""

    def __init__(self, model_path: str, config: FacesConfig) -> None:
        from extract.faces import FaceCropper

        self.cropper = FaceCropper(model_path, config)

    def run(self, frames_list: list) -> list[FeatureOutput]:
        results = []
        for frames in frames_list:
            out = self.cropper.crop(frames)
            results.append(FeatureOutput(
                data=out.crops, times=out.times,
                extras={"boxes": out.boxes, "face_status": out.status.astype("float32").reshape(-1, 1)},
                qa=dict(out.qa)))
        return results

    def close(self) -> None:
        self.cropper.close()


def weights_entries(config: FacesConfig) -> tuple[str, ...]:
    """The detector model the config asks for ("blazeface" or "blazeface_full_range")."""
    return (_DETECTOR_WEIGHTS[config.detector],)


def _build(opts: BuildOptions) -> FacesExtractor:
    config = SPEC.resolve_config(opts.config)
    path = opts.weights_path  # the pipeline resolves weights_entries(config)
    if path is None:
        from extract.weights import resolve

        path = str(resolve(weights_entries(config)[0]).path)
    return FacesExtractor(path, config)


SPEC = FeatureSpec(
    name="faces",
    modality="video",
    version="1",
    input="frames",
    build=_build,
    shape=lambda config, weights: OutputShape((config.size, config.size, 3), None, EXTRAS, "uint8"),
    config=FacesConfig,
    examples=({"size": 112, "detector": "full"},),
    description=("face crops (uint8 S×S×3 RGB) per sampled frame: mediapipe BlazeFace detection, subject "
                 "tracking, gap filling, temporal smoothing, square crop with margin; extras boxes (crop "
                 "region, xyxy source pixels) and face_status (0 detected, 1 filled, 2 fallback)"),
    weights=weights_entries,
)
