"""POSTER V2: official 7/8-class layouts (strict), structure of the forward pass, the `posterv2` feature.

Layouts come from ../shared/reference/posterv2_{7,8}cls.keys.json (built from Talented-Q/POSTER_V2).
No real checkpoint exists on this machine: the tests save random-initialised ones in the official
layout (a plain state_dict, and the training checkpoint main.py writes: `module.` keys plus pickled
training objects, brought in with `eri-weights import`) and load them through the resolver and
`SPEC.build`. POSTER V2 is heavy on CPU: 1-2 frames per forward.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from extract.nets.posterv2 import (HEADS, WINDOWS, LandmarkWindowAttention, PosterV2, num_classes_of,
                                   posterv2_from_state_dict, relative_position_index)
from extract.nets.strict import CheckpointMismatch
from extract.specs import BuildOptions
from extract.video.backbone import prepare_crops
from extract.video.posterv2 import FEATURE_DIM, SPEC

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _reference(classes: int) -> dict:
    path = REFERENCE / f"posterv2_{classes}cls.keys.json"
    if not path.exists():
        pytest.skip(f"{path} not found (the CI checkout has shared/ beside the repo)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def models() -> dict[int, PosterV2]:
    torch.manual_seed(0)
    return {n: PosterV2(n).eval() for n in (7, 8)}


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)


@pytest.mark.parametrize("classes", [7, 8])
def test_layout_matches_official_checkpoint(models, classes):
    ref = _reference(classes)
    sd = models[classes].state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [(k, v) for k, v in ref["state_dict"].items()]
    assert len(sd) == ref["num_tensors"] == 747
    assert sum(v.numel() for v in sd.values()) == ref["num_elements_total"]
    assert sum(p.numel() for p in models[classes].parameters()) == ref["num_params"]
    buffers = [name for name, _ in models[classes].named_buffers()]
    assert buffers == ref["buffers"]


def test_param_count_7cls(models):
    assert sum(p.numel() for p in models[7].parameters()) == 58_316_594


def test_relative_position_index():
    for window in WINDOWS:
        idx = relative_position_index(window)
        n = window * window
        assert idx.shape == (n, n) and idx.dtype == torch.int64
        assert int(idx.min()) == 0 and int(idx.max()) == (2 * window - 1) ** 2 - 1
        centre = (window - 1) * (2 * window - 1) + (window - 1)  # offset (0, 0)
        assert torch.all(idx.diagonal() == centre)
        assert torch.all(idx + idx.T == 2 * centre)  # offset (dy, dx) mirrors to (-dy, -dx)
    # cell 0 = (0, 0), cell 1 = (0, 1): dx = -1 → centre - 1; cell `window` = (1, 0): dy = -1
    idx = relative_position_index(7)
    assert idx[0, 1] == 84 - 1 and idx[0, 7] == 84 - 13


@pytest.mark.parametrize("dim,heads,window", list(zip((64, 128, 256), HEADS, WINDOWS)))
def test_window_attention_matches_explicit_formula(dim, heads, window):
    torch.manual_seed(1)
    attn = LandmarkWindowAttention(dim, heads, window).eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
    n, hd = window * window, dim // heads
    x, lm = torch.randn(2, n, dim), torch.randn(2, n, dim)
    with torch.inference_mode():
        got = attn(x, lm)
        kv = attn.qkv(x)
        k, v = kv[..., :dim], kv[..., dim:]  # qkv yields (k, v), heads are contiguous channel chunks
        expect = []
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1), h].view(n, n)
            scores = (lm[..., sl] * hd ** -0.5) @ k[..., sl].transpose(1, 2) + bias
            expect.append(torch.softmax(scores, dim=-1) @ v[..., sl])
        expect = attn.proj(torch.cat(expect, dim=-1))
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


def test_embedding_is_the_input_of_the_head(models):
    model = models[7]
    x = torch.randn(2, 3, 224, 224)
    seen = []
    handle = model.VIT.head.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    try:
        with torch.inference_mode():
            logits = model(x)
            emb, logits2 = model.embed_and_logits(x)
            by_head = model.VIT.head.linear(emb)
    finally:
        handle.remove()
    assert emb.shape == (2, FEATURE_DIM) and logits.shape == (2, 7)
    torch.testing.assert_close(seen[0], emb, rtol=0, atol=1e-6)
    torch.testing.assert_close(by_head, logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=1e-6)


def test_trunks_see_every_second_pixel(models):
    """F.interpolate(size=112, nearest) of a 224 input keeps pixels 0, 2, 4, …: odd rows/columns are ignored."""
    model = models[8]
    x = torch.randn(1, 3, 224, 224)
    y = x.clone()
    y[:, :, 1::2, :] = torch.randn_like(y[:, :, 1::2, :])
    y[:, :, :, 1::2] = 5.0
    with torch.inference_mode():
        torch.testing.assert_close(model.forward_features(x), model.forward_features(y), rtol=0, atol=0)


def test_unused_modules_get_no_gradient(models):
    """Exactly the parameters of the modules the reference lists as never called (plus the landmark
    regressor, whose output the official forward discards and we skip) are left out of the computation."""
    ref = _reference(7)
    model = models[7]
    skipped = tuple(ref["modules_with_params_never_called_in_forward"]) + ("face_landback.output_layer",)
    try:
        model(torch.randn(1, 3, 224, 224)).sum().backward()
        unused = {name for name, p in model.named_parameters() if p.grad is None}
    finally:
        model.zero_grad(set_to_none=True)
    expected = {name for name, _ in model.named_parameters() if name.startswith(tuple(s + "." for s in skipped))}
    assert unused == expected
    for key in ref["state_dict_keys_of_those_modules"]:
        assert key in model.state_dict()


def test_mismatch_is_reported_with_the_file(models):
    sd = models[7].state_dict()
    del sd["attn2.qkv.bias"]
    sd["VIT.norm.weight"] = torch.zeros(5)
    with pytest.raises(CheckpointMismatch, match=r"ckpt\.pth.*missing: attn2\.qkv\.bias.*VIT\.norm\.weight"):
        posterv2_from_state_dict(sd, source="ckpt.pth")
    with pytest.raises(CheckpointMismatch, match="not a POSTER V2 checkpoint"):
        num_classes_of({"fc.weight": torch.zeros(7, 512)}, "resnet.pth")


class RecorderMeter:
    """Stands in for the training-curve recorder main.py pickles into its checkpoints."""

    def __init__(self) -> None:
        self.epoch_accuracy = np.zeros((3, 2), np.float32)


def _official_training_checkpoint(sd: dict, tmp_path: Path, monkeypatch) -> Path:
    """What main.py saves (DataParallel keys + training objects), imported with `eri-weights import`."""
    from extract.weights import resolve
    from extract.weights.importer import import_weights

    src = tmp_path / "rafdb_model.pth"
    torch.save({"epoch": 3, "best_acc": torch.tensor(92.2), "optimizer": {"state": {}, "param_groups": []},
                "recorder": RecorderMeter(), "recorder1": RecorderMeter(),
                "state_dict": {f"module.{k}": v for k, v in sd.items()}}, src)
    monkeypatch.delenv("ERI_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "cache"))
    import_weights(SPEC.weights_entries()[0], src)
    src.unlink()
    return Path(resolve(SPEC.weights_entries()[0]).path)


def _plain_file_in_weights_dir(sd: dict, tmp_path: Path, monkeypatch) -> Path:
    from extract.weights import resolve

    root = tmp_path / "weights"
    (root / SPEC.weights_entries()[0]).mkdir(parents=True)
    torch.save(sd, root / SPEC.weights_entries()[0] / "posterv2.pth")
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "cache"))
    return Path(resolve(SPEC.weights_entries()[0]).path)


@pytest.mark.parametrize("classes,install", [(7, _official_training_checkpoint), (8, _plain_file_in_weights_dir)],
                         ids=["7cls-imported-training-checkpoint", "8cls-plain-in-weights-dir"])
def test_feature_loads_official_layout_through_resolver(models, frames, tmp_path, monkeypatch, classes, install):
    try:
        from extract.weights import load_state_dict, resolve  # noqa: F401 (the feature loads with it)
    except ImportError as exc:
        pytest.skip(f"extract.weights resolver not available yet: {exc}")
    model = models[classes]
    path = install(model.state_dict(), tmp_path, monkeypatch)
    extractor = SPEC.build(BuildOptions(config=SPEC.config_with(), batch_size=2, weights_path=str(path)))
    out = extractor.run([frames[:1], frames[1:]], [np.array([0.0]), np.array([0.2])])
    with torch.inference_mode():
        emb, logits = model.embed_and_logits(prepare_crops(frames, 224))
    data = np.concatenate([o.data for o in out])
    assert data.shape == (2, FEATURE_DIM) and data.dtype == np.float32
    np.testing.assert_allclose(data, emb.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([o.extras["logits"] for o in out]), logits.numpy(), rtol=1e-5, atol=1e-5)
    assert [o.extras["logits"].shape[1] for o in out] == [classes, classes]
    assert [o.times.tolist() for o in out] == [[0.0], [0.2]]


def test_build_without_weights_says_how_to_get_them():
    with pytest.raises(ValueError, match="eri-weights import posterv2"):
        SPEC.build(BuildOptions(config=SPEC.config_with()))
