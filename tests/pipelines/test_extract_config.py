"""Configuration that changes a feature's output, through eri-extract into the store.

`--set` options that change the row width or the frame step are planned, extracted, stored and
recorded in spec.json with the real values; every option and every weights file that changes the
numbers changes the fingerprint; the order of `-f` does not matter to the planner.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_extract_helpers import cli, subset_manifest, weights_args  # noqa: F401 (fixture)

from extract.catalog import catalog
from feature_store import FeatureStore
from pipelines.plan import make_job, make_plan
from pipelines.settings import ExtractSettings

SETS = {  # what the issue names: the CLI help's own example, a wav2vec2 layer, a DeepSpectrum window/hop
    "mfcc": ("mfcc.n_mfcc=40",),
    "wav2vec2": ("wav2vec2.layer=3",),
    "deepspectrum": ("deepspectrum.window=0.5", "deepspectrum.hop=0.25"),
}


@pytest.fixture
def random_weights_dir(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    for name in SETS:
        catalog().get(name).make_random_weights(root)
    return root


@pytest.mark.slow
def test_set_options_change_the_stored_shapes_and_spec_json(tmp_path, sample_dataset, random_weights_dir):
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:2])
    store = tmp_path / "store"
    sets = [a for name in SETS for item in SETS[name] for a in ("--set", item)]
    code, out = cli("-i", manifest, "-s", store, "-m", "audio", "-f", ",".join(SETS), *sets,
                    "--scheduler", "sync")
    assert code == 0, out
    expected = {"mfcc": ((320,), 0.08), "wav2vec2": ((768,), 0.02), "deepspectrum": ((1024,), 0.25)}
    for name, (row, step) in expected.items():
        with FeatureStore(store).reader(name) as reader:
            assert len(reader) == 2, name
            assert reader.spec["item_shape"] == list(row) and reader.spec["frame_step"] == step, reader.spec
            for clip in reader.ids():
                data, times = reader.get(clip)
                assert data.shape[1:] == row
                np.testing.assert_allclose(np.diff(times), step, atol=1e-9)
    with FeatureStore(store).reader("wav2vec2") as reader:
        assert reader.spec["config"]["layer"] == 3
    with FeatureStore(store).reader("deepspectrum") as reader:
        assert (reader.spec["config"]["window"], reader.spec["config"]["hop"]) == (0.5, 0.25)


def test_every_option_of_every_feature_changes_the_fingerprint(tmp_path, monkeypatch):
    """Each example config (and each single option changed from its default) gives a new fingerprint."""
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(tmp_path / "weights"))
    for spec in catalog():
        if spec.random_weights is None and spec.weights_entries():
            continue  # real model files only (BlazeFace): covered by the faces tests
        spec.make_random_weights(tmp_path / "weights")
        base = make_job(spec, _settings(spec, {}), "f" * 12)
        for config in spec.examples:
            spec.make_random_weights(tmp_path / "weights", config)
            other = make_job(spec, _settings(spec, config), "f" * 12)
            assert other.fingerprint != base.fingerprint, (spec.name, config)
            assert other.spec_json["item_shape"] == list(spec.output_shape(config, other.weights).row)


def test_a_weights_file_that_changes_the_numbers_is_in_the_fingerprint(tmp_path, monkeypatch):
    """VGGish with PCA: the PCA parameters are a second weights entry, fingerprinted and overridable."""
    import torch

    root = tmp_path / "weights"
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    spec = catalog().get("vggish")
    spec.make_random_weights(root, {"postprocess": "pca"})
    first = make_job(spec, _settings(spec, {"postprocess": "pca"}), None)
    assert set(first.weights) == {"vggish", "vggish_pca"}
    other = tmp_path / "other_pca.pth"
    torch.save({"pca_eigen_vectors": torch.eye(128), "pca_means": torch.zeros(128)}, other)
    settings = ExtractSettings(modality="audio", features=("vggish",), overrides={"vggish": {"postprocess": "pca"}},
                               weights={"vggish_pca": str(other)})
    second = make_job(spec, settings, None)
    assert second.weights["vggish_pca"] == str(other) and second.fingerprint != first.fingerprint


def test_plan_does_not_depend_on_the_order_of_features(tmp_path, monkeypatch, sample_dataset, blazeface_model):
    root = tmp_path / "weights"
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    catalog().get("resnet18_affectnet").make_random_weights(root)
    (root / "blazeface").mkdir()
    (root / "blazeface" / blazeface_model.name).write_bytes(blazeface_model.read_bytes())
    from pipelines.dataset import discover_clips

    clips = discover_clips(subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:2]))
    plans = [make_plan(clips, ExtractSettings(modality="video", features=order), FeatureStore(tmp_path / "s"),
                       save_cache=False)
             for order in (("faces", "resnet18_affectnet"), ("resnet18_affectnet", "faces"), ("resnet18_affectnet",))]
    for plan in plans:
        assert not plan.skipped, plan.skipped
        assert [j.name for j in plan.jobs] == ["faces", "resnet18_affectnet"]
        assert [j.fingerprint for j in plan.jobs] == [j.fingerprint for j in plans[0].jobs]
    code, out = cli("-i", tmp_path / "clips.csv", "-s", tmp_path / "s", "-m", "video",
                    "-f", "resnet18_affectnet,faces", "--dry-run")
    assert code == 0 and "cannot compute" not in out, out


def _settings(spec, config: dict) -> ExtractSettings:
    return ExtractSettings(modality=spec.modality, features=(spec.name,), overrides={spec.name: dict(config)})


def test_spec_json_records_the_declared_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(tmp_path / "weights"))
    job = make_job(catalog().get("mfcc"), _settings(catalog().get("mfcc"), {"n_mfcc": 13, "stack": 2}), None)
    assert (job.spec_json["dim"], job.spec_json["item_shape"], job.spec_json["frame_step"]) == (26, [26], 0.02)
    json.dumps(job.spec_json)


def test_storage_dtype_option_halves_the_store_and_changes_the_fingerprint(tmp_path, monkeypatch, blazeface_model):
    root = tmp_path / "weights"
    (root / "blazeface").mkdir(parents=True)
    shutil.copy2(blazeface_model, root / "blazeface")  # the faces job below resolves its weights here
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(root))
    spec = catalog().get("resnet18_affectnet_maps")
    spec.make_random_weights(root)
    f32 = make_job(spec, _settings(spec, {}), "f" * 12)
    f16 = make_job(spec, _settings(spec, {"dtype": "float16"}), "f" * 12)
    assert (f32.spec_json["dtype"], f16.spec_json["dtype"]) == ("float32", "float16")
    assert f16.spec_json["item_shape"] == [49, 256] and f16.fingerprint != f32.fingerprint
    assert f16.config == f32.config  # storage is not an extractor option
    with pytest.raises(ValueError, match="faces: storage dtype 'float16'"):
        make_job(catalog().get("faces"), _settings(catalog().get("faces"), {"dtype": "float16"}), None)
