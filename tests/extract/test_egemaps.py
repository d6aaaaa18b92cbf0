"""`egemaps` (88 functionals, 1 s windows / 0.5 s hop) and `egemaps_lld` (25 LLDs / 10 ms)."""
from __future__ import annotations

import numpy as np
import pytest

from audio_signals import SR, speechlike
from extract.audio.egemaps import SPEC_FUNCTIONALS, SPEC_LLD, SPECS
from extract.specs import BuildOptions

opensmile = pytest.importorskip("opensmile")


@pytest.fixture(scope="module")
def functionals():
    return SPEC_FUNCTIONALS.build(BuildOptions(config={}))


@pytest.fixture(scope="module")
def lld():
    return SPEC_LLD.build(BuildOptions(config={}))


def _lld_rows(samples: int) -> int:
    return 1 + (samples - 800) // 160  # LLD frame k exists once 50 ms + k·10 ms of audio do


def _expected_windows(samples: int, window: float = 1.0, hop: float = 0.5) -> int:
    win, step = round(window / 0.01), round(hop / 0.01)
    return 1 + (_lld_rows(samples) - win) // step


def test_specs():
    assert [s.name for s in SPECS] == ["egemaps", "egemaps_lld"]
    assert (SPEC_FUNCTIONALS.output_shape().dim, SPEC_FUNCTIONALS.output_shape().frame_step) == (88, 0.5)
    assert (SPEC_LLD.output_shape().dim, SPEC_LLD.output_shape().frame_step) == (25, 0.01)


def test_functionals_rows_times_and_batching(functionals):
    waves = [speechlike(s, seed=i) for i, s in enumerate([3.3, 2.04, 1.54, 1.539])]
    outputs = functionals.run(waves, SR)
    assert [len(o.data) for o in outputs] == [_expected_windows(w.size) for w in waves] == [5, 3, 2, 1]
    for out, wave in zip(outputs, waves):
        assert out.data.dtype == np.float32 and out.data.shape[1] == 88 and np.isfinite(out.data).all()
        np.testing.assert_allclose(out.times, 0.5 * np.arange(len(out.data)), atol=1e-9)
        (alone,) = functionals.run([wave], SR)
        np.testing.assert_array_equal(out.data, alone.data)


def test_windows_come_from_one_lld_stream():
    """hop 1.0 s windows are every other hop 0.5 s window: same LLDs, same functionals."""
    wave = speechlike(4.2, seed=3)
    half = SPEC_FUNCTIONALS.build(BuildOptions(config={})).run([wave], SR)[0]
    whole = SPEC_FUNCTIONALS.build(BuildOptions(config={"hop_seconds": 1.0})).run([wave], SR)[0]
    assert len(whole.data) == _expected_windows(wave.size, hop=1.0) == 4
    np.testing.assert_allclose(whole.data, half.data[::2][:len(whole.data)], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole.times, [0.0, 1.0, 2.0, 3.0], atol=1e-9)


def test_short_clip_gets_whole_clip_functionals(functionals):
    short = speechlike(0.7, seed=4)
    outputs = functionals.run([short, speechlike(0.02), np.zeros(0, np.float32)], SR)
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    np.testing.assert_allclose(outputs[0].data, smile.process_signal(short, SR).to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(outputs[0].times, [0.0])
    assert [o.data.shape for o in outputs[1:]] == [(0, 88), (0, 88)]


def test_lld_equals_opensmile(lld):
    wave = speechlike(2.5, seed=5)
    (out,) = lld.run([wave], SR)
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.LowLevelDescriptors)
    ref = smile.process_signal(wave, SR)
    np.testing.assert_array_equal(out.data, ref.to_numpy(dtype=np.float32))
    assert out.data.shape == (len(ref), 25) and len(ref) == _lld_rows(wave.size) == 246
    np.testing.assert_allclose(out.times, 0.01 * np.arange(len(ref)), atol=1e-9)


def test_full_scale_samples_do_not_wrap(lld):
    """opensmile converts with int16(x * 32768): without clipping, x ≥ 1 would wrap to −1."""
    loud = np.clip(speechlike(1.5, seed=6) * 12, -1.6, 1.6).astype(np.float32)
    (out,) = lld.run([loud], SR)
    (clipped,) = lld.run([np.clip(loud, -1.0, 32767 / 32768).astype(np.float32)], SR)
    np.testing.assert_array_equal(out.data, clipped.data)


def test_bad_input_and_config():
    with pytest.raises(ValueError, match="sample rate 44100"):
        SPEC_LLD.build(BuildOptions(config={})).run([speechlike(1.0)], 44100)
    with pytest.raises(ValueError, match="hop_seconds"):
        SPEC_FUNCTIONALS.build(BuildOptions(config={"hop_seconds": 2.0}))
    with pytest.raises(ValueError, match="unknown option"):
        SPEC_LLD.build(BuildOptions(config={"window_seconds": 1.0}))
