"""`wav2vec2`: checkpoint layout and loading, equality with transformers' own forward, chunked ==
unchunked on 60 s, batched == one by one, for both feature-encoder norms (group: wav2vec2-base;
layer: large/lv60 style). Tiny random models: hidden 32, 2 layers, base conv kernels/strides."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_signals import SR, speechlike
from extract.audio.wav2vec2 import SPEC, load_model
from extract.specs import BuildOptions

transformers = pytest.importorskip("transformers")
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "wav2vec2_base.keys.json"
NORMS = ("group", "layer")


def _tiny_config(norm: str):
    """group: as wav2vec2-base (GroupNorm after the first conv, post-LN transformer); layer: as
    large-lv60 (LayerNorm after every conv, pre-LN); group_bias: group with conv biases."""
    return transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
        num_conv_pos_embedding_groups=16, feat_extract_norm=norm.split("_")[0],
        do_stable_layer_norm=norm == "layer", conv_bias=norm.endswith("bias"))


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """$ERI_WEIGHTS_DIR with wav2vec2_base/ = the tiny group-norm model, beside the other variants."""
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for norm in NORMS + ("group_bias",):
        transformers.Wav2Vec2Model(_tiny_config(norm)).save_pretrained(_path(root, norm))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_WEIGHTS_DIR", str(root))
        yield root


def _path(root: Path, norm: str) -> Path:
    return root / ("wav2vec2_base" if norm == "group" else norm)


def _build(root: Path, norm: str, batch_size: int = 64, **config):
    return SPEC.build(BuildOptions(config=config, batch_size=batch_size, weights_path=str(_path(root, norm))))


def _reference(model, wave: np.ndarray) -> list[torch.Tensor]:
    """transformers' forward on one unpadded, normalised clip: hidden states 0..L, last = last_hidden_state."""
    x = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
    with torch.inference_mode():
        out = model(torch.from_numpy(x.astype(np.float32))[None], output_hidden_states=True)
    return [h[0] for h in out.hidden_states[:-1]] + [out.last_hidden_state[0]]


def test_default_config_has_the_reference_layout():
    ref = json.loads(REFERENCE.read_text())
    with torch.device("meta"):
        model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config())
    state = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(state.items()) == list(ref["state_dict"].items())
    assert len(state) == ref["num_tensors"] == 211
    assert sum(int(np.prod(s)) for s in state.values()) == ref["num_params"]


def test_resolver_finds_the_checkpoint_directory(weights_root):
    from extract.weights import resolve

    resolved = resolve(SPEC.weights_entries()[0])
    assert resolved.path == weights_root / "wav2vec2_base"
    extractor = SPEC.build(BuildOptions(config={}, weights_path=str(resolved.path)))
    assert (extractor.dim, extractor.frame_step) == (32, 0.02)
    assert SPEC.build(BuildOptions(config={})).dim == 32  # no path given: resolved by the factory


