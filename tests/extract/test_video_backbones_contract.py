"""Contract of every registered visual backbone (modality "video", input "faces").

Each spec is built with a random-initialised checkpoint in its official layout (or the real weights,
if a spec has no checkpoint maker here and its weights are available), run on face crops of several
clips with different frame counts (a real face photograph, moved and re-lit frame by frame), and its
output is checked against what the spec declares: `dim`, `extras` names and dims, one row per frame,
the clip's own times, float32, finite (a clip without frames gives 0 rows). Frames of many clips are
batched together; the result must equal running each clip on its own.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from extract import catalog as catalog_module
from extract.specs import BuildOptions, FeatureSpec

COUNTS = (1, 2, 0, 3)  # frames per clip; with batch size 2 batches span clips; one clip has none
BATCH = 2
CROP = 224  # the cached face-crop size; backbones resize to their own input size


def _visual(spec: FeatureSpec) -> bool:
    return spec.modality == "video" and spec.input == "faces"


def _spec_params() -> list:
    try:
        return [pytest.param(s, id=s.name) for s in catalog_module.catalog() if _visual(s)]
    except Exception:  # some listed module is not importable yet: go module by module
        pass
    params = []
    for module_name in catalog_module.FEATURE_MODULES:
        try:
            module = importlib.import_module(module_name)
            specs = getattr(module, "SPECS", None) or (module.SPEC,)
        except (ImportError, AttributeError) as exc:
            if module_name.startswith("extract.video."):
                params.append(pytest.param(None, id=module_name, marks=pytest.mark.skip(
                    reason=f"{module_name} is not importable yet: {exc}")))
            continue
        params += [pytest.param(s, id=s.name) for s in specs if _visual(s)]
    return params


def _random_checkpoint(spec: FeatureSpec):
    """A random-initialised state_dict in the layout the spec's weights entry holds, or None if unknown."""
    import torch

    torch.manual_seed(0)
    if spec.name == "resnet18_affectnet":
        from extract.nets.resnet import ResNet18
        return ResNet18(spec.extras["logits"]).state_dict()
    if spec.name == "posterv2":
        from extract.nets.posterv2 import PosterV2
        return PosterV2(spec.extras["logits"]).state_dict()
    if spec.name == "fer_minixception":
        from extract.nets.minixception import MiniXception
        return MiniXception().state_dict()
    return None


def _weights_path(spec: FeatureSpec, tmp_path) -> str | None:
    if spec.weights is None:
        return None
    state = _random_checkpoint(spec)
    if state is None:
        try:
            from extract.weights import resolve
            return str(resolve(spec.weights).path)
        except Exception as exc:  # noqa: BLE001 — any reason means "cannot run this spec here"
            pytest.skip(f"{spec.name}: no checkpoint maker in this test and weights {spec.weights!r} "
                        f"unavailable ({exc})")
    try:
        from extract.weights import load_state_dict  # noqa: F401 (the features load with it)
    except ImportError as exc:
        pytest.skip(f"extract.weights is not available yet: {exc}")
    from safetensors.torch import save_file

    path = tmp_path / f"{spec.weights}.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


def _face_clips(counts: tuple[int, ...], size: int = CROP) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from PIL import Image
    from skimage.data import astronaut

    face = astronaut()[30:200, 140:310]  # the astronaut's head with some margin
    rng = np.random.default_rng(0)
    crops, times = [], []
    for clip, n in enumerate(counts):
        frames = []
        for _ in range(n):
            dx, dy = rng.integers(-12, 13, size=2)
            shifted = np.roll(face, (dy, dx), axis=(0, 1)).astype(np.float32) * rng.uniform(0.7, 1.2)
            img = Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
            frames.append(np.asarray(img))
        crops.append(np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8))
        times.append(0.5 * clip + 0.2 * np.arange(n, dtype=np.float64))
    return crops, times


@pytest.fixture(scope="module")
def clips():
    return _face_clips(COUNTS)


@pytest.mark.parametrize("spec", _spec_params())
def test_backbone_output_matches_its_spec(spec: FeatureSpec, clips, tmp_path):
    crops, times = clips
    assert spec.frame_step is None, "face backbones emit one row per sampled frame"
    extractor = spec.build(BuildOptions(config=spec.config_with(), batch_size=BATCH,
                                        weights_path=_weights_path(spec, tmp_path)))
    outputs = extractor.run(crops, times)
    assert len(outputs) == len(crops)
    for out, c, t in zip(outputs, crops, times):
        assert out.data.dtype == np.float32 and out.data.shape == (len(c), spec.dim)
        assert np.isfinite(out.data).all()
        assert out.times.dtype == np.float64
        np.testing.assert_array_equal(out.times, t)
        assert set(out.extras) == set(spec.extras)
        for name, dim in spec.extras.items():
            assert out.extras[name].dtype == np.float32 and out.extras[name].shape == (len(c), dim), name
            assert np.isfinite(out.extras[name]).all()

    for out, c, t in zip(outputs, crops, times):  # batched across clips == one clip at a time
        if not len(c):
            continue
        (alone,) = extractor.run([c], [t])
        np.testing.assert_allclose(out.data, alone.data, rtol=1e-5, atol=1e-5)
        for name in spec.extras:
            np.testing.assert_allclose(out.extras[name], alone.extras[name], rtol=1e-5, atol=1e-5)
