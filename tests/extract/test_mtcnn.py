"""MTCNN (extract.nets.mtcnn + extract.face_mtcnn): the real facenet-pytorch weights load strictly,
and the boxes and five points equal those facenet-pytorch 2.6.0 itself gives on real photographs
(tests/extract/reference/model_references.npz, made by benchmarks/model_references.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from extract.face_mtcnn import MTCNN, MTCNNOptions, nms
from extract.face_track import iou
from extract.nets.mtcnn import NETS, ONet, PNet, RNet
from model_images import all_names, face_image

REFERENCE = Path(__file__).parent / "reference" / "model_references.npz"


@pytest.fixture(scope="module")
def mtcnn(wheel_weights) -> MTCNN:
    return MTCNN.from_paths({name: wheel_weights(name) for name in NETS})


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


def test_real_weights_match_the_layouts_and_load_safely(wheel_weights):
    from extract.weights import load_state_dict

    for name, cls in NETS.items():
        path = wheel_weights(name)
        state = load_state_dict(path)  # safetensors or torch.load(weights_only=True): never runs pickled code
        assert set(state) == set(cls().state_dict()), name
        cls().load_state_dict(state, strict=True)


def test_boxes_and_points_equal_facenet_pytorch(mtcnn, reference):
    names = [n for n in all_names() if f"mtcnn_box/{n}" in reference]
    assert len(names) >= 15
    for name in names:
        boxes, points = mtcnn.detect(face_image(name))
        ref_boxes, ref_points = reference[f"mtcnn_box/{name}"], reference[f"mtcnn_points/{name}"]
        assert len(boxes) == len(ref_boxes), name
        for ref_box, ref_pts in zip(ref_boxes, ref_points):
            j = int(np.argmax(iou(ref_box[:4], boxes[:, :4])))
            assert iou(ref_box[:4], boxes[j:j + 1, :4])[0] > 0.99, name
            assert abs(boxes[j, 4] - ref_box[4]) < 1e-3, name
            np.testing.assert_allclose(points[j], ref_pts, atol=0.5, err_msg=name)
    # the point order: the image-left eye first, mouth corners below the eyes, nose between
    _, pts = mtcnn.detect(face_image("astronaut"))
    eye_l, eye_r, nose, mouth_l, mouth_r = pts[0]
    assert eye_l[0] < nose[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_no_face_gives_empty_arrays(mtcnn):
    boxes, points = mtcnn.detect(np.full((120, 160, 3), 127, np.uint8))
    assert boxes.shape == (0, 5) and points.shape == (0, 5, 2)


def test_random_nets_output_shapes_and_pyramid():
    torch.manual_seed(0)
    reg, prob = PNet()(torch.zeros(2, 3, 40, 30))
    assert reg.shape == (2, 4, 15, 10) and prob.shape == (2, 15, 10)
    assert [t.shape for t in RNet()(torch.zeros(3, 3, 24, 24))] == [(3, 4), (3,)]
    assert [t.shape for t in ONet()(torch.zeros(1, 3, 48, 48))] == [(1, 4), (1, 10), (1,)]
    nets = {name: cls().eval() for name, cls in NETS.items()}
    scales = MTCNN(nets, MTCNNOptions(min_face=20)).scales(240, 320)
    assert scales[0] == pytest.approx(0.6) and all(240 * s >= 12 for s in scales)
    assert 240 * scales[-1] * 0.709 < 12 and np.allclose(np.diff(np.log(scales)), np.log(0.709))


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 4, 4], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]  # 2 is inside 0 but its IoU is 0.16
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0, 3]  # inside the other: overlap 1.0
