"""extract.faces / face_track / faces_feature: real BlazeFace on generated real-face clips,
plus unit tests of subject picking, gap filling, smoothing and cropping on fake detections."""
from __future__ import annotations

import numpy as np
import pytest

from extract.face_track import DETECTED, FALLBACK, FILLED, fill_gaps, iou, pick_subject, smooth
from extract.faces import FaceCropper, FacePolicy, crop_square, square_boxes
from extract.media import Sampling, decode_frames


@pytest.fixture(scope="module")
def cropper(blazeface_model):
    with FaceCropper(blazeface_model) as c:
        yield c


def _gt_for(clip, times):
    """Ground-truth face boxes of the decoded frames (matched on time)."""
    idx = np.array([np.argmin(np.abs(clip.times - t)) for t in times])
    return clip.face_boxes[idx]


def _contained(inner, outer):
    """Fraction of box `inner`'s area inside box `outer`."""
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    return ix * iy / ((inner[2] - inner[0]) * (inner[3] - inner[1]))


# ---------------------------------------------------------------- acceptance: real detector, known placement

def test_face_found_and_contained_in_every_crop(cropper, sample_clip):
    frames = decode_frames(sample_clip.path, Sampling(every=1))
    out = cropper.crop(frames)
    assert out.crops.shape == (75, 224, 224, 3) and out.crops.dtype == np.uint8
    assert out.qa["face_detection_rate"] >= 0.95 and out.qa["flagged"] == 0.0
    gt = _gt_for(sample_clip, frames.times)
    ious = np.array([iou(g, f[None])[0] for g, f in zip(gt, out.face_boxes)])
    assert np.mean(ious > 0.5) >= 0.95, ious.min()
    assert min(_contained(g, sq) for g, sq in zip(gt, out.boxes)) >= 0.95
    # the face fills a sensible part of the crop (not a full-frame fallback)
    side = out.boxes[:, 2] - out.boxes[:, 0]
    face_side = np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
    assert np.all((face_side / side > 0.45) & (face_side / side < 0.9))


def test_frames_without_a_face_are_filled_from_neighbours(cropper, sample_clip):
    frames = decode_frames(sample_clip.path, Sampling(every=1))
    frames.images = frames.images.copy()
    frames.images[30:35] = 128  # five frames where the face is gone (e.g. a hand in front)
    frames.images[:20] = 128    # and a long gap at the start: beyond the 12-frame window for frames 0..7
    out = cropper.crop(frames)
    assert out.status[30:35].tolist() == [FILLED] * 5
    assert out.status[:8].tolist() == [FALLBACK] * 8 and out.status[8:20].tolist() == [FILLED] * 12
    assert out.qa["frames_filled"] == 17 and out.qa["frames_fallback"] == 8
    assert out.qa["face_detection_rate"] == pytest.approx(50 / 75) and out.qa["flagged"] == 0.0
    gt = _gt_for(sample_clip, frames.times)
    assert min(_contained(g, sq) for g, sq in zip(gt[30:35], out.boxes[30:35])) >= 0.9  # interpolated track


def test_detection_rate_on_dataset_clips_of_both_people(cropper, sample_dataset):
    chosen = {}
    for clip in sample_dataset.clips:
        chosen.setdefault((clip.params.person, clip.params.mirror), clip)
    assert {p for p, _ in chosen} == {"astronaut", "hopper"}
    for clip in chosen.values():
        frames = decode_frames(clip.path, Sampling(fps=5))
        out = cropper.crop(frames)
        assert out.qa["face_detection_rate"] >= 0.95, (clip.path, out.qa)
        gt = _gt_for(clip, frames.times)
        assert min(_contained(g, sq) for g, sq in zip(gt, out.boxes)) >= 0.95


def test_no_face_clip_falls_back_and_is_flagged_not_failed(cropper, sample_variants):
    frames = decode_frames(sample_variants["no_face"].path, Sampling(fps=5))
    out = cropper.crop(frames)
    n = len(frames.times)
    assert out.crops.shape == (n, 224, 224, 3)
    assert np.all(out.status == FALLBACK)
    assert out.qa == {"face_detection_rate": 0.0, "frames": n, "frames_filled": 0.0, "frames_fallback": n,
                      "flagged": 1.0}
    np.testing.assert_allclose(out.boxes, np.tile([40.0, 0.0, 280.0, 240.0], (n, 1)))  # centred full-frame square


