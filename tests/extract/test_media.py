"""extract.media: sampling policies, pts-based times, rotation, sparse RGB conversion, audio, errors."""
from __future__ import annotations

import re
import shutil
from fractions import Fraction

import numpy as np
import pytest

import extract.media as media
from extract.media import MediaError, Sampling, decode_audio, decode_frames, probe


# ---------------------------------------------------------------- Sampling.select (pure)

def test_sampling_needs_exactly_one_positive_value():
    for bad in ({}, {"fps": 5, "frames": 3}, {"every": 0}, {"fps": -1.0}):
        with pytest.raises(ValueError):
            Sampling(**bad)
    assert Sampling(frames=32).describe() == {"frames": 32}


def test_select_policies_on_a_regular_timeline():
    times = np.arange(75) / 25.0
    assert Sampling(every=30).select(times, 3.0).tolist() == [0, 30, 60]
    assert Sampling(fps=5).select(times, 3.0).tolist() == list(range(0, 75, 5))
    assert Sampling(fps=100).select(times, 3.0).tolist() == list(range(75))  # never duplicates
    assert Sampling(frames=75).select(times, 3.0).tolist() == list(range(75))
    idx = Sampling(frames=3).select(times, 3.0)
    assert idx.tolist() == [12, 37, 62]  # centres of three equal segments
    assert len(Sampling(frames=100).select(times, 3.0)) == 100  # a fixed count is a fixed count


def test_select_rate_on_a_variable_timeline():
    times = np.array([0.0, 0.05, 0.31, 0.33, 0.9, 1.0])
    # one frame per 0.2 s interval that has any: [0,.2) [.2,.4) [.8,1) [1,1.2)
    assert Sampling(fps=5).select(times, 1.04).tolist() == [0, 2, 4, 5]


# ---------------------------------------------------------------- decoding real clips

def test_policies_on_sample_clip(sample_clip):
    every = decode_frames(sample_clip.path, Sampling(every=30))
    assert every.images.shape == (3, 240, 320, 3) and every.images.dtype == np.uint8
    np.testing.assert_allclose(every.times, [0.0, 1.2, 2.4], atol=1e-6)
    assert every.duration == pytest.approx(3.0) and every.fps == pytest.approx(25.0)

    rate = decode_frames(sample_clip.path, Sampling(fps=5))
    np.testing.assert_allclose(rate.times, np.arange(15) * 0.2, atol=1e-6)

    fixed = decode_frames(sample_clip.path, Sampling(frames=32))
    assert len(fixed.images) == 32 and np.all(np.diff(fixed.times) > 0)
    assert fixed.times[0] < 0.1 and fixed.times[-1] > 2.85

    # the frames kept are the right frames: identical to the same frames of a full decode
    full = decode_frames(sample_clip.path, Sampling(every=1))
    assert len(full.images) == 75
    np.testing.assert_array_equal(rate.images, full.images[::5])
    np.testing.assert_array_equal(every.images, full.images[::30])


def test_only_selected_frames_are_converted_to_rgb(sample_clip, monkeypatch):
    calls = []
    original = media._to_rgb
    monkeypatch.setattr(media, "_to_rgb", lambda frame, *a: calls.append(frame.pts) or original(frame, *a))
    decode_frames(sample_clip.path, Sampling(every=30))
    assert len(calls) == 3  # not 75
    calls.clear()
    decode_frames(sample_clip.path, Sampling(frames=4))
    assert len(calls) == 4


def test_reused_reformatter_gives_the_same_pixels_as_to_ndarray(sample_clip):
    import av
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    with av.open(str(sample_clip.path)) as container:
        for frame, _ in zip(container.decode(video=0), range(5)):
            np.testing.assert_array_equal(media._to_rgb(frame, reformatter), frame.to_ndarray(format="rgb24"))


@pytest.mark.parametrize("kind, fps", [("odd_fps", 30000 / 1001), ("low_fps", 12.5), ("vfr", None)])
def test_times_come_from_pts(sample_variants, kind, fps):
    clip = sample_variants[kind]
    full = decode_frames(clip.path, Sampling(every=1))
    np.testing.assert_allclose(full.times, clip.times, atol=1.5e-3)
    if fps:
        assert full.fps == pytest.approx(fps, rel=1e-4)
    rate = decode_frames(clip.path, Sampling(fps=5))
    bins = np.floor(rate.times * 5 + 1e-6)
    assert len(set(bins)) == len(bins)  # at most one frame per 0.2 s interval ...
    assert set(bins) == set(np.floor(clip.times * 5 + 1e-6))  # ... and one in every interval that has frames
    fixed = decode_frames(clip.path, Sampling(frames=8))
    assert len(fixed.times) == 8 and np.all(np.diff(fixed.times) > 0)


def test_non_zero_start_time(sample_variants):
    clip = sample_variants["late_start"]
    frames = decode_frames(clip.path, Sampling(fps=5))
    assert frames.start_time == pytest.approx(1.0)
    np.testing.assert_allclose(frames.times, np.arange(10) * 0.2, atol=1e-6)  # relative to the stream start
    assert frames.duration == pytest.approx(2.0)


