"""pipelines.sample_data: generated clips, their ground truth, labels, and the CLI."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from pipelines.sample_data import EMOTIONS, VARIANTS, ClipParams, emotion_scores, main, make_clip, make_sample_dataset
from pipelines.sample_voice import speech


def test_ground_truth_boxes_follow_the_face(sample_clip):
    boxes = sample_clip.face_boxes
    assert boxes.shape == (75, 4) and not np.isnan(boxes).any()
    w, h = sample_clip.size
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 1] >= 0).all()
    side = boxes[:, 3] - boxes[:, 1]
    assert side.min() > 0.25 * h  # large enough for the short-range detector
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    assert np.ptp(centres) > 20  # it moves ...
    assert np.ptp(side) > 5      # ... and zooms


def test_variant_kinds(sample_variants):
    assert set(sample_variants) == set(VARIANTS)
    assert sample_variants["zero_length"].path.stat().st_size == 0
    assert np.isnan(sample_variants["no_face"].face_boxes).all()
    assert not sample_variants["no_audio"].has_audio
    assert not sample_variants["truncated"].decodable
    vfr = np.diff(sample_variants["vfr"].times)
    assert vfr.max() > 1.5 * vfr.min()
    assert len(sample_variants["low_fps"].times) == 25


def test_voice_is_speech_like_and_deterministic():
    sr = 16000
    x = speech(2.0, sr, f0=150.0, syllable_rate=4.5, loudness=0.6, seed=3, voice="synth")
    assert x.dtype == np.float32 and len(x) == 2 * sr
    assert np.abs(x).max() == pytest.approx(0.6, rel=1e-4)
    np.testing.assert_array_equal(x, speech(2.0, sr, f0=150.0, syllable_rate=4.5, loudness=0.6, seed=3,
                                            voice="synth"))
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)  # 20 ms
    energy = np.sqrt((frames ** 2).mean(axis=1))
    assert (energy < 0.02).mean() > 0.1 and (energy > 0.05).mean() > 0.4  # syllables and pauses
    voiced = frames[energy > 0.05]
    lags = np.arange(sr // 400, sr // 60)
    f0 = [sr / lags[np.argmax([np.dot(f[:-lag], f[lag:]) for lag in lags])] for f in voiced[::3]]
    assert np.median(f0) == pytest.approx(150.0, rel=0.15)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed (the generated voice is used)")
def test_espeak_voice_when_installed():
    x = speech(2.0, 16000, f0=150.0, loudness=0.5, seed=1, voice="espeak")
    assert len(x) == 32000 and np.abs(x).max() == pytest.approx(0.5, rel=1e-4)
    assert not np.array_equal(x, speech(2.0, 16000, f0=150.0, loudness=0.5, seed=1, voice="synth"))


def test_labels_are_in_range_and_depend_on_parameters():
    rng = np.random.default_rng(0)
    scores = np.array([[emotion_scores(ClipParams.random(rng))[e] for e in EMOTIONS] for _ in range(200)])
    assert scores.min() >= 0 and scores.max() <= 1
    assert (scores.std(axis=0) > 0.08).all()


def test_sample_dataset_layout(sample_dataset):
    with open(sample_dataset.labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["File_ID", *EMOTIONS, "Split"]
    assert [r["File_ID"] for r in rows] == [f"[{i:05d}]" for i in range(1, 25)]
    assert {r["Split"] for r in rows} == {"train", "val", "test"}
    assert all(0.0 <= float(r[e]) <= 1.0 for r in rows for e in EMOTIONS)
    assert all((sample_dataset.video_dir / f"{r['File_ID'][1:-1]}.mp4").is_file() for r in rows)
    assert (sample_dataset / "labels.csv") == sample_dataset.labels_csv


def test_dataset_is_deterministic_and_cli_works(tmp_path, capsys):
    a = make_sample_dataset(tmp_path / "a", n_clips=3, seed=4, duration=0.4)
    b = make_sample_dataset(tmp_path / "b", n_clips=3, seed=4, duration=0.4, variants=["no_face"])
    assert a.labels_csv.read_text() == b.labels_csv.read_text()
    assert [c.params for c in a.clips] == [c.params for c in b.clips]
    assert [c.id for c in b.extra] == ["no_face"]
    main([str(tmp_path / "c"), "--clips", "2", "--duration", "0.4", "--size", "160x120"])
    assert "2 clips in" in capsys.readouterr().out
    assert len(list((tmp_path / "c/videos").glob("*.mp4"))) == 2


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".avi", ".mov"])
def test_other_containers(tmp_path, suffix):
    from extract.media import Sampling, decode_audio, decode_frames

    clip = make_clip(tmp_path / f"c{suffix}", seed=1, duration=0.6, size=(160, 120))
    frames = decode_frames(clip.path, Sampling(every=1))
    assert frames.images.shape == (15, 120, 160, 3)
    np.testing.assert_allclose(frames.times, clip.times, atol=1e-3)
    assert decode_audio(clip.path).duration == pytest.approx(0.6, abs=0.08)
