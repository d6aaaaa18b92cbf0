"""`mfcc`: our torch MFCCs equal librosa.feature.mfcc; stacking, times, config and edge cases."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audio_signals import SR, speechlike
from extract.audio.logmel import slaney_mel_matrix
from extract.audio.mfcc import SPEC, dct_matrix
from extract.specs import BuildOptions


@pytest.fixture(scope="session")
def librosa():
    """librosa, its MFCC path JIT-compiled once per session (numba, ~15–20 s on first call)."""
    librosa = pytest.importorskip("librosa")
    librosa.feature.mfcc(y=np.zeros(4000, np.float32), sr=SR, n_mfcc=13)
    return librosa


def _build(**config):
    return SPEC.build(BuildOptions(config=config))


def test_filterbank_and_dct_match_librosa_and_scipy():
    import librosa.filters
    import scipy.fft

    for n_fft, n_mels, fmin, fmax in [(1024, 128, 0.0, None), (512, 40, 60.0, 7600.0)]:
        ours = slaney_mel_matrix(n_mels, n_fft, SR, fmin, fmax)
        ref = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(dct_matrix(20, 64), scipy.fft.dct(np.eye(64), type=2, norm="ortho", axis=0)[:20],
                               atol=1e-6)
    assert (slaney_mel_matrix(128, 1024, SR) > 0).sum(1).min() >= 2  # why n_fft=1024 (documented in mfcc.py)


@pytest.mark.parametrize("config", [
    {},
    {"n_mfcc": 20, "n_mels": 64, "n_fft": 512, "win_length": 512, "hop_length": 256, "fmin": 50.0,
     "fmax": 7000.0, "top_db": None},
], ids=["default", "custom"])
def test_coefficients_equal_librosa(librosa, config):
    extractor = _build(**config)
    c = dataclasses.asdict(extractor.config)
    wave = speechlike(3.1)
    ours = extractor.coefficients(wave)
    mel = dict(sr=SR, n_fft=c["n_fft"], win_length=c["win_length"], hop_length=c["hop_length"],
               n_mels=c["n_mels"], fmin=c["fmin"], fmax=c["fmax"])
    if c["top_db"] == 80.0:  # librosa.feature.mfcc's own path (its power_to_db default)
        ref = librosa.feature.mfcc(y=wave, n_mfcc=c["n_mfcc"], **mel).T
    else:
        db = librosa.power_to_db(librosa.feature.melspectrogram(y=wave, **mel), top_db=c["top_db"])
        ref = librosa.feature.mfcc(S=db, n_mfcc=c["n_mfcc"]).T
    assert ours.shape == ref.shape == (1 + wave.size // c["hop_length"], c["n_mfcc"])
    assert np.abs(ours - ref).max() <= 2e-6 * np.abs(ref).max()


def test_stacked_rows_layout_and_times():
    extractor = _build()
    wave = speechlike(2.37, seed=1)
    (out,) = extractor.run([wave], SR)
    frames = extractor.coefficients(wave)
    groups = (1 + wave.size // 160) // 8
    assert out.data.shape == (groups, SPEC.output_shape().dim) == (groups, 1024) and out.data.dtype == np.float32
    np.testing.assert_array_equal(out.data[3], frames[24:32].reshape(-1))  # frame-major concatenation
    assert out.times.dtype == np.float64
    np.testing.assert_allclose(out.times, np.arange(groups) * SPEC.output_shape().frame_step)
    assert SPEC.output_shape().frame_step == pytest.approx(0.08)


def test_batch_equals_one_by_one_and_short_clips():
    extractor = _build()
    waves = [speechlike(1.3, seed=2), np.zeros(0, np.float32), speechlike(0.05), speechlike(0.9, seed=3)]
    outputs = extractor.run(waves, SR)
    assert [o.data.shape[0] for o in outputs] == [(1 + w.size // 160) // 8 for w in waves] == [16, 0, 0, 11]
    for out, wave in zip(outputs, waves):
        (alone,) = extractor.run([wave], SR)
        np.testing.assert_array_equal(out.data, alone.data)
        assert out.data.shape[1] == 1024 and len(out.times) == len(out.data)


def test_config_changes_dim_and_step_and_bad_input_is_rejected():
    extractor = _build(n_mfcc=40, stack=4, hop_length=80)
    assert (extractor.dim, extractor.frame_step) == (160, 0.02)
    (out,) = extractor.run([speechlike(1.0)], SR)
    assert out.data.shape == ((1 + 16000 // 80) // 4, 160)
    with pytest.raises(ValueError, match="n_mfcc"):
        _build(n_mfcc=200)
    with pytest.raises(ValueError, match="unknown option"):
        _build(n_coeffs=13)
    with pytest.raises(ValueError, match="sample rate 8000"):
        _build().run([speechlike(1.0)], 8000)
    with pytest.raises(ValueError, match="clip 1 has shape"):
        _build().run([speechlike(1.0), np.zeros((2, 100), np.float32)], SR)
