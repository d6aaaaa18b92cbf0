"""vggish: log-mel front end vs torchvggish's reference examples, checkpoint layouts, PCA, the feature."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from extract.audio.logmel import VGGISH_MIN_SAMPLES, vggish_examples, vggish_log_mel
from extract.audio.vggish import SPEC
from extract.nets.vggish import VGGish
from extract.specs import BuildOptions

REF = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
KEYS = json.loads((REF / "vggish.keys.json").read_text())


def _speech() -> np.ndarray:
    samples, rate = sf.read(REF / "speech_16k.wav", dtype="int16")
    assert rate == 16000
    return samples / 32768.0


def test_examples_match_torchvggish_reference():
    ours = vggish_examples(_speech())
    ref = np.load(REF / "vggish_examples.npy")[:, 0]
    assert ours.shape == ref.shape == (6, 96, 64)
    assert np.abs(ours - ref).max() <= 1e-4


def test_full_log_mel_matches_reference_float64():
    ours = vggish_log_mel(_speech())
    ref = np.load(REF / "vggish_logmel_full_f64.npy")
    assert ours.shape == ref.shape == (654, 64)
    assert np.abs(ours - ref).max() < 1e-9


def test_short_clip_padded_to_one_example_and_empty_gives_none():
    assert vggish_examples(np.ones(VGGISH_MIN_SAMPLES - 1, np.float32)).shape == (1, 96, 64)
    assert vggish_examples(np.ones(VGGISH_MIN_SAMPLES - 1, np.float32), pad_short=False).shape == (0, 96, 64)
    assert vggish_examples(np.zeros(0, np.float32)).shape == (0, 96, 64)


def test_state_dict_layouts_match_torchvggish():
    full = VGGish(with_pca=True).state_dict()
    assert list(full) == list(KEYS["state_dict"])
    assert {k: list(v.shape) for k, v in full.items()} == KEYS["state_dict"]
    plain = VGGish().state_dict()
    assert {k: list(v.shape) for k, v in plain.items()} == KEYS["weights_file_keys_vggish_pth"]


def test_flatten_is_nhwc_and_output_is_relu():
    torch.manual_seed(0)
    model = VGGish().eval()
    c, h, w = 7, 3, 2
    with torch.no_grad():
        first = model.embeddings[0]
        first.weight[0].zero_()
        first.weight[0, (h * 4 + w) * 512 + c] = 1.0  # TF NHWC flatten index of feature (c, h, w)
        first.bias[0] = 0.0
    seen = {}
    first.register_forward_hook(lambda m, i, o: seen.update(pre=o.clone()))
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        fmap = model.features(x)
        out = model(x)
    assert fmap.shape == (2, 512, 6, 4)
    torch.testing.assert_close(seen["pre"][:, 0], fmap[:, c, h, w])
    assert out.shape == (2, 128) and (out >= 0).all()


def test_pca_postprocess_formula_and_flat_means():
    torch.manual_seed(1)
    model = VGGish(with_pca=True)
    eig, means = torch.randn(128, 128), torch.randn(128)
    model.pproc.load_pca({"pca_eigen_vectors": eig, "pca_means": means})  # flat, as the file may store it
    x = torch.rand(5, 128)
    expected = (eig @ (x.T - means[:, None])).T
    torch.testing.assert_close(model.pproc(x), expected)
    q = model.pproc(x, quantize=True)
    ref_q = torch.round((expected.clamp(-2, 2) + 2) * 255 / 4)
    torch.testing.assert_close(q, ref_q)
    assert q.min() >= 0 and q.max() <= 255 and torch.equal(q, q.round())
    with pytest.raises(KeyError, match="pca_means"):
        model.pproc.load_pca({"pca_eigen_vectors": eig})


# --- the feature, through the weights resolver -------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Random-init checkpoints in the released layouts: vggish/vggish.pth (features+embeddings only)
    and vggish_pca/vggish_pca_params.pth ({pca_eigen_vectors, pca_means flat})."""
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = VGGish().state_dict()
    (root / "vggish").mkdir()
    torch.save(state, root / "vggish" / "vggish-random.pth")
    (root / "vggish_pca").mkdir()
    pca = {"pca_eigen_vectors": torch.linalg.qr(torch.randn(128, 128))[0], "pca_means": torch.randn(128)}
    torch.save(pca, root / "vggish_pca" / "vggish_pca_params-random.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_WEIGHTS_DIR", str(root))
        yield root, state, pca