def test_rotation_metadata_is_applied(sample_variants):
    upright = decode_frames(sample_variants["face"].path, Sampling(every=10))
    rotated = decode_frames(sample_variants["rotated"].path, Sampling(every=10))
    assert rotated.rotation == 90
    assert rotated.images.shape == upright.images.shape == (5, 240, 320, 3)
    # same rendered pictures (same seed): only coding noise apart once the rotation is applied
    diff = np.abs(rotated.images.astype(np.int16) - upright.images.astype(np.int16)).mean()
    assert diff < 4.0
    wrong_way = np.abs(np.rot90(rotated.images, 2, axes=(1, 2)).astype(np.int16) - upright.images).mean()
    assert wrong_way > 4 * diff
    info = probe(sample_variants["rotated"].path)
    assert (info.width, info.height, info.rotation) == (320, 240, 90)


def test_probe(sample_clip, sample_variants):
    info = probe(sample_clip.path)
    assert (info.width, info.height, info.n_frames) == (320, 240, 75)
    assert info.duration == pytest.approx(3.0) and info.fps == pytest.approx(25.0)
    assert info.has_video and info.has_audio and info.audio_codec == "aac"
    assert not probe(sample_variants["no_audio"].path).has_audio


# ---------------------------------------------------------------- audio

def test_audio_is_16k_mono_float_of_the_clip_length(sample_clip):
    audio = decode_audio(sample_clip.path)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(3.0, abs=0.05)  # AAC pads at most one 1024-sample frame
    assert 0.05 < np.abs(audio.samples).max() <= 1.0
    assert audio.source == "stream"


def _write_tone(path, freq=1000.0, rate=44100, seconds=1.5, stereo=True):
    import av

    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    layout = "stereo" if stereo else "mono"
    data = np.stack([x, x], axis=1).reshape(1, -1) if stereo else x[None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_resampling_keeps_pitch_length_and_level(tmp_path):
    path = tmp_path / "tone.wav"
    _write_tone(path)
    audio = decode_audio(path, sample_rate=16000)
    assert len(audio.samples) == pytest.approx(1.5 * 16000, abs=2)
    spectrum = np.abs(np.fft.rfft(audio.samples * np.hanning(len(audio.samples))))
    peak = np.argmax(spectrum) * 16000 / len(audio.samples)
    assert peak == pytest.approx(1000.0, abs=2.0)
    # stereo with L == R averages to the same signal (no +3 dB from a mixing matrix)
    assert np.abs(audio.samples[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)
    assert decode_audio(path, sample_rate=8000).samples.shape[0] == pytest.approx(12000, abs=2)


def test_no_audio_stream(sample_variants, tmp_path):
    path = sample_variants["no_audio"].path
    with pytest.raises(MediaError, match=re.escape(str(path)) + ".*no audio stream"):
        decode_audio(path)
    zeros = decode_audio(path, missing="zeros")
    assert zeros.source == "zeros" and not zeros.samples.any()
    assert len(zeros.samples) == pytest.approx(2.0 * 16000, abs=16)
    # a .wav with the same stem beside the video is used instead
    copy = tmp_path / "clip.mp4"
    shutil.copy(path, copy)
    _write_tone(tmp_path / "clip.wav", stereo=False)
    side = decode_audio(copy)
    assert side.source == "sidecar" and side.duration == pytest.approx(1.5, abs=1e-3)


# ---------------------------------------------------------------- broken files

@pytest.mark.parametrize("kind, reason", [
    ("zero_length", "zero-length file"),
    ("truncated", "truncated"),
    ("truncated_index", "truncated MP4: no 'moov' index"),
    ("not_media", "not a readable media file"),
])
def test_broken_files_raise_media_error_naming_file_and_reason(sample_variants, kind, reason):
    path = sample_variants[kind].path
    for call in (lambda: decode_frames(path, Sampling(fps=5)), lambda: decode_audio(path)):
        with pytest.raises(MediaError) as info:
            call()
        assert str(path) in str(info.value) and reason in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        decode_frames(tmp_path / "nope.mp4", Sampling(fps=5))
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "nope.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path):
    _write_tone(tmp_path / "a.wav")
    with pytest.raises(MediaError, match="no video stream"):
        decode_frames(tmp_path / "a.wav", Sampling(fps=5))


def test_one_decode_serves_several_samplings(sample_clip, monkeypatch):
    from extract.media import decode_frames_multi

    samplings = [Sampling(fps=5), Sampling(fps=2), Sampling(frames=7)]
    alone = [decode_frames(sample_clip.path, s) for s in samplings]
    calls = []
    original = media._to_rgb
    monkeypatch.setattr(media, "_to_rgb", lambda frame, *a: calls.append(frame.pts) or original(frame, *a))
    together = decode_frames_multi(sample_clip.path, samplings)
    assert len(calls) == len(set(calls)) == len({t for f in alone for t in f.times})  # each frame converted once
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.images, b.images)
