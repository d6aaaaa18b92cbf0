"""Reference outputs of the ORIGINAL implementations on real photographs, saved for comparison.

Runs in a side environment (not the project's), because the originals pin old packages:

    python3.11 -m venv /tmp/ref_venv
    /tmp/ref_venv/bin/pip install mediapipe==0.10.21 dlib-bin scikit-image torch==2.13.0 tqdm requests
    /tmp/ref_venv/bin/pip install --no-deps facenet-pytorch==2.6.0   # it pins torch<2.3, numpy<2
    /tmp/ref_venv/bin/python benchmarks/model_references.py --dlib-models DIR \
        --out tests/extract/reference/model_references.npz

- mediapipe 0.10.21 `solutions.pose` (static_image_mode, model_complexity=1 = pose_landmark_full)
  and `solutions.face_mesh` (static_image_mode, refine_landmarks=False = face_landmark.tflite):
  landmarks in pixels (z × image width, as MediaPipe scales z like x), visibility.
- dlib: the frontal HOG detector (1 upsampling) and shape_predictor_68_face_landmarks.dat.
- facenet-pytorch 2.6.0 MTCNN (keep_all): boxes, probabilities, five points. facenet-pytorch
  imports torchvision only for `batched_nms` (and transforms it does not use for detection);
  the CPU torch here has no matching torchvision wheel, so a stand-in module provides a plain
  greedy IoU NMS with torchvision's semantics (no +1 in areas, suppress IoU > threshold).

The project's side (benchmarks/bench_model_agreement.py, tests) reads the saved file.
"""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "extract"))
from model_images import FACE_IMAGES, all_names, face_image  # noqa: E402


def _torchvision_stand_in() -> None:
    import torch

    def batched_nms(boxes, scores, idxs, threshold):
        if not len(boxes):
            return torch.zeros(0, dtype=torch.long)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        b = (boxes + offsets[:, None]).double()
        order = torch.argsort(scores, descending=True, stable=True)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        keep = []
        while len(order):
            i, rest = order[0], order[1:]
            keep.append(int(i))
            iw = (torch.minimum(b[i, 2], b[rest, 2]) - torch.maximum(b[i, 0], b[rest, 0])).clamp(min=0)
            ih = (torch.minimum(b[i, 3], b[rest, 3]) - torch.maximum(b[i, 1], b[rest, 1])).clamp(min=0)
            inter = iw * ih
            order = rest[inter / (area[i] + area[rest] - inter) <= threshold]
        return torch.tensor(keep, dtype=torch.long)

    tv = types.ModuleType("torchvision")
    ops, boxes_mod = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    transforms, functional = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.transforms.functional")
    boxes_mod.batched_nms = batched_nms
    ops.boxes, tv.ops, transforms.functional, tv.transforms = boxes_mod, ops, functional, transforms
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
                        "torchvision.transforms": transforms, "torchvision.transforms.functional": functional})


def mediapipe_refs(names: list[str]) -> dict[str, np.ndarray]:
    import mediapipe as mp

    out = {}
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                  min_detection_confidence=0.5)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                           min_detection_confidence=0.5)
    for name in names:
        img = face_image(name)
        h, w = img.shape[:2]
        r = pose.process(img)
        if r.pose_landmarks:
            out[f"pose/{name}"] = np.array([[p.x * w, p.y * h, p.z * w, p.visibility]
                                            for p in r.pose_landmarks.landmark])
        r = mesh.process(img)
        if r.multi_face_landmarks:
            out[f"mesh/{name}"] = np.array([[p.x * w, p.y * h, p.z * w]
                                            for p in r.multi_face_landmarks[0].landmark])
    return out


def dlib_refs(names: list[str], models: Path) -> dict[str, np.ndarray]:
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
    out = {}
    for name in names:
        img = face_image(name)
        rects = detector(img, 1)
        if not len(rects):
            continue
        rect = max(rects, key=lambda r: r.area())
        shape = predictor(img, rect)
        out[f"dlib_box/{name}"] = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], float)
        out[f"dlib68/{name}"] = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], float)
    return out


def mtcnn_refs(names: list[str]) -> dict[str, np.ndarray]:
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")
    out = {}
    for name in names:
        boxes, probs, points = mtcnn.detect(face_image(name), landmarks=True)
        if boxes is not None:
            boxes, probs = np.asarray(boxes, np.float64), np.asarray(probs, np.float64)
            out[f"mtcnn_box/{name}"] = np.concatenate([boxes, probs[:, None]], axis=1)
            out[f"mtcnn_points/{name}"] = np.asarray(points, np.float64)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("tests/extract/reference/model_references.npz"))
    parser.add_argument("--dlib-models", type=Path, required=True,
                        help="folder holding shape_predictor_68_face_landmarks.dat (face_recognition_models)")
    args = parser.parse_args()
    import dlib
    import mediapipe as mp

    _torchvision_stand_in()
    import facenet_pytorch  # noqa: F401  (fail early if the side environment lacks it)

    refs = {**mediapipe_refs(list(FACE_IMAGES)), **dlib_refs(all_names(), args.dlib_models), **mtcnn_refs(all_names())}
    refs["versions"] = np.array([f"mediapipe {mp.__version__}", f"dlib {dlib.__version__}", "facenet-pytorch 2.6.0"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **refs)
    print(f"{len(refs) - 1} reference arrays -> {args.out}")
    for key in sorted(refs):
        print(f"  {key}: {refs[key].shape}")


if __name__ == "__main__":
    main()
