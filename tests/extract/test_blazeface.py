"""extract.blazeface against mediapipe's own Tasks FaceDetector (IMAGE mode, same .tflite) on real
faces, both models; that the comparison catches a wrong anchor grid or letterbox; the decoding
(score clipping, threshold, keypoints) on made-up model outputs; and that the faces path never
imports mediapipe."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from extract import blazeface
from extract.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFaceDetector, decode, ssd_anchors

MIN_SCORE = 0.5  # the faces feature's default (FacePolicy.min_confidence)
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- images: real faces, several framings

def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat((gray * 255).round().astype(np.uint8)[..., None], 3, axis=2))


def _small_in_frame(face: np.ndarray, side: int, at: tuple[int, int]) -> np.ndarray:
    import cv2

    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[at[1]:at[1] + side, at[0]:at[0] + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, np.ndarray]:
    import cv2
    import skimage.data
    from matplotlib import cbook
    from PIL import Image

    from extract.media import Sampling, decode_frames
    from pipelines.sample_data import make_clip

    astronaut = np.ascontiguousarray(skimage.data.astronaut())
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    out = {"astronaut": astronaut, "grace_hopper": hopper,
           "astronaut_mirrored": np.ascontiguousarray(astronaut[:, ::-1]),
           "grace_hopper_mirrored": np.ascontiguousarray(hopper[:, ::-1]),
           "astronaut_small_in_frame": _small_in_frame(astronaut[20:300, 120:400], 150, (400, 260)),
           "grace_hopper_odd_width": np.ascontiguousarray(cv2.resize(hopper, (301, 353), interpolation=cv2.INTER_AREA)),
           "no_face": np.full((240, 320, 3), 128, np.uint8)}
    for i, face in enumerate(skimage.data.lfw_subset()[:100:10]):
        out[f"lfw_{i}"] = _rgb(face)
    folder = tmp_path_factory.mktemp("blazeface_clips")
    for w, h in ((320, 240), (640, 480)):
        clip = make_clip(folder / f"face_{w}x{h}.mp4", "face", seed=w, duration=1.0, size=(w, h))
        for j, frame in enumerate(decode_frames(clip.path, Sampling(frames=3)).images):
            out[f"clip_{w}x{h}_{j}"] = np.ascontiguousarray(frame)
    return out


# ---------------------------------------------------------------- the original: mediapipe's Tasks FaceDetector

class TasksFaceDetector:
    def __init__(self, model: Path) -> None:
        pytest.importorskip("mediapipe", reason="the agreement tests need mediapipe (pip install -e '.[test]')")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                             running_mode=vision.RunningMode.IMAGE, min_detection_confidence=MIN_SCORE)
        self.detector = vision.FaceDetector.create_from_options(options)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer boxes (k, 4) x, y, width, height as mediapipe gives them; scores (k,); keypoints (k, 6, 2) px."""
        import mediapipe as mp

        h, w = image.shape[:2]
        found = self.detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image)).detections
        boxes = np.array([[d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width,
                           d.bounding_box.height] for d in found]).reshape(-1, 4)
        scores = np.array([d.categories[0].score for d in found])
        keypoints = np.array([[(k.x * w, k.y * h) for k in d.keypoints] for d in found]).reshape(-1, 6, 2)
        return boxes, scores, keypoints

    def close(self) -> None:
        self.detector.close()


def _as_mediapipe_box(boxes: np.ndarray) -> np.ndarray:
    """Our float xyxy boxes in mediapipe's integer convention (origin truncated, at least 0; size truncated)."""
    return np.concatenate([np.maximum(np.trunc(boxes[:, :2]), 0), np.trunc(boxes[:, 2:] - boxes[:, :2])], axis=1)


