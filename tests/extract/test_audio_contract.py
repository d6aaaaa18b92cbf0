"""Contract of every registered audio feature (modality "audio", input "audio").

Each spec is built (with a random-initialised checkpoint in its official layout where it needs
weights, resolved through extract.weights from a temporary $ERI_WEIGHTS_DIR) and run on generated
16 kHz audio of several lengths. Its output must match what the spec declares: `dim`, `extras`,
frame step (row times every `frame_step` seconds, rows covering the clip) or one row per clip,
float32 data, float64 times inside the clip, finite values. Clips batched together must give what
each gives alone, and an empty clip must not break a batch.
"""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from audio_signals import SR, speechlike
from extract import catalog as catalog_module
from extract.specs import BuildOptions, FeatureSpec


def _audio(spec: FeatureSpec) -> bool:
    return spec.modality == "audio"


def _param(spec: FeatureSpec):
    # networks with random weights on a shared 2-core CPU: 10–70 s each (a DenseNet per window…)
    return pytest.param(spec, id=spec.name, marks=[pytest.mark.slow] if spec.weights else [])


def _spec_params() -> list:
    try:
        return [_param(s) for s in catalog_module.catalog() if _audio(s)]
    except Exception:  # some listed module is not importable yet: go module by module
        pass
    params = []
    for module_name in catalog_module.FEATURE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if module_name.startswith("extract.audio."):
                params.append(pytest.param(None, id=module_name, marks=pytest.mark.skip(
                    reason=f"{module_name} is not importable yet: {exc}")))
            continue
        params += [_param(s) for s in getattr(module, "SPECS", (module.SPEC,)) if _audio(s)]
    return params


def _make_checkpoint(entry: str, root) -> bool:
    """Write a random-initialised checkpoint for a weights entry into root/<entry>/; False if unknown."""
    import torch

    torch.manual_seed(0)
    folder = root / entry
    if entry == "wav2vec2_base":  # a Hugging Face directory; default config = the base architecture
        import transformers

        transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).save_pretrained(folder)
        return True
    if entry == "vggish":
        from extract.nets.vggish import VGGish
        state = VGGish().state_dict()
    elif entry == "densenet121":
        from extract.nets.densenet import densenet121
        state = densenet121().state_dict()
    else:
        return False
    folder.mkdir()
    torch.save(state, folder / f"{entry}-random.pth")
    return True


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_WEIGHTS_DIR", str(root))
        yield root


def _build(spec: FeatureSpec, root, batch_size: int = 2):
    path = None
    if spec.weights is not None:
        from extract.weights import resolve

        if not (root / spec.weights).exists() and not _make_checkpoint(spec.weights, root):
            try:
                resolve(spec.weights)
            except Exception as exc:  # noqa: BLE001 — any reason means "cannot run this spec here"
                pytest.skip(f"{spec.name}: no checkpoint maker here and weights {spec.weights!r} "
                            f"unavailable ({exc})")
        path = str(resolve(spec.weights).path)
    return spec.build(BuildOptions(config=spec.config_with(), batch_size=batch_size, weights_path=path))


def _waves() -> list[np.ndarray]:
    noise = np.random.default_rng(7).normal(0, 0.05, int(1.3 * SR)).astype(np.float32)
    return [speechlike(2.3, seed=1), speechlike(1.6, seed=2), noise]


@pytest.mark.parametrize("spec", _spec_params())
def test_audio_feature_matches_its_spec(spec: FeatureSpec, weights_root):
    assert spec.input == "audio" and spec.dtype == "float32"
    json.dumps(spec.default_config)  # goes into the fingerprint
    extractor = _build(spec, weights_root)
    waves = _waves()
    outputs = extractor.run(waves, SR)
    assert len(outputs) == len(waves)
    for out, wave in zip(outputs, waves):
        duration = wave.size / SR
        rows = len(out.data)
        assert out.data.dtype == np.float32 and out.data.shape == (rows, spec.dim), spec.name
        assert np.isfinite(out.data).all()
        assert out.times.dtype == np.float64 and out.times.shape == (rows,)
        assert rows >= 1 and out.times[0] >= 0 and out.times[-1] < duration
        assert (np.diff(out.times) > 0).all()
        if spec.clip_level:
            assert rows == 1
        elif spec.frame_step is not None:
            np.testing.assert_allclose(np.diff(out.times), spec.frame_step, atol=1e-6)
            assert abs(rows * spec.frame_step - duration) <= max(1.1, 2 * spec.frame_step), (rows, duration)
        assert set(out.extras) == set(spec.extras)
        for name, dim in spec.extras.items():
            assert out.extras[name].dtype == np.float32 and out.extras[name].shape == (rows, dim), name

    for out, wave in zip(outputs, waves):  # batched across clips == one clip at a time
        (alone,) = extractor.run([wave], SR)
        scale = max(1.0, float(np.abs(alone.data).max(initial=0.0)))
        np.testing.assert_allclose(out.data, alone.data, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_array_equal(out.times, alone.times)


@pytest.mark.parametrize("spec", _spec_params())
def test_empty_and_tiny_clips_do_not_break_a_batch(spec: FeatureSpec, weights_root):
    extractor = _build(spec, weights_root)
    waves = [np.zeros(0, np.float32), speechlike(0.02), speechlike(1.2, seed=3)]
    outputs = extractor.run(waves, SR)
    assert len(outputs) == 3
    for out in outputs:
        assert out.data.ndim == 2 and out.data.shape[1] == spec.dim and len(out.times) == len(out.data)
    assert len(outputs[2].data) >= 1


def test_catalog_lists_the_audio_features():
    try:
        registry = catalog_module.catalog()
    except ImportError as exc:
        pytest.skip(f"catalog not importable yet: {exc}")
    names = set(registry.names("audio"))
    assert {"mfcc", "egemaps", "egemaps_lld", "wav2vec2"} <= names
    assert all(registry.get(n).input == "audio" for n in names)