def test_crop_size_112_and_full_range_detector(blazeface_full_range_model, sample_clip):
    frames = decode_frames(sample_clip.path, Sampling(fps=5))
    with FaceCropper(blazeface_full_range_model, FacePolicy(size=112)) as c:
        out = c.crop(frames)
    assert out.crops.shape == (15, 112, 112, 3)
    assert out.qa["face_detection_rate"] >= 0.9


def test_faces_feature_spec_runs_many_clips(blazeface_model, sample_clip, sample_variants):
    from extract.faces_feature import SPEC
    from extract.specs import BuildOptions

    shape = SPEC.output_shape()
    assert (SPEC.name, SPEC.input, shape.dtype, SPEC.weights_entries(), shape.row) == \
        ("faces", "frames", "uint8", ("blazeface",), (224, 224, 3))
    assert SPEC.output_shape({"size": 112}).row == (112, 112, 3)
    extractor = SPEC.build(BuildOptions(config=SPEC.config_with({"size": 112}), weights_path=str(blazeface_model)))
    clips = [decode_frames(p, Sampling(fps=5)) for p in (sample_clip.path, sample_variants["no_face"].path)]
    face, empty = extractor.run(clips)
    assert face.data.shape == (15, 112, 112, 3) and face.data.dtype == np.uint8
    assert face.extras["boxes"].shape == (15, 4) and face.extras["boxes"].dtype == np.float32
    assert face.extras["face_status"].shape == (15, 1)
    np.testing.assert_array_equal(face.times, clips[0].times)
    assert face.qa["face_detection_rate"] >= 0.95 and empty.qa["flagged"] == 1.0
    assert np.all(empty.extras["face_status"] == FALLBACK)
    detector = extractor.cropper.detector
    extractor.run(clips[:1])
    assert extractor.cropper.detector is detector  # created once, reused
    extractor.close()


# ---------------------------------------------------------------- tracking units (fake detections)

def _det(x0, y0, side, score=0.9):
    return [x0, y0, x0 + side, y0 + side, score]


def test_fill_gaps_interpolates_copies_and_falls_back():
    nan = [np.nan] * 4
    boxes = np.array([nan, [0, 0, 10, 10], nan, nan, nan, [40, 0, 50, 10], nan, nan, nan, nan, nan, nan], float)
    filled, status = fill_gaps(boxes, window=2)
    # detections at frames 1 and 5, window 2: a frame with one side in reach copies it, a frame with
    # both sides in reach interpolates, a frame with none falls back
    np.testing.assert_allclose(filled[0], [0, 0, 10, 10])
    np.testing.assert_allclose(filled[2], [0, 0, 10, 10])   # left is 1 away, right 3 away (> window): copy
    np.testing.assert_allclose(filled[3], [20, 0, 30, 10])  # both 2 away: linear interpolation
    np.testing.assert_allclose(filled[4], [40, 0, 50, 10])
    np.testing.assert_allclose(filled[6:8], [[40, 0, 50, 10]] * 2)
    assert status.tolist() == [FILLED, DETECTED, FILLED, FILLED, FILLED, DETECTED, FILLED, FILLED,
                               FALLBACK, FALLBACK, FALLBACK, FALLBACK]
    assert np.isnan(filled[8:]).all()


def test_fill_gaps_interpolates_across_a_gap_within_the_window():
    boxes = np.full((6, 4), np.nan)
    boxes[0], boxes[5] = [0, 0, 10, 10], [50, 10, 60, 20]
    filled, status = fill_gaps(boxes, window=12)
    np.testing.assert_allclose(filled[:, 0], [0, 10, 20, 30, 40, 50])
    assert status.tolist() == [DETECTED] + [FILLED] * 4 + [DETECTED]