def _build(config=None, batch_size=64):
    from extract.weights import resolve

    return SPEC.build(BuildOptions(config=config or {}, batch_size=batch_size,
                                   weights_path=str(resolve(SPEC.weights_entries()[0]).path)))


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(3.3 * 16000)) / 16000
    sweep = (0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)).astype(np.float32)
    return [sweep, rng.normal(0, 0.1, 8000).astype(np.float32), np.zeros(0, np.float32),
            rng.normal(0, 0.05, 2 * 16000).astype(np.float32)]


def test_feature_contract_batched_equals_one_by_one(checkpoints):
    extractor = _build(batch_size=3)
    waves = _waves()
    batched = extractor.run(waves, 16000)
    assert [len(o.data) for o in batched] == [3, 1, 0, 2]
    for out in batched:
        assert out.data.dtype == np.float32 and out.data.shape[1:] == (SPEC.output_shape().dim,)
        assert out.times.shape == (len(out.data),)
        np.testing.assert_allclose(np.diff(out.times), SPEC.output_shape().frame_step)
        assert (out.data >= 0).all()
    for wave, whole in zip(waves, batched):
        single = extractor.run([wave], 16000)[0]
        np.testing.assert_allclose(single.data, whole.data, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(single.times, whole.times)


def test_feature_rejects_bad_input_with_clear_errors(checkpoints):
    extractor = _build()
    bad = _waves()[0]
    bad[100] = np.nan
    with pytest.raises(ValueError, match="vggish: clip 1 contains NaN"):
        extractor.run([_waves()[1], bad], 16000)
    with pytest.raises(ValueError, match="sample rate 8000"):
        extractor.run(_waves()[:1], 8000)
    with pytest.raises(ValueError, match="mono"):
        extractor.run([np.zeros((2, 16000), np.float32)], 16000)


def test_pca_options_use_vggish_pca_entry(checkpoints):
    _, _, pca = checkpoints
    raw = _build().run(_waves()[:1], 16000)[0].data
    projected = _build({"postprocess": "pca"}).run(_waves()[:1], 16000)[0].data
    expected = (raw - pca["pca_means"].numpy()) @ pca["pca_eigen_vectors"].numpy().T
    np.testing.assert_allclose(projected, expected, rtol=1e-4, atol=1e-4)
    quantized = _build({"postprocess": "pca_quantized"}).run(_waves()[:1], 16000)[0].data
    assert quantized.min() >= 0 and quantized.max() <= 255 and np.array_equal(quantized, np.round(quantized))
    with pytest.raises(ValueError, match="postprocess"):
        _build({"postprocess": "whiten"})


def test_full_torchvggish_layout_loads_strictly(checkpoints, tmp_path, monkeypatch):
    """A complete torchvggish state_dict (20 tensors incl. pproc.*) also loads; its PCA is used."""
    _, state, pca = checkpoints
    full = dict(state, **{"pproc.pca_eigen_vectors": pca["pca_eigen_vectors"],
                          "pproc.pca_means": pca["pca_means"].reshape(-1, 1)})
    assert {k: list(v.shape) for k, v in full.items()} == KEYS["state_dict"]
    path = tmp_path / "vggish_full.pth"
    torch.save(full, path)
    extractor = SPEC.build(BuildOptions(config={"postprocess": "pca"}, weights_path=str(path)))
    torch.testing.assert_close(extractor.model.pproc.pca_means, full["pproc.pca_means"])
    broken = dict(state)
    broken.pop("embeddings.4.bias")
    torch.save(broken, path)
    with pytest.raises(ValueError, match="embeddings.4.bias"):
        SPEC.build(BuildOptions(config={}, weights_path=str(path)))