def disagreements(ours, reference: dict[str, tuple], images: dict[str, np.ndarray]) -> list[str]:
    """Where our detector differs from mediapipe's beyond the tolerances: count, box corners (1 px after
    the same integer conversion), keypoints (1 px), scores (0.01)."""
    problems = []
    for name, image in images.items():
        ref_boxes, ref_scores, ref_keypoints = reference[name]
        found = ours(image)
        if len(found) != len(ref_scores):
            problems.append(f"{name}: {len(found)} faces, mediapipe {len(ref_scores)}")
            continue
        box_error = np.abs(_as_mediapipe_box(found.boxes) - ref_boxes).max(initial=0)
        keypoint_error = np.abs(found.keypoints - ref_keypoints).max(initial=0)
        score_error = np.abs(found.scores - ref_scores).max(initial=0)
        if box_error > 1 or keypoint_error > 1 or score_error > 0.01:
            problems.append(f"{name}: box {box_error:.2f} px, keypoints {keypoint_error:.2f} px, score {score_error:.4f}")
    return problems


@pytest.fixture(scope="module", params=["short", "full"])
def model(request, blazeface_model, blazeface_full_range_model) -> Path:
    return blazeface_model if request.param == "short" else blazeface_full_range_model


@pytest.fixture(scope="module")
def reference(model, images) -> dict[str, tuple]:
    tasks = TasksFaceDetector(model)
    try:
        return {name: tasks(image) for name, image in images.items()}
    finally:
        tasks.close()


def test_same_faces_boxes_keypoints_and_scores_as_mediapipe(model, reference, images):
    assert disagreements(BlazeFaceDetector(model, MIN_SCORE), reference, images) == []
    faces = sum(len(scores) for _, scores, _ in reference.values())
    with_face = [n for n, (_, scores, _) in reference.items() if len(scores)]
    assert faces >= 8 and {"astronaut", "grace_hopper", "clip_640x480_0", "clip_320x240_0"} <= set(with_face), with_face
    assert len(reference["no_face"][1]) == 0


def test_letterbox_samples_like_mediapipe_on_an_odd_width(model, reference, images):
    """The perspective warp (not warpAffine) reproduces mediapipe's tensor: far below the 1 px tolerance."""
    found = BlazeFaceDetector(model, MIN_SCORE)(images["grace_hopper_odd_width"])
    _, ref_scores, ref_keypoints = reference["grace_hopper_odd_width"]
    assert len(found) == len(ref_scores) == 1
    assert np.abs(found.keypoints - ref_keypoints).max() < 0.01 and abs(found.scores[0] - ref_scores[0]) < 1e-4


def _wrong_anchors(spec) -> np.ndarray:
    """Same number of anchors as the model's, on the wrong grids: the layer order reversed (short range),
    a 24×24 grid of 4 anchors instead of 48×48 of one (full range)."""
    if spec == SHORT_RANGE:
        return ssd_anchors(128, (16, 16, 16, 8), 2)
    return ssd_anchors(192, (8, 8), 2)


def test_the_comparison_catches_a_wrong_anchor_grid(model, reference, images):
    detector = BlazeFaceDetector(model, MIN_SCORE)
    detector.anchors = _wrong_anchors(detector.spec)
    assert len(detector.anchors) == len(ssd_anchors(detector.spec.size, detector.spec.strides,
                                                    detector.spec.anchors_per_layer))
    assert len(disagreements(detector, reference, images)) >= 5


def test_the_comparison_catches_a_letterbox_not_centred(model, reference, images, monkeypatch):
    right = blazeface.letterbox

    def top_left(image, size):  # the frame in the square's top-left corner, padding only right/below
        tensor, frame = right(np.pad(image, ((0, max(image.shape[:2]) - image.shape[0]),
                                             (0, max(image.shape[:2]) - image.shape[1]), (0, 0))), size)
        return tensor, blazeface.Roi(frame.side / 2, frame.side / 2, frame.side)

    monkeypatch.setattr(blazeface, "letterbox", top_left)
    problems = disagreements(BlazeFaceDetector(model, MIN_SCORE), reference, images)
    assert any(p.startswith(("grace_hopper:", "clip_320x240_0:")) for p in problems), problems


# ---------------------------------------------------------------- decoding on made-up outputs

