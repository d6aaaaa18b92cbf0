"""Each clip is decoded once per task for every frames-input feature, each at its own sampling."""
from __future__ import annotations

import shutil

import numpy as np
from test_extract_helpers import cli, subset_manifest

from feature_store import FeatureStore


def test_faces_and_pose_share_one_decode_per_clip(tmp_path, monkeypatch, sample_dataset, wheel_weights):
    import extract.media

    root = tmp_path / "weights"
    for entry in ("blazeface", "pose_detector", "pose_landmark_full"):
        (root / entry).mkdir(parents=True)
        shutil.copy2(wheel_weights(entry), root / entry)
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    calls = []
    original = extract.media.decode_frames_multi
    monkeypatch.setattr(extract.media, "decode_frames_multi",
                        lambda path, samplings: calls.append((str(path), list(samplings))) or original(path, samplings))
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:3])
    code, out = cli("-i", manifest, "-s", tmp_path / "store", "-f", "faces,pose", "--scheduler", "sync", "--fps", "5")
    assert code == 0, out
    assert sorted(p for p, _ in calls) == sorted(str(c.path) for c in sample_dataset.clips[:3])  # once each
    assert all({s.fps for s in samplings} == {5.0, 2.0} for _, samplings in calls)
    store = FeatureStore(tmp_path / "store")
    with store.reader("faces") as faces, store.reader("pose") as pose:
        for clip in sample_dataset.clips[:3]:
            assert np.allclose(np.diff(faces.get(clip.id)[1]), 0.2) and np.allclose(np.diff(pose.get(clip.id)[1]), 0.5, atol=0.05)
