"""ResNet18: torchvision layout (strict), 1000/7/8-class heads, checkpoint wrappers, the `resnet18_affectnet` feature.

The layout is ../shared/reference/torchvision_resnet18.keys.json. The checkpoints are random-initialised
ones in that layout, saved with torch.save (plain, `{'state_dict': …}`, `module.`-prefixed) into a
temporary $ERI_WEIGHTS_DIR and loaded through the weights resolver and `SPEC.build`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from extract.nets.resnet import FEATURE_DIM, ResNet18, num_classes_of, resnet18_from_state_dict
from extract.nets.strict import CheckpointMismatch
from extract.specs import BuildOptions
from extract.video.backbone import prepare_crops
from extract.video.resnet18_affectnet import SPEC

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


@pytest.fixture(scope="module")
def reference() -> dict:
    path = REFERENCE / "torchvision_resnet18.keys.json"
    if not path.exists():
        pytest.skip(f"{path} not found (the CI checkout has shared/ beside the repo)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(5, 224, 224, 3), dtype=np.uint8)


def _random_state_dict(classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = ResNet18(classes)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that a wrong load shows in the outputs
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.state_dict()


def test_layout_matches_torchvision(reference):
    sd = ResNet18(1000).state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [(k, v) for k, v in reference["state_dict"].items()]
    assert len(sd) == reference["num_tensors"] == 122
    assert sum(p.numel() for p in ResNet18(1000).parameters()) == reference["num_params_trainable"] == 11_689_512
    assert SPEC.default_config == {"input_size": 224}


@pytest.mark.parametrize("classes", [1000, 7, 8])
def test_strict_load_infers_head_size(classes):
    sd = _random_state_dict(classes)
    model = resnet18_from_state_dict(sd, "ckpt.pth")
    assert num_classes_of(sd) == classes and model.fc.out_features == classes and not model.training
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        feats = model.forward_features(x)
        assert feats.shape == (2, FEATURE_DIM)
        torch.testing.assert_close(model(x), model.fc(feats))


def test_checkpoint_without_num_batches_tracked_loads():
    """torchvision's ImageNet file predates torch 0.4.1 and has no num_batches_tracked counters."""
    sd = {k: v for k, v in _random_state_dict(1000).items() if not k.endswith("num_batches_tracked")}
    assert len(sd) == 102
    resnet18_from_state_dict(sd, "resnet18-f37072fd.pth")


def test_mismatch_is_reported_with_the_file():
    sd = _random_state_dict(7)
    sd.pop("layer3.1.bn2.running_var")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch, match=r"affect\.pth.*1 missing: layer3\.1\.bn2\.running_var.*extra\.weight"):
        resnet18_from_state_dict(sd, "affect.pth")
    with pytest.raises(CheckpointMismatch, match="not a torchvision-style ResNet18"):
        resnet18_from_state_dict({"fc.weight": torch.zeros(7, 256)}, "other.pth")


def _resolve_installed(tmp_path: Path, monkeypatch, obj, filename: str) -> Path:
    try:
        from extract.weights import load_state_dict, resolve  # noqa: F401 (the feature loads with it)
    except ImportError as exc:
        pytest.skip(f"extract.weights resolver not available yet: {exc}")
    root = tmp_path / "weights"
    (root / SPEC.weights_entries()[0]).mkdir(parents=True)
    torch.save(obj, root / SPEC.weights_entries()[0] / filename)
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "cache"))
    return Path(resolve(SPEC.weights_entries()[0]).path)


WRAPPERS = {
    "plain": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 10},
    "module": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "state_dict+module": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
}


@pytest.mark.parametrize("classes,wrapper", [(7, "state_dict+module"), (8, "plain"), (8, "module"),
                                             (1000, "state_dict")])
def test_feature_through_resolver(frames, tmp_path, monkeypatch, classes, wrapper):
    sd = _random_state_dict(classes, seed=classes)
    path = _resolve_installed(tmp_path, monkeypatch, WRAPPERS[wrapper](sd), "resnet18_affectnet.pth")
    extractor = SPEC.build(BuildOptions(config=SPEC.config_with(), batch_size=3, weights_path=str(path)))
    times = [np.arange(2) * 0.2, np.arange(3) * 0.2 + 1.0]
    out = extractor.run([frames[:2], frames[2:]], times)

    reference = resnet18_from_state_dict(sd)
    with torch.inference_mode():
        feats = reference.forward_features(prepare_crops(frames, 224))
        logits = reference.fc(feats)
    assert [o.data.shape for o in out] == [(2, FEATURE_DIM), (3, FEATURE_DIM)]
    assert [o.extras["logits"].shape for o in out] == [(2, classes), (3, classes)]
    np.testing.assert_allclose(np.concatenate([o.data for o in out]), feats.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([o.extras["logits"] for o in out]), logits.numpy(), rtol=1e-5, atol=1e-5)
    for o, t in zip(out, times):
        np.testing.assert_array_equal(o.times, t)


def test_input_size_112(frames, tmp_path, monkeypatch):
    sd = _random_state_dict(8)
    path = _resolve_installed(tmp_path, monkeypatch, sd, "resnet18_affectnet.pth")
    extractor = SPEC.build(BuildOptions(config=SPEC.config_with({"input_size": 112}), weights_path=str(path)))
    (out,) = extractor.run([frames[:2]], [np.array([0.0, 0.2])])
    with torch.inference_mode():
        feats = resnet18_from_state_dict(sd).forward_features(prepare_crops(frames[:2], 112))
    np.testing.assert_allclose(out.data, feats.numpy(), rtol=1e-5, atol=1e-5)


def test_build_errors():
    with pytest.raises(ValueError, match="eri-weights import resnet18_affectnet"):
        SPEC.build(BuildOptions(config=SPEC.config_with()))
    with pytest.raises(ValueError, match="input_size"):
        SPEC.build(BuildOptions(config=SPEC.config_with({"input_size": 8}), weights_path="x.pth"))