def test_legacy_pretraining_checkpoint_loads(weights_root, tmp_path):
    """facebook/wav2vec2-base ships pytorch_model.bin from Wav2Vec2ForPreTraining: 'wav2vec2.' prefix,
    weight_g/weight_v for the positional conv, extra quantizer/projection tensors."""
    source = load_model(_path(weights_root, "group"))
    state = {}
    for key, value in source.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        state["wav2vec2." + key] = value.clone()
    state["quantizer.codevectors"] = torch.zeros(1, 640, 128)
    state["project_q.weight"] = torch.zeros(256, 256)
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in state
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    _tiny_config("group").to_json_file(legacy / "config.json")
    torch.save(state, legacy / "pytorch_model.bin")
    loaded = load_model(legacy)
    for (k, a), (k2, b) in zip(source.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_incomplete_or_missing_checkpoint_is_a_clear_error(weights_root, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((_path(weights_root, "group") / "config.json").read_bytes())
    state = load_file(_path(weights_root, "group") / "model.safetensors")
    del state["encoder.layers.1.attention.q_proj.weight"]
    save_file(state, broken / "model.safetensors")
    with pytest.raises(ValueError, match="q_proj"):
        load_model(broken)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("layer", [0, 1, -1, "mean", [1, 2]], ids=str)
def test_equals_transformers_forward(weights_root, norm, layer):
    extractor = _build(weights_root, norm, layer=layer)
    wave = speechlike(2.0, seed=1)
    states = _reference(extractor.model, wave)
    chosen = {"mean": states, -1: states[-1:]}.get(layer if not isinstance(layer, list) else None)
    if chosen is None:
        chosen = [states[k] for k in (layer if isinstance(layer, list) else [layer])]
    expected = torch.stack(chosen).mean(0).numpy()
    (out,) = extractor.run([wave], SR)
    assert out.data.dtype == np.float32 and out.data.shape == expected.shape == (99, 32)
    np.testing.assert_allclose(out.data, expected, atol=2e-5)


@pytest.mark.parametrize("norm", NORMS + ("group_bias",))
def test_chunked_equals_unchunked_on_60_s(weights_root, norm):
    wave = speechlike(60.0, seed=2)
    chunked = _build(weights_root, norm, chunk_seconds=20.0).run([wave], SR)[0]
    whole = _build(weights_root, norm, chunk_seconds=None).run([wave], SR)[0]
    reference = _reference(_build(weights_root, norm).model, wave)[-1].numpy()
    frames = (wave.size - 400) // 320 + 1
    assert chunked.data.shape == whole.data.shape == reference.shape == (frames, 32)
    assert np.abs(chunked.data - whole.data).max() <= 1e-4
    assert np.abs(chunked.data - reference).max() <= 1e-4
    np.testing.assert_allclose(chunked.times, 0.02 * np.arange(frames))


@pytest.mark.parametrize("norm", NORMS)
def test_batched_equals_one_by_one(weights_root, norm):
    """Different lengths in one padded batch, pieces of several clips mixed (chunk 1 s, batch 3)."""
    extractor = _build(weights_root, norm, batch_size=3, chunk_seconds=1.0)
    waves = [speechlike(s, seed=i) for i, s in enumerate([3.3, 0.8, 2.05, 5.0])]
    waves += [np.zeros(399, np.float32), speechlike(400 / SR), np.zeros(0, np.float32)]
    outputs = extractor.run(waves, SR)
    assert [len(o.data) for o in outputs] == [max(0, (w.size - 400) // 320 + 1) for w in waves]
    for out, wave in zip(outputs, waves):
        (alone,) = extractor.run([wave], SR)
        assert out.data.shape == alone.data.shape and out.data.shape[1] == 32
        np.testing.assert_allclose(out.data, alone.data, atol=1e-5)
        np.testing.assert_allclose(out.times, 0.02 * np.arange(len(out.data)))
        if wave.size >= 400 and wave.std() > 0:
            np.testing.assert_allclose(out.data, _reference(extractor.model, wave)[-1].numpy(), atol=2e-5)


def test_frame_count_formula(weights_root):
    from extract.audio.windows import conv_output_length, receptive_field

    model = load_model(_path(weights_root, "group"))
    kernels, strides = model.config.conv_kernel, model.config.conv_stride
    assert receptive_field(kernels, strides) == (400, 320)
    for n in [0, 399, 400, 719, 720, 16000, 32000, 48000, 104997] + list(range(401, 3000, 37)):
        expected = max(0, (n - 400) // 320 + 1)
        assert conv_output_length(n, kernels, strides) == expected, n
        if n >= 400:
            assert int(model._get_feat_extract_output_lengths(n)) == expected, n


def test_normalisation_matches_wav2vec2_feature_extractor(weights_root):
    extractor = _build(weights_root, "group")
    wave = speechlike(1.5, seed=3) * 3 + 0.2
    expected = transformers.Wav2Vec2FeatureExtractor()(wave, sampling_rate=SR).input_values[0]
    np.testing.assert_allclose(extractor._normalize(wave), expected, atol=1e-5)
    raw = _build(weights_root, "group", normalize=False)
    np.testing.assert_array_equal(raw._normalize(wave), wave)


def test_bad_config_and_input(weights_root):
    with pytest.raises(ValueError, match="layer must be"):
        _build(weights_root, "group", layer=3)
    with pytest.raises(ValueError, match="layer must be"):
        _build(weights_root, "group", layer="first")
    extractor = _build(weights_root, "group")
    with pytest.raises(ValueError, match="sample rate 22050"):
        extractor.run([speechlike(1.0)], 22050)
    with pytest.raises(ValueError, match="NaN"):
        extractor.run([np.full(1000, np.nan, np.float32)], SR)
