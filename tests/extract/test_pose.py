"""pose (extract.pose_model + extract.video.pose): BlazePose in our own code against MediaPipe
0.10.21's own `solutions.pose` on real photographs, the torso normalisation, landmark order and
axis signs, and the extractor on a decoded clip (own 2 fps sampling, detection once, tracking)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extract.media import Frames, Sampling, decode_frames
from extract.pose_model import PoseDetector, PoseLandmarker, PoseTracker, pose_anchors
from extract.video.pose import DIM, PoseConfig, PoseExtractor, torso_normalised
from model_images import FACE_IMAGES, face_image

REFERENCE = Path(__file__).parent / "reference" / "model_references.npz"
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 0, 2, 5, 11, 12, 23, 24


@pytest.fixture(scope="module")
def models(wheel_weights):
    return PoseDetector(wheel_weights("pose_detector")), PoseLandmarker(wheel_weights("pose_landmark_full"))


@pytest.fixture(scope="module")
def extractor(wheel_weights):
    return PoseExtractor(wheel_weights("pose_detector"), wheel_weights("pose_landmark_full"), PoseConfig())


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


def _one_frame(image: np.ndarray) -> Frames:
    return Frames(images=image[None], times=np.zeros(1), duration=0.04, fps=25.0)


@pytest.mark.parametrize("name", FACE_IMAGES)
def test_landmarks_agree_with_mediapipe_solutions_pose(models, reference, name):
    found = PoseTracker(*models)(face_image(name))
    ref = reference[f"pose/{name}"]
    assert found is not None and found.presence > 0.5
    err = np.hypot(*(found.points[:, :2] - ref[:, :2]).T)
    visible = ref[:, 3] > 0.5
    assert err[visible].mean() < 1.5 and err.mean() < 2.0, (err[visible].mean(), err.mean())
    assert np.abs(found.points[:, 2] - ref[:, 2]).mean() < 1.5
    np.testing.assert_allclose(found.visibility, ref[:, 3], atol=0.03)


def _expected_normalised(ref: np.ndarray) -> np.ndarray:
    """The documented normalisation, written independently of the implementation."""
    origin = (ref[LEFT_HIP, :2] + ref[RIGHT_HIP, :2]) / 2
    unit = np.linalg.norm((ref[LEFT_SHOULDER, :2] + ref[RIGHT_SHOULDER, :2]) / 2 - origin)
    out = ref.copy()
    out[:, :2] = (ref[:, :2] - origin) / unit
    out[:, 2] = ref[:, 2] / unit
    return out


@pytest.mark.parametrize("name", ["astronaut", "hopper", "hopper_small"])
def test_feature_is_torso_normalised_like_the_reference(extractor, reference, name):
    (out,) = extractor.run([_one_frame(face_image(name))])
    assert out.data.shape == (1, DIM) and out.data.dtype == np.float32 and out.data[0, -1] == 1.0
    got = out.data[0, :-1].reshape(33, 4)
    np.testing.assert_allclose(got, _expected_normalised(reference[f"pose/{name}"]), atol=0.03)
    # landmark order and axis signs on a person facing the camera: the subject's left is the image's right,
    # y points down, the shoulders lie one unit above the hip centre
    assert got[LEFT_SHOULDER, 0] > got[RIGHT_SHOULDER, 0] and got[LEFT_EYE, 0] > got[RIGHT_EYE, 0]
    assert got[NOSE, 1] < got[LEFT_SHOULDER, 1] < 0 and got[LEFT_EYE, 1] < got[NOSE, 1]
    assert np.linalg.norm((got[LEFT_SHOULDER, :2] + got[RIGHT_SHOULDER, :2]) / 2) == pytest.approx(1.0, abs=1e-4)
    assert np.abs((got[LEFT_HIP, :2] + got[RIGHT_HIP, :2]) / 2).max() < 1e-5


def test_mirrored_image_swaps_sides_and_flips_x(extractor):
    (a,), (b,) = (extractor.run([_one_frame(face_image(n))]) for n in ("hopper", "hopper_mirror"))
    a, b = a.data[0, :-1].reshape(33, 4), b.data[0, :-1].reshape(33, 4)
    for left, right in ((LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_EYE, RIGHT_EYE), (LEFT_HIP, RIGHT_HIP)):
        assert b[left, 0] == pytest.approx(-a[right, 0], abs=0.06)
        assert b[left, 1] == pytest.approx(a[right, 1], abs=0.06)


def test_no_person_gives_zero_rows(extractor):
    (out,) = extractor.run([_one_frame(np.full((240, 320, 3), 90, np.uint8))])
    assert out.data.shape == (1, DIM) and not out.data.any() and out.qa["pose_detection_rate"] == 0.0


def test_extractor_on_a_clip_detects_once_and_tracks(extractor, sample_clip):
    config = PoseConfig()
    frames = decode_frames(sample_clip.path, config.sampling)
    assert config.sampling == Sampling(fps=2.0) and len(frames.times) == 6  # 3 s at the default 2 fps
    (out,) = extractor.run([frames])
    np.testing.assert_array_equal(out.times, frames.times)
    assert out.data.shape == (6, DIM) and np.isfinite(out.data).all()
    assert out.qa["pose_detection_rate"] == 1.0 and out.qa["pose_detector_runs"] == 1.0
    nose_y = out.data[:, NOSE * 4 + 1]
    assert np.all(nose_y < -1.0)  # the head is above the shoulders in every frame


def test_config_sampling_and_validation():
    assert PoseConfig(frames=8).sampling == Sampling(frames=8)
    assert PoseConfig(every=12).sampling == Sampling(every=12)
    with pytest.raises(ValueError, match="at most one"):
        PoseConfig(frames=8, every=2)
    with pytest.raises(ValueError, match="fps"):
        PoseConfig(fps=0.0)


def test_anchor_grid():
    anchors = pose_anchors()
    assert anchors.shape == (2254, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors per cell on the stride-8 grid
    np.testing.assert_allclose(anchors[2], [1.5 / 28, 0.5 / 28])  # x runs fastest
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(anchors[-6:], [[6.5 / 7, 6.5 / 7]] * 6)  # three stride-32 layers share a grid


def test_torso_normalised_units():
    points = np.zeros((33, 3))
    points[[LEFT_HIP, RIGHT_HIP], :2] = [[110, 300], [90, 300]]
    points[[LEFT_SHOULDER, RIGHT_SHOULDER], :2] = [[120, 250], [80, 250]]
    points[NOSE] = [100, 200, -25]
    out = torso_normalised(points, np.full(33, 0.5)).reshape(33, 4)
    np.testing.assert_allclose(out[NOSE], [0.0, -2.0, -0.5, 0.5])
