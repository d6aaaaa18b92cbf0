"""The new pretrained models: agreement with the original implementations, and throughput.

    .venv/bin/python benchmarks/bench_models.py [--part agreement|throughput|all]
        [--reference-python /tmp/ref_venv/bin/python --dlib-models DIR]   # regenerate the references first

Agreement: our code against the saved outputs of the originals on real photographs
(tests/extract/reference/model_references.npz, written by benchmarks/model_references.py in a side
environment with mediapipe 0.10.21, dlib and facenet-pytorch 2.6.0): mean landmark error in pixels,
box IoU, descriptor differences. Throughput (one run, so ratios are comparable): pose from video at
its default 2 fps, face_mesh from cached face crops and from video, faces with the MTCNN fallback
and with dlib68 alignment. Gap filling: occluded frames in generated clips, window 12 counted in source
frames vs in sampled frames. Weights are resolved through extract.weights (fetched once if missing).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "extract"))
from model_images import FACE_IMAGES, all_names, face_image  # noqa: E402

REFERENCE = ROOT / "tests" / "extract" / "reference" / "model_references.npz"
ENTRIES = ("blazeface", "pose_detector", "pose_landmark_full", "face_mesh", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
           "dlib_shape_predictor_68")


def weights() -> dict[str, str]:
    from extract.weights import WeightsError, resolve
    from extract.weights.fetch import fetch

    paths = {}
    for name in ENTRIES:
        try:
            paths[name] = str(resolve(name).path)
        except WeightsError:
            print(f"fetching {name} ...", flush=True)
            fetch(name)
            paths[name] = str(resolve(name).path)
    return paths


def _one_frame(image: np.ndarray):
    from extract.media import Frames

    return Frames(images=image[None], times=np.zeros(1), duration=0.04, fps=25.0)


def agreement(w: dict[str, str]) -> dict:
    from extract.face_align import Dlib68
    from extract.face_geometry import DESCRIPTORS, descriptors
    from extract.face_mesh_model import FaceMeshModel
    from extract.face_mtcnn import MTCNN
    from extract.face_track import iou
    from extract.faces import BlazeFace, FaceCropper
    from extract.pose_model import PoseDetector, PoseLandmarker, PoseTracker

    ref = np.load(REFERENCE)
    out: dict = {"versions": ref["versions"].tolist()}
    detector, landmarker = PoseDetector(w["pose_detector"]), PoseLandmarker(w["pose_landmark_full"])
    rows = []
    for name in FACE_IMAGES:
        found, r = PoseTracker(detector, landmarker)(face_image(name)), ref[f"pose/{name}"]
        err = np.hypot(*(found.points[:, :2] - r[:, :2]).T)
        rows.append([err.mean(), err[r[:, 3] > 0.5].mean(), np.abs(found.points[:, 2] - r[:, 2]).mean(),
                     np.abs(found.visibility - r[:, 3]).max()])
    out["pose"] = dict(zip(("mean_px", "visible_mean_px", "z_mean_px", "visibility_max_abs"),
                           np.round(np.mean(rows, 0), 3).tolist()), per_image=np.round(rows, 2).tolist())
    mesh, cropper = FaceMeshModel(w["face_mesh"]), FaceCropper(w["blazeface"])
    rows, desc_diff = [], []
    for name in FACE_IMAGES:
        crop = cropper.crop(_one_frame(face_image(name)))
        box, side = crop.boxes[0], crop.crops.shape[1]
        r = ref[f"mesh/{name}"]
        iod = np.hypot(*(r[263, :2] - r[33, :2]))
        errs = []
        for passes in (1, 2):
            m = mesh.on_crop(crop.crops[0], passes)
            pts = m.points[:, :2] * (box[2] - box[0]) / side + box[:2]
            errs.append(np.hypot(*(pts - r[:, :2]).T).mean())
        rows.append([*errs, errs[1] / iod * 100])
        m = mesh.on_crop(crop.crops[0], 2)
        desc_diff.append(np.abs(descriptors(m.points) - descriptors(r)))
    out["face_mesh"] = {"crop_1pass_mean_px": round(float(np.mean([r[0] for r in rows])), 3),
                        "crop_2pass_mean_px": round(float(np.mean([r[1] for r in rows])), 3),
                        "crop_2pass_pct_iod": round(float(np.mean([r[2] for r in rows])), 3),
                        "descriptor_mean_abs_diff": dict(zip(DESCRIPTORS, np.round(np.mean(desc_diff, 0), 4).tolist())),
                        "per_image": np.round(rows, 2).tolist()}
    mtcnn = MTCNN.from_paths({k: w[k] for k in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")})
    ious, pts_err, found_ref, found_ours = [], [], 0, 0
    for name in all_names():
        boxes, points = mtcnn.detect(face_image(name))
        found_ours += len(boxes) > 0
        if f"mtcnn_box/{name}" not in ref:
            continue
        found_ref += 1
        r, rp = ref[f"mtcnn_box/{name}"][0], ref[f"mtcnn_points/{name}"][0]
        j = int(np.argmax(iou(r[:4], boxes[:, :4]))) if len(boxes) else None
        ious.append(float(iou(r[:4], boxes[j:j + 1, :4])[0]) if j is not None else 0.0)
        if j is not None:
            pts_err.append(float(np.hypot(*(points[j] - rp).T).mean()))
    out["mtcnn"] = {"images": len(all_names()), "faces_ref": found_ref, "faces_ours": found_ours,
                    "mean_iou": round(float(np.mean(ious)), 4), "min_iou": round(float(np.min(ious)), 4),
                    "points_mean_px": round(float(np.mean(pts_err)), 4)}
    d68, blaze = Dlib68(w["dlib_shape_predictor_68"]), BlazeFace(w["blazeface"])
    same, ours, pct = [], [], []
    for name in all_names():
        if f"dlib68/{name}" not in ref:
            continue
        img, r = face_image(name), ref[f"dlib68/{name}"]
        same.append(float(np.abs(d68(img, ref[f"dlib_box/{name}"]) - r).max()))
        dets = blaze(img)
        if len(dets):
            e = np.hypot(*(d68.for_face(img, dets[np.argmax(dets[:, 4])]) - r).T).mean()
            ours.append(e)
            pct.append(e / np.hypot(*(r[36:42].mean(0) - r[42:48].mean(0))) * 100)
    out["dlib68"] = {"images": len(same), "same_box_max_px": max(same), "blazeface_box_mean_px": round(float(np.mean(ours)), 3),
                     "blazeface_box_pct_iod": round(float(np.mean(pct)), 2), "blazeface_found": len(ours)}
    cropper.close()
    blaze.close()
    return out


def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def throughput(w: dict[str, str], seconds: float) -> dict:
    from extract.faces import FaceCropper, FacePolicy
    from extract.media import Sampling, decode_frames
    from extract.video.face_mesh import FaceMeshConfig, FaceMeshExtractor
    from extract.video.pose import PoseConfig, PoseExtractor
    from pipelines.sample_data import ClipParams, make_clip

    tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
    clip = make_clip(tmp / "clip.mp4", "face", seed=2, params=ClipParams(person="hopper", sway=0.4, speed=0.3),
                     size=(640, 480), duration=seconds, audio=False)
    small = make_clip(tmp / "small.mp4", "face", seed=3, size=(480, 360), duration=2.0, audio=False,
                      params=ClipParams(person="hopper", height=0.15, sway=0.08, speed=0.3, zoom=0.02))
    out: dict = {"clip": f"{seconds:g} s, 640x480, 25 fps", "load": os.getloadavg()[0]}
    pose = PoseExtractor(w["pose_detector"], w["pose_landmark_full"], PoseConfig())
    frames2 = decode_frames(clip.path, PoseConfig().sampling)
    t_decode = _timed(lambda: decode_frames(clip.path, PoseConfig().sampling))
    t_pose = _timed(lambda: pose.run([frames2]))
    out["pose"] = {"frames": len(frames2.times), "decode_s": round(t_decode, 3), "pose_s": round(t_pose, 3),
                   "frames_per_s": round(len(frames2.times) / t_pose, 1),
                   "x_real_time_from_video": round(seconds / (t_decode + t_pose), 1)}
    frames5 = decode_frames(clip.path, Sampling(fps=5))
    t_decode5 = _timed(lambda: decode_frames(clip.path, Sampling(fps=5)))
    with FaceCropper(w["blazeface"]) as cropper:
        t_faces = _timed(lambda: cropper.crop(frames5))
        crops = cropper.crop(frames5)
    n = len(crops.times)
    out["faces_fps5"] = {"frames": n, "s": round(t_faces, 3), "frames_per_s": round(n / t_faces, 1)}
    for passes in (1, 2):
        mesh = FaceMeshExtractor(w["face_mesh"], FaceMeshConfig(passes=passes))
        t_mesh = _timed(lambda: mesh.run([crops.crops], [crops.times]))
        out[f"face_mesh_{passes}pass"] = {"crops": n, "s": round(t_mesh, 3), "crops_per_s": round(n / t_mesh, 1),
                                          "x_real_time_from_crops": round(seconds / t_mesh, 1),
                                          "x_real_time_from_video": round(seconds / (t_decode5 + t_faces + t_mesh), 1)}
    mtcnn = {k: w[k] for k in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")}
    small_frames = decode_frames(small.path, Sampling(fps=5))
    with FaceCropper(w["blazeface"], FacePolicy(fallback_detector="mtcnn"), mtcnn) as cropper:
        t_normal = _timed(lambda: cropper.crop(frames5), 1)
        t_small = _timed(lambda: cropper.crop(small_frames), 1)
        qa = cropper.crop(small_frames).qa
    out["faces_mtcnn_fallback"] = {
        "normal_clip_frames_per_s": round(n / t_normal, 1),
        "small_face_clip_frames": len(small_frames.times), "small_face_clip_s_per_frame": round(t_small / len(small_frames.times), 3),
        "small_face_detection_rate": qa["face_detection_rate"], "small_face_frames_mtcnn": qa["frames_mtcnn"]}
    with FaceCropper(w["blazeface"], FacePolicy(align="dlib68", size=112),
                     {"dlib_shape_predictor_68": w["dlib_shape_predictor_68"]}) as cropper:
        t_align = _timed(lambda: cropper.crop(frames5))
    out["faces_dlib68_align"] = {"frames_per_s": round(n / t_align, 1), "vs_plain_time": round(t_align / t_faces, 2)}
    out["load_after"] = os.getloadavg()[0]
    return out


def gap_fill(w: dict[str, str], clips: int = 8) -> dict:
    """Occlusions (runs of 2-12 sampled frames with the face hidden) in generated clips at 5 fps: how well
    the crop of each hidden frame matches the crop a detection there would have given (IoU of the crop
    squares), per fill unit."""
    from extract.face_track import FALLBACK, iou
    from extract.faces import FaceCropper, FacePolicy, square_boxes
    from extract.media import Sampling, decode_frames
    from pipelines.sample_data import ClipParams, make_clip

    tmp = Path(tempfile.mkdtemp(prefix="bench-gaps-"))
    rng = np.random.default_rng(0)
    counts = {unit: {"hidden": 0, "good": 0, "fallback": 0, "iou_sum": 0.0} for unit in ("source", "sampled")}
    croppers = {unit: FaceCropper(w["blazeface"], FacePolicy(fill_unit=unit)) for unit in counts}
    for k in range(clips):
        clip = make_clip(tmp / f"{k}.mp4", "face", seed=100 + k, params=ClipParams.random(rng), duration=6.0,
                         audio=False)
        frames = decode_frames(clip.path, Sampling(fps=5))
        hidden = np.zeros(len(frames.times), bool)
        for start in rng.choice(len(hidden) - 12, 2, replace=False):
            hidden[start:start + int(rng.integers(2, 13))] = True
        frames.images = frames.images.copy()
        frames.images[hidden] = 128
        idx = [int(np.argmin(np.abs(clip.times - t))) for t in frames.times]
        ideal = square_boxes(clip.face_boxes[idx].astype(np.float64), np.zeros(len(idx), np.int8),
                             *clip.size, FacePolicy().margin)  # the crop a detection in that frame gives
        for unit, cropper in croppers.items():
            out = cropper.crop(frames)
            for i in np.flatnonzero(hidden):
                overlap = float(iou(ideal[i], out.boxes[i:i + 1])[0])
                c = counts[unit]
                c["hidden"] += 1
                c["iou_sum"] += overlap
                c["good"] += int(overlap >= 0.5)
                c["fallback"] += int(out.status[i] == FALLBACK)
    for cropper in croppers.values():
        cropper.close()
    return {unit: {"hidden": c["hidden"], "fallback": c["fallback"], "iou_ge_0.5": round(c["good"] / c["hidden"], 3),
                   "mean_iou": round(c["iou_sum"] / c["hidden"], 3)} for unit, c in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("agreement", "throughput", "gapfill", "all"), default="all")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput clip")
    parser.add_argument("--reference-python", help="side environment's python: rerun benchmarks/model_references.py first")
    parser.add_argument("--dlib-models", help="folder with shape_predictor_68_face_landmarks.dat (for the references)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "models.json")
    args = parser.parse_args()
    if args.reference_python:
        subprocess.run([args.reference_python, str(ROOT / "benchmarks" / "model_references.py"),
                        "--dlib-models", args.dlib_models, "--out", str(REFERENCE)], check=True)
    import torch

    torch.set_num_threads(1)
    w = weights()
    result = {}
    if args.part in ("agreement", "all"):
        result["agreement"] = agreement(w)
    if args.part in ("throughput", "all"):
        result["throughput"] = throughput(w, args.seconds)
    if args.part in ("gapfill", "all"):
        result["gap_fill_5fps"] = gap_fill(w)
    text = json.dumps(result, indent=1)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