def test_anchor_grids_are_mediapipes():
    short = ssd_anchors(128, SHORT_RANGE.strides, SHORT_RANGE.anchors_per_layer)
    assert short.shape == (896, 2)
    np.testing.assert_allclose(short[:2], [[0.5 / 16, 0.5 / 16]] * 2)  # stride 8: 16×16 cells, 2 per cell
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[511], [15.5 / 16, 15.5 / 16])
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)  # three stride-16 layers share 8×8 cells
    np.testing.assert_allclose(short[518], [1.5 / 8, 0.5 / 8])
    full = ssd_anchors(192, FULL_RANGE.strides, FULL_RANGE.anchors_per_layer)
    assert full.shape == (2304, 2)
    np.testing.assert_allclose(full[[0, 1, 48, 2303]], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48],
                                                        [0.5 / 48, 1.5 / 48], [47.5 / 48, 47.5 / 48]])


def _outputs(n: int = 896) -> tuple[np.ndarray, np.ndarray]:
    raw = np.zeros((n, 16))
    raw[:, 2:4] = 20.0  # 20 px boxes
    return raw, np.full(n, -50.0)


def test_decode_places_box_and_keypoints_relative_to_the_anchor():
    anchors = ssd_anchors(128, SHORT_RANGE.strides, 2)
    raw, logits = _outputs()
    raw[600] = [6.4, -12.8, 32.0, 25.6, *np.arange(12, dtype=float)]
    logits[600] = 3.0
    found = decode(raw, logits, anchors, 128, 0.5)
    cx, cy = anchors[600] + (0.05, -0.1)
    np.testing.assert_allclose(found.boxes, [[cx - 0.125, cy - 0.1, cx + 0.125, cy + 0.1]])
    np.testing.assert_allclose(found.keypoints[0], anchors[600] + np.arange(12).reshape(6, 2) / 128)
    np.testing.assert_allclose(found.scores, [1 / (1 + np.exp(-3.0))])


def test_scores_are_sigmoids_of_logits_clipped_at_100_and_threshold_inclusive():
    anchors = ssd_anchors(128, SHORT_RANGE.strides, 2)
    raw, logits = _outputs()
    logits[[0, 300, 700]] = [1e4, 0.0, -1e4]  # far apart; beyond the clip: no overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = decode(raw, logits, anchors, 128, 0.5)
    assert found.scores.tolist() == [1 / (1 + np.exp(-100.0)), 0.5]  # = 1.0 exactly; a clip at 10 gives 0.99995
    np.testing.assert_allclose(found.boxes[:, :2], anchors[[0, 300]] - 10 / 128)
    logits[300] = -1e-9  # score just below 0.5
    assert len(decode(raw, logits, anchors, 128, 0.5)) == 1


def test_overlapping_boxes_merge_into_their_score_weighted_mean():
    anchors = ssd_anchors(128, SHORT_RANGE.strides, 2)
    raw, logits = _outputs()
    logits[[0, 1]] = [2.0, 1.0]  # the two anchors of cell (0, 0): the same place
    raw[1, :2] = 1.28  # shifted by 0.01
    found = decode(raw, logits, anchors, 128, 0.5)
    s0, s1 = 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(-1.0))
    assert len(found) == 1 and found.scores[0] == pytest.approx(s0)
    np.testing.assert_allclose(found.boxes[0, :2], anchors[0] - 10 / 128 + 0.01 * s1 / (s0 + s1))


def test_a_model_that_is_not_blazeface_is_refused(tmp_path, wheel_weights):
    with pytest.raises(ValueError, match="not a BlazeFace model"):
        BlazeFaceDetector(wheel_weights("pose_detector"))  # 224×224 input


# ---------------------------------------------------------------- the faces path without mediapipe

def test_faces_feature_never_imports_mediapipe(blazeface_model, blazeface_full_range_model, sample_clip):
    script = f"""
import sys
from extract.faces_feature import SPEC
from extract.media import Sampling, decode_frames
from extract.specs import BuildOptions
frames = decode_frames({str(sample_clip.path)!r}, Sampling(fps=5))
for detector, path in (("short", {str(blazeface_model)!r}), ("full", {str(blazeface_full_range_model)!r})):
    extractor = SPEC.build(BuildOptions(config=SPEC.config_with({{"detector": detector}}), weights_path=path))
    (out,) = extractor.run([frames])
    assert out.qa["face_detection_rate"] >= 0.9, out.qa
    extractor.close()
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "mediapipe")
assert not loaded, loaded
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert "XNNPACK" not in done.stderr  # LiteRT's start-up line stays hidden
