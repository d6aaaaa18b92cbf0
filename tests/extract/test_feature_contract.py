"""Contract of every registered feature, under its default config and each of its `examples`.

For each (spec, config) the spec's weights are made by the spec itself (random-initialised
checkpoints in the official layouts, `spec.make_random_weights`) or, for real models that only
exist as files (BlazeFace), taken from their pinned PyPI wheel; then the extractor runs on
generated input of its kind (16 kHz audio, face crops of a real photograph, decoded frames of a
generated real-face clip) and its output must be what `spec.output_shape(config, weights)`
declares: row shape, dtype, extras and their widths, one row per sampled frame or rows every
`frame_step` seconds covering the clip, finite values, float64 times inside the clip. Clips batched
together must give what each gives alone. No test here names a feature: adding one to the registry
adds its cases.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from audio_signals import SR, speechlike
from extract.catalog import catalog
from extract.specs import BuildOptions, FeatureSpec, OutputShape

CROP_COUNTS = (1, 2, 0, 3)  # frames per clip: batches of 2 span clips; one clip has none
CROP = 224  # the default cached crop side; backbones resize to their own input size


def _cases() -> list:
    cases = []
    for spec in catalog():
        for k, config in enumerate(({}, *spec.examples)):
            label = "default" if not k else ",".join(f"{key}={value}" for key, value in config.items())
            slow = spec.weights is not None and spec.input == "audio"  # big random networks on audio windows
            cases.append(pytest.param(spec, config, id=f"{spec.name}[{label}]",
                                      marks=[pytest.mark.slow] if slow else []))
    return cases


@pytest.fixture
def weights_for(tmp_path, monkeypatch, wheel_weights):
    """weights_for(spec, config) -> {entry: path}, every entry resolvable from a temporary $ERI_WEIGHTS_DIR."""
    from extract.weights import resolve

    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))

    def make(spec: FeatureSpec, config: dict) -> dict[str, str]:
        entries = spec.weights_entries(config)
        if spec.random_weights is not None:
            spec.make_random_weights(root, config)
        else:
            for entry in entries:  # real model files (no random stand-in exists for them)
                (root / entry).mkdir(exist_ok=True)
                shutil.copy2(wheel_weights(entry), root / entry)
        return {entry: str(resolve(entry).path) for entry in entries}
    return make


def _build(spec: FeatureSpec, config: dict, weights: dict[str, str], batch_size: int = 2):
    first = next(iter(weights.values()), None)
    return spec.build(BuildOptions(config=spec.config_with(config), batch_size=batch_size,
                                   weights_path=first, weights=weights))


def _face_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
    from PIL import Image
    from skimage.data import astronaut

    face = astronaut()[30:200, 140:310]  # the astronaut's head with some margin
    rng = np.random.default_rng(0)
    crops, times = [], []
    for clip, n in enumerate(CROP_COUNTS):
        frames = []
        for _ in range(n):
            dx, dy = rng.integers(-12, 13, size=2)
            shifted = np.roll(face, (dy, dx), axis=(0, 1)).astype(np.float32) * rng.uniform(0.7, 1.2)
            img = Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)).resize((CROP, CROP), Image.BILINEAR)
            frames.append(np.asarray(img))
        crops.append(np.stack(frames) if frames else np.zeros((0, CROP, CROP, 3), np.uint8))
        times.append(0.5 * clip + 0.2 * np.arange(n, dtype=np.float64))
    return crops, times


def _waves() -> list[np.ndarray]:
    noise = np.random.default_rng(7).normal(0, 0.05, int(1.3 * SR)).astype(np.float32)
    return [speechlike(2.3, seed=1), speechlike(1.6, seed=2), noise]


def _run(spec: FeatureSpec, extractor, sample_clip):
    """(outputs, inputs, durations, per-input runner) for the spec's input kind."""
    if spec.input == "audio":
        waves = _waves()
        return extractor.run(waves, SR), waves, [w.size / SR for w in waves], lambda w: extractor.run([w], SR)[0]
    if spec.input == "faces":
        crops, times = _face_crops()
        inputs = list(zip(crops, times))
        durations = [float(t[-1]) + 0.2 if len(t) else 0.0 for t in times]
        return extractor.run(crops, times), inputs, durations, lambda ct: extractor.run([ct[0]], [ct[1]])[0]
    from extract.media import Sampling, decode_frames

    frames = [decode_frames(sample_clip.path, Sampling(fps=5)), decode_frames(sample_clip.path, Sampling(frames=4))]
    return extractor.run(frames), frames, [f.duration for f in frames], lambda f: extractor.run([f])[0]


