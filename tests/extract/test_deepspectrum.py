"""deepspectrum: dB matrices, pixel-exact images, DenseNet input, DenseNet121 layouts, the feature."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from extract.audio.deepspectrum import SPEC, DeepSpectrumConfig, DeepSpectrumExtractor, normalise, resize_images
from extract.audio.deepspectrum_render import colour_index, geometry, render, render_windows, spectrogram_db
from extract.audio.logmel import slaney_mel_frequencies
from extract.nets.densenet import (KERAS_BN_EPS, DenseNet, convert_keras_h5, densenet121, load_densenet_state,
                                   remap_legacy_keys)
from extract.specs import BuildOptions

REF = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
DENSENET = json.loads((REF / "torchvision_densenet121.keys.json").read_text())
MODES = [("mel", "mel"), ("spectrogram", "spec")]


@pytest.fixture(scope="module")
def window0() -> np.ndarray:
    samples, rate = sf.read(REF / "speech_16k.wav", dtype="float32")
    assert rate == 16000
    return samples[:16000]


@pytest.mark.parametrize("mode,tag", MODES)
def test_db_matrix_matches_reference(window0, mode, tag):
    ours = spectrogram_db(window0[None], 16000, mode)[0]
    ref = np.load(REF / f"deepspectrum_{tag}_w0_db.npy")
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-3


@pytest.mark.parametrize("mode,tag", MODES)
def test_image_is_pixel_exact(window0, mode, tag):
    ours = render_windows(window0[None], 16000, mode)[0]
    png = np.asarray(Image.open(REF / f"deepspectrum_{tag}_w0.png").convert("RGB"))
    assert ours.shape == png.shape == (227, 227, 3)
    assert np.array_equal(ours, png)
    # the renderer alone, from the captured matrix
    ref_db = np.load(REF / f"deepspectrum_{tag}_w0_db.npy")
    assert np.array_equal(render(ref_db[None], geometry(mode, 16000, 16000))[0], png)


def test_mel_axis_is_symlog():
    rows = geometry("mel", 16000, 16000).rows
    centres = slaney_mel_frequencies(128, 0.0, 8000.0)
    edges = np.append(np.maximum(0.0, centres - np.diff(centres, prepend=0.0) / 2), 8000.0)
    below_1k = (edges[rows + 1] <= 1000.0).sum()  # rows whose band lies entirely below 1 kHz
    assert abs(below_1k / 227 - 0.4) < 0.01  # 0-1 kHz takes the bottom 40 % of the image
    assert rows[0] == 127 and rows[-1] == 0 and (np.diff(rows) <= 0).all()


def test_batch_equals_single_and_silence_is_dark():
    rng = np.random.default_rng(0)
    windows = rng.normal(0, 0.1, (3, 16000)).astype(np.float32)
    windows[1] = 0.0
    batch = render_windows(windows, 16000, "mel")
    for i in range(3):
        assert np.array_equal(batch[i], render_windows(windows[i:i + 1], 16000, "mel")[0])
    assert (colour_index(spectrogram_db(windows[1:2], 16000, "mel")) == 0).all()
    assert (batch[1] == np.array([68, 1, 84], np.uint8)).all()  # viridis index 0


@pytest.mark.parametrize("tag", ["mel", "spec"])
def test_densenet_input_matches_keras_preprocessing(tag):
    png = np.asarray(Image.open(REF / f"deepspectrum_{tag}_w0.png").convert("RGB"))
    ours = normalise(resize_images(png[None])).permute(0, 2, 3, 1).numpy()
    ref = np.load(REF / f"deepspectrum_{tag}_w0_densenet_input.npy")
    assert ours.shape == ref.shape == (1, 224, 224, 3)
    assert np.abs(ours - ref).max() == 0.0


# --- DenseNet121 -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def net_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = densenet121()
    with torch.no_grad():  # non-trivial BN statistics so that eps and stats matter
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.state_dict()


def test_densenet_layout_matches_torchvision(net_state):
    assert list(net_state) == list(DENSENET["state_dict"])
    assert {k: list(v.shape) for k, v in net_state.items()} == DENSENET["state_dict"]
    assert sum(p.numel() for p in densenet121().parameters()) == DENSENET["num_params_trainable"]


def test_legacy_names_without_batch_counters_load(net_state):
    legacy = DENSENET["legacy_checkpoint_key_names"]["map"]
    old = {legacy.get(k, k): v for k, v in net_state.items() if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    assert remap_legacy_keys(old).keys() <= net_state.keys()
    model = densenet121()
    with pytest.raises(ValueError, match="legacy.pth"):
        load_densenet_state(model, {k: v for k, v in old.items() if "norm5" not in k}, "legacy.pth")
    load_densenet_state(model, old, "legacy.pth")
    loaded = model.state_dict()
    for key, value in net_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), key


def test_buffer_path_equals_concatenation_path():
    """Inference writes layer outputs into one buffer; with autograd on, plain concatenation is used."""
    torch.manual_seed(0)
    model = DenseNet(block_config=(2, 3, 2, 2), growth=8, init_features=16, bn_size=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        fast = model.embed(x)
    with torch.enable_grad():
        slow = model.embed(x)
    assert fast.shape == (2, model.num_features) and (fast >= 0).all()
    torch.testing.assert_close(fast, slow.detach(), rtol=1e-5, atol=1e-6)


def _keras_layer(key: str) -> tuple[str, str]:
    """Our key -> (Keras layer, weight) — the inverse of the converter's mapping, for a synthetic file."""
    module, param = key.rsplit(".", 1)
    bn = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
    fixed = {"features.conv0": "conv1/conv", "features.norm0": "conv1/bn", "features.norm5": "bn",
             "classifier": "fc1000"}
    if module in fixed:
        layer = fixed[module]
    elif ".transition" in module:
        t, part = module.split(".")[1:]
        layer = f"pool{int(t[-1]) + 1}_{'bn' if part == 'norm' else 'conv'}"
    else:
        block, dense, part = module.split(".")[1:]
        suffix = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}[part]
        layer = f"conv{int(block[-1]) + 1}_block{dense[len('denselayer'):]}_{suffix}"
    is_bn = layer.endswith("bn")
    return layer, bn[param] if is_bn else ("kernel" if param == "weight" else "bias")


