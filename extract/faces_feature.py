"""`faces`: cached face crops, so every visual backbone reuses one decode + detection pass.

Input: decoded frames (extract.media.Frames) of many clips. Output per clip: data = uint8
(N, S, S, 3) RGB crops, times = the sampled frame times, extras boxes (N, 4) float32 = the
square region of the source frame (display pixels, xyxy, may reach outside it) each crop
shows (for aligned crops: the square with the aligned region's centre and side), face_status
(N, 1) float32 (0 detected, 1 filled from neighbours, 2 centred fallback) and face_detector
(N, 1) float32 (which detector found the face in that frame: 0 none, 1 BlazeFace, 2 MTCNN);
qa = face_detection_rate, frames, frames_filled, frames_fallback, flagged (1.0 when no face
was found or the rate is below min_detection_rate), and with the MTCNN fallback
frames_blazeface, frames_mtcnn (how many frames each detector produced).

Rows are S×S×3 images (item_shape [S, S, 3], S = the `size` option), not vectors.
Config: extract.faces.FacePolicy's fields plus `detector`: "short" (BlazeFace short range, weights
entry `blazeface`) or "full" (full range, entry `blazeface_full_range`). fallback_detector="mtcnn"
adds the entries mtcnn_pnet, mtcnn_rnet, mtcnn_onet; align="dlib68" adds dlib_shape_predictor_68.
"""
from __future__ import annotations

from dataclasses import dataclass

from extract.faces import FacePolicy, required_weights
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape

_DETECTOR_WEIGHTS = {"short": "blazeface", "full": "blazeface_full_range"}
EXTRAS = {"boxes": 4, "face_status": 1, "face_detector": 1}


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

    def __init__(self, model_path: str, config: FacesConfig, weights: dict[str, str] | None = None) -> None:
        from extract.faces import FaceCropper

        self.cropper = FaceCropper(model_path, config, weights)

    def run(self, frames_list: list) -> list[FeatureOutput]:
        results = []
        for frames in frames_list:
            out = self.cropper.crop(frames)
            results.append(FeatureOutput(
                data=out.crops, times=out.times,
                extras={"boxes": out.boxes, "face_status": out.status.astype("float32").reshape(-1, 1),
                        "face_detector": out.detector.astype("float32").reshape(-1, 1)},
                qa=dict(out.qa)))
        return results

    def close(self) -> None:
        self.cropper.close()


def weights_entries(config: FacesConfig) -> tuple[str, ...]:
    """The BlazeFace model the config asks for ("blazeface" or "blazeface_full_range"), then the
    MTCNN nets and the dlib predictor when the fallback / the alignment is on."""
    return (_DETECTOR_WEIGHTS[config.detector], *required_weights(config))


def _build(opts: BuildOptions) -> FacesExtractor:
    config = SPEC.resolve_config(opts.config)
    entries = weights_entries(config)
    paths = dict(opts.weights)  # the pipeline resolves weights_entries(config)
    if opts.weights_path is not None:
        paths.setdefault(entries[0], opts.weights_path)
    missing = [e for e in entries if e not in paths]
    if missing:
        from extract.weights import resolve

        paths.update({e: str(resolve(e).path) for e in missing})
    return FacesExtractor(paths[entries[0]], config, {e: paths[e] for e in entries[1:]})


SPEC = FeatureSpec(
    name="faces",
    modality="video",
    # 2: gap-fill window in source frames, face_detector extra, fallback / alignment options;
    # 3: BlazeFace in our own code on LiteRT (float boxes; the whole frame letterboxed, not pre-shrunk to 384)
    version="3",
    input="frames",
    build=_build,
    shape=lambda config, weights: OutputShape((config.size, config.size, 3), None, EXTRAS, "uint8"),
    config=FacesConfig,
    examples=({"size": 112, "detector": "full"}, {"fallback_detector": "mtcnn"}, {"align": "dlib68", "size": 112}),
    description=("face crops (uint8 S×S×3 RGB) per sampled frame: BlazeFace detection (MediaPipe's model run "
                 "on LiteRT; optional MTCNN second pass where it finds nothing), subject tracking, gap filling (window in source "
                 "frames), temporal smoothing, square crop with margin or dlib 68-point similarity alignment; "
                 "extras boxes (crop region, xyxy source pixels), face_status (0 detected, 1 filled, "
                 "2 fallback), face_detector (0 none, 1 BlazeFace, 2 MTCNN)"),
    weights=weights_entries,
)