def _check_output(spec: FeatureSpec, declared: OutputShape, out, duration: float, given_times=None) -> None:
    rows = len(out.data)
    assert out.data.dtype == np.dtype(declared.dtype), (out.data.dtype, declared.dtype)
    assert out.data.shape == (rows, *declared.row), (out.data.shape, declared.row)
    if out.data.dtype.kind == "f":
        assert np.isfinite(out.data).all()
    assert out.times.dtype == np.float64 and out.times.shape == (rows,)
    if given_times is not None:  # face backbones keep the sampled frames' times
        np.testing.assert_array_equal(out.times, given_times)
    elif rows:
        assert out.times[0] >= 0 and out.times[-1] < duration + 1e-6
        assert (np.diff(out.times) > 0).all()
    if spec.clip_level:
        assert rows == 1
    elif declared.frame_step is not None and rows:
        np.testing.assert_allclose(np.diff(out.times), declared.frame_step, atol=1e-6)
        assert abs(rows * declared.frame_step - duration) <= max(1.1, 2 * declared.frame_step), (rows, duration)
    assert set(out.extras) == set(declared.extras)
    for name, width in declared.extras.items():
        assert out.extras[name].shape == (rows, width), name
        if out.extras[name].dtype.kind == "f":
            assert np.isfinite(out.extras[name]).all(), name


@pytest.mark.parametrize("spec,config", _cases())
def test_output_is_what_the_spec_declares(spec: FeatureSpec, config: dict, weights_for, sample_clip):
    json.dumps(spec.config_with(config))  # the config goes into fingerprints and spec.json
    weights = weights_for(spec, config)
    declared = spec.output_shape(config, weights)
    extractor = _build(spec, config, weights)
    outputs, inputs, durations, alone = _run(spec, extractor, sample_clip)
    assert len(outputs) == len(inputs)
    for out, item, duration in zip(outputs, inputs, durations):
        given = item[1] if spec.input == "faces" else None
        _check_output(spec, declared, out, duration, given)
    assert any(len(o.data) for o in outputs)
    for out, item in zip(outputs, inputs):  # batched across clips == one clip at a time
        single = alone(item)
        if out.data.dtype.kind == "f":
            scale = max(1.0, float(np.abs(single.data).max(initial=0.0)))
            np.testing.assert_allclose(out.data, single.data, rtol=1e-4, atol=1e-4 * scale)
        else:
            np.testing.assert_array_equal(out.data, single.data)
        np.testing.assert_array_equal(out.times, single.times)


def test_examples_change_what_they_claim_to():
    """Every example config is valid and differs from the default in its output shape, step or weights
    (otherwise it is no example of anything)."""
    for spec in catalog():
        default = (spec.output_shape(), spec.weights_entries())
        for config in spec.examples:
            spec.resolve_config(config)
            assert (spec.output_shape(config), spec.weights_entries(config)) != default or \
                spec.config_with(config) != spec.default_config, (spec.name, config)


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in catalog() if s.input == "audio"])
def test_empty_and_tiny_clips_do_not_break_a_batch(spec: FeatureSpec, weights_for):
    weights = weights_for(spec, {})
    extractor = _build(spec, {}, weights)
    outputs = extractor.run([np.zeros(0, np.float32), speechlike(0.02), speechlike(1.2, seed=3)], SR)
    declared = spec.output_shape({}, weights)
    assert len(outputs) == 3
    for out in outputs:
        assert out.data.shape[1:] == declared.row and len(out.times) == len(out.data)
    assert len(outputs[2].data) >= 1


def test_unknown_and_invalid_options_name_the_feature():
    for spec in catalog():
        with pytest.raises(ValueError, match=f"{spec.name}: unknown option"):
            spec.resolve_config({"no_such_option": 1})
    mfcc = catalog().get("mfcc")
    with pytest.raises(ValueError, match="mfcc: n_mfcc"):
        mfcc.resolve_config({"n_mfcc": 200})
    assert mfcc.output_shape({"n_mfcc": 40}).row == (320,)
    assert mfcc.config_with({"fmin": 0}) == mfcc.config_with({"fmin": 0.0})  # one fingerprint for 0 and 0.0


def test_catalog_lists_every_modality_with_valid_specs():
    registry = catalog()
    assert {"mfcc", "egemaps", "egemaps_lld", "wav2vec2", "vggish", "deepspectrum"} <= set(registry.names("audio"))
    assert {"faces", "resnet18_affectnet", "posterv2", "fer_minixception"} <= set(registry.names("video"))
    from extract.weights import get_entry

    for spec in registry:
        assert all(d in registry for d in spec.requires)
        for config in ({}, *spec.examples):
            for entry in spec.weights_entries(config):
                get_entry(entry)  # raises for an entry the weights registry does not know