def test_keras_h5_converter_round_trip(net_state, tmp_path):
    path = tmp_path / "densenet121_keras.h5"
    layers: dict[str, list[tuple[str, np.ndarray]]] = {}
    for key, value in net_state.items():
        if key.endswith("num_batches_tracked"):
            continue
        layer, weight = _keras_layer(key)
        array = value.numpy()
        if weight == "kernel":
            array = array.transpose(2, 3, 1, 0) if array.ndim == 4 else array.T
        layers.setdefault(layer, []).append((f"{layer}/{weight}:0", array))
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in ["input_1", *layers]]
        f.create_group("input_1").attrs["weight_names"] = []
        for layer, weights in layers.items():
            group = f.create_group(layer)
            group.attrs["weight_names"] = [n.encode() for n, _ in weights]
            for name, array in weights:
                group.create_dataset(name, data=array)
    model = load_densenet_state(densenet121(bn_eps=KERAS_BN_EPS), convert_keras_h5(path), str(path))
    assert model.features.norm0.eps == KERAS_BN_EPS
    for key, value in net_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(model.state_dict()[key], value), key


# --- the feature, through the weights resolver ---------------------------------------------------

@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, net_state):
    """A random-init checkpoint with the released file's legacy key names in $ERI_WEIGHTS_DIR/densenet121/."""
    root = tmp_path_factory.mktemp("weights")
    legacy = DENSENET["legacy_checkpoint_key_names"]["map"]
    (root / "densenet121").mkdir()
    torch.save({legacy.get(k, k): v for k, v in net_state.items()}, root / "densenet121" / "densenet121-random.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_WEIGHTS_DIR", str(root))
        yield root


def _build(config=None, batch_size=64):
    from extract.weights import resolve

    return SPEC.build(BuildOptions(config=config or {}, batch_size=batch_size,
                                   weights_path=str(resolve(SPEC.weights_entries()[0]).path)))


def test_feature_contract_through_resolver(weights_dir):
    extractor = _build(batch_size=2)
    rng = np.random.default_rng(1)
    t = np.arange(int(1.6 * 16000)) / 16000
    waves = [(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rng.normal(0, 0.1, 5000).astype(np.float32),
             np.zeros(0, np.float32)]
    outputs = extractor.run(waves, 16000)
    assert [len(o.data) for o in outputs] == [2, 1, 0]
    for out in outputs:
        assert out.data.dtype == np.float32 and out.data.shape[1:] == (SPEC.output_shape().dim,)
        np.testing.assert_allclose(out.times, np.arange(len(out.data)) * SPEC.output_shape().frame_step)
        assert np.isfinite(out.data).all() and (out.data >= 0).all()


def test_batched_equals_one_by_one():
    """Windows of many clips share forward passes; results equal clip-by-clip runs (tiny DenseNet)."""
    torch.manual_seed(0)
    tiny = DenseNet(block_config=(1, 1, 1, 1), growth=8, init_features=16, bn_size=2)
    extractor = DeepSpectrumExtractor(tiny, DeepSpectrumConfig(), batch_size=4)
    rng = np.random.default_rng(2)
    waves = [rng.normal(0, 0.1, n).astype(np.float32) for n in (int(3.2 * 16000), 5000, 0, 24000, 16000)]
    batched = extractor.run(waves, 16000)
    assert [len(o.data) for o in batched] == [5, 1, 0, 2, 1]
    for wave, whole in zip(waves, batched):
        single = extractor.run([wave], 16000)[0]
        np.testing.assert_allclose(single.data, whole.data, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(single.times, whole.times)
    waves[3][5] = np.inf
    with pytest.raises(ValueError, match="deepspectrum: clip 3 contains NaN or infinite"):
        extractor.run(waves, 16000)


def test_feature_config_modes_and_errors(weights_dir, window0):
    linear = _build({"mode": "linear", "window": 1.0, "hop": 1.0})
    assert linear.config.mode == "spectrogram"
    png = np.asarray(Image.open(REF / "deepspectrum_spec_w0.png").convert("RGB"))
    assert np.array_equal(linear.images(linear.windows(window0)), png[None])
    with pytest.raises(ValueError, match="mode"):
        _build({"mode": "chroma"})
    with pytest.raises(ValueError, match="unknown option"):
        _build({"colormap": "magma"})