def test_fill_gaps_without_any_detection():
    filled, status = fill_gaps(np.full((4, 4), np.nan), window=12)
    assert np.all(status == FALLBACK) and np.isnan(filled).all()


def test_pick_subject_follows_the_main_face_not_a_momentary_stranger():
    subject = [_det(100 + 8 * i, 50, 60, 0.95) for i in range(6)]
    small = _det(10, 10, 20, 0.99)
    frames = [np.array([subject[i], small]) for i in range(6)]
    # frame 3: the subject is smaller / less confident than a bigger face elsewhere
    frames[3] = np.array([_det(126, 54, 50, 0.7), _det(220, 150, 70, 0.95)])
    frames[4] = np.zeros((0, 5))
    boxes, scores = pick_subject(frames)
    assert np.isnan(boxes[4]).all() and scores[4] == 0
    np.testing.assert_allclose(boxes[3], [126, 54, 176, 104])
    for i in (0, 1, 2, 5):
        np.testing.assert_allclose(boxes[i], subject[i][:4])
    assert scores[0] == pytest.approx(0.95)


def test_pick_subject_leaves_frames_with_only_other_faces_empty():
    frames = [np.array([_det(0, 0, 50)]), np.array([_det(0, 0, 50)]), np.array([_det(200, 100, 50)])]
    boxes, _ = pick_subject(frames)
    np.testing.assert_allclose(boxes[:2], [[0, 0, 50, 50]] * 2)
    assert np.isnan(boxes[2]).all()
    assert np.isnan(pick_subject([np.zeros((0, 5))] * 3)[0]).all()


def test_smooth_keeps_linear_motion_reduces_jitter_and_skips_fallback():
    t = np.arange(20, dtype=float)
    linear = np.stack([t, t, t + 10, t + 10], axis=1)
    times = t / 25  # 25 fps: a 0.2 s window spans 5 frames
    status = np.zeros(20, np.int8)
    np.testing.assert_allclose(smooth(linear, status, times, 0.2), linear)
    jitter = linear + np.random.default_rng(0).normal(0, 2, linear.shape)
    assert np.abs(smooth(jitter, status, times, 0.2) - linear).mean() < 0.7 * np.abs(jitter - linear).mean()
    np.testing.assert_allclose(smooth(jitter, status, times, 0.2)[5], jitter[3:8].mean(axis=0))
    status[8:10] = FALLBACK
    out = smooth(jitter, status, times, 0.2)
    np.testing.assert_array_equal(out[8:10], jitter[8:10])
    np.testing.assert_array_equal(out[7], jitter[7])  # last frame of its run: window shrinks to itself
    np.testing.assert_allclose(out[6], jitter[5:8].mean(axis=0))  # one frame left of the edge: 3 frames
    np.testing.assert_array_equal(smooth(jitter, status, times, 0.0), jitter)
    # sparse sampling (5 fps): the 0.2 s window holds one frame, motion is not averaged away
    np.testing.assert_array_equal(smooth(jitter, np.zeros(20, np.int8), t / 5, 0.2), jitter)


def test_square_boxes_and_crop_padding():
    faces = np.array([[100, 50, 140, 110], [np.nan] * 4])
    sq = square_boxes(faces, np.array([DETECTED, FALLBACK], np.int8), 320, 240, margin=0.25)
    np.testing.assert_allclose(sq[0], [75, 35, 165, 125])  # side 60 × 1.5, centred on the face
    np.testing.assert_allclose(sq[1], [40, 0, 280, 240])
    image = np.full((240, 320, 3), 200, np.uint8)
    out = crop_square(image, np.array([-50, -50, 50, 50]), 100)
    assert out.shape == (100, 100, 3)
    assert out[:50, :50].max() == 0 and out[60:, 60:].min() == 200  # black outside the picture
    edge = crop_square(image, np.array([-50, -50, 50, 50]), 100, pad="edge")
    assert edge.min() == 200
    ramp = np.tile(np.arange(320, dtype=np.uint8), (240, 1))[..., None].repeat(3, axis=2)
    same = crop_square(ramp, np.array([10, 20, 74, 84]), 64)
    np.testing.assert_array_equal(same, ramp[20:84, 10:74])
