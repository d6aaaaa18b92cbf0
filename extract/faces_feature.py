"""`faces`: cached face crops, so every visual backbone reuses one decode + detection pass.

Input: decoded frames (extract.media.Frames) of many clips. Output per clip: data = uint8
(N, S, S, 3) RGB crops, times = the sampled frame times, extras boxes (N, 4) float32 = the
square region of the source frame (display pixels, xyxy, may reach outside it) each crop
shows, and face_status (N, 1) float32 (0 detected, 1 filled from neighbours, 2 centred
fallback); qa = face_detection_rate, frames, frames_filled, frames_fallback, flagged (1.0
when no face was found or the rate is below min_detection_rate).

`dim` is the default crop side S (data rows are S×S×3 images, not vectors).
Config `detector`: "short" (BlazeFace short range, weights entry `blazeface`, the spec's
weights) or "full" (full range, entry `blazeface_full_range`, resolved here).
"""
from __future__ import annotations

from extract.specs import BuildOptions, FeatureOutput, FeatureSpec

DEFAULT_CONFIG = {
    "size": 224,
    "margin": 0.25,
    "fill_window": 12,
    "detector": "short",
    "min_confidence": 0.5,
    "smoothing_s": 0.2,
    "min_detection_rate": 0.5,
    "pad": "black",
}
_DETECTOR_WEIGHTS = {"short": "blazeface", "full": "blazeface_full_range"}


class FacesExtractor:
    """Holds one detector for its lifetime (create once per worker, run on many clips)."""

    def __init__(self, model_path: str, config: dict) -> None:
        from extract.faces import FaceCropper, FacePolicy

        policy = FacePolicy(size=int(config["size"]), margin=float(config["margin"]),
                            fill_window=int(config["fill_window"]), min_confidence=float(config["min_confidence"]),
                            smoothing_s=float(config["smoothing_s"]),
                            min_detection_rate=float(config["min_detection_rate"]), pad=str(config["pad"]))
        self.cropper = FaceCropper(model_path, policy)

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


def weights_entry(config: dict | None = None) -> str:
    """The weights entry a config needs ("blazeface" or "blazeface_full_range"): a pipeline that
    fingerprints/resolves weights per config should use this rather than SPEC.weights."""
    detector = {**DEFAULT_CONFIG, **(config or {})}["detector"]
    if detector not in _DETECTOR_WEIGHTS:
        raise ValueError(f"faces: detector must be one of {sorted(_DETECTOR_WEIGHTS)}, got {detector!r}")
    return _DETECTOR_WEIGHTS[detector]


def _build(opts: BuildOptions) -> FacesExtractor:
    config = {**DEFAULT_CONFIG, **opts.config}
    path = opts.weights_path  # the pipeline resolves weights_entry(config)
    if path is None:
        from extract.weights import resolve

        path = str(resolve(weights_entry(config)).path)
    return FacesExtractor(path, config)


SPEC = FeatureSpec(
    name="faces",
    modality="video",
    version="1",
    dim=DEFAULT_CONFIG["size"],
    frame_step=None,
    input="frames",
    build=_build,
    description=("face crops (uint8 S×S×3 RGB) per sampled frame: mediapipe BlazeFace detection, subject "
                 "tracking, gap filling, temporal smoothing, square crop with margin; extras boxes (crop "
                 "region, xyxy source pixels) and face_status (0 detected, 1 filled, 2 fallback)"),
    weights="blazeface",
    default_config=dict(DEFAULT_CONFIG),
    dtype="uint8",
    extras={"boxes": 4, "face_status": 1},
    weights_selector=weights_entry,
)
