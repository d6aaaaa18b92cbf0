"""Loading features from the store for training: length policies, missing clips,
train-only standardisation, fingerprints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from feature_store import FeatureStore, fingerprint_of
from fusion.data import DataPolicy, FusionDataError, Normalizer, guess_modality, load_fusion_data, make_batch
from fusion.lengths import resample, to_fixed_length


def test_resample_down_is_segment_mean_and_up_is_linear():
    x = np.arange(8, dtype=np.float32)[:, None]
    np.testing.assert_allclose(resample(x, 4)[:, 0], [0.5, 2.5, 4.5, 6.5])
    np.testing.assert_allclose(resample(x, 3)[:, 0], [1.0, 3.5, 6.0])  # segments [0,3) [2,6) [5,8)
    np.testing.assert_allclose(resample(x[:3], 5)[:, 0], [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(resample(x[:1], 3)[:, 0], [0, 0, 0])
    assert resample(x, 8) is x


def test_pad_truncate_masks():
    seqs = [np.ones((2, 3), np.float32), np.ones((6, 3), np.float32) * 2, None]
    data, mask = to_fixed_length(seqs, 4, "pad", 3)
    assert data.shape == (3, 4, 3)
    assert mask.tolist() == [[True, True, False, False], [True] * 4, [True] * 4]
    assert data[0, 2:].sum() == 0 and (data[1] == 2).all() and (data[2] == 0).all()
    with pytest.raises(ValueError, match="unknown length policy"):
        to_fixed_length(seqs, 4, "crop", 3)


def write_feature(root, name, clips, modality="video", fp_extra=0):
    spec = {"name": name, "dim": next(iter(clips.values())).shape[1], "modality": modality, "x": fp_extra}
    fp = fingerprint_of(spec)
    fd = FeatureStore(root).feature_dir(name, fp, spec=spec)
    with fd.open_shard() as w:
        for cid, x in clips.items():
            w.add(cid, x, np.arange(len(x)) * 0.1)
    return fp


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    a = {f"c{i}": rng.normal(5, 2, (10 + i, 4)).astype(np.float32) for i in range(6)}
    v = {f"c{i}": rng.normal(0, 1, (3 + i, 3)).astype(np.float32) for i in range(5)}  # c5 missing
    clip = {f"c{i}": rng.normal(0, 1, (1, 2)).astype(np.float32) for i in range(6)}
    write_feature(tmp_path, "aud", a, "audio")
    write_feature(tmp_path, "vid", v)
    write_feature(tmp_path, "clipvec", clip)
    return FeatureStore(tmp_path), a, v


def test_load_policies_and_clip_level(store):
    fs, a, _ = store
    pol = DataPolicy(steps=8, steps_per_feature={"aud": 12}, length_per_feature={"aud": "pad"})
    d = load_fusion_data(fs, ["aud", "clipvec"], [f"c{i}" for i in range(6)], pol)
    aud, cv = d.blocks["aud"], d.blocks["clipvec"]
    assert aud.data.shape == (6, 12, 4) and aud.length == "pad" and aud.modality == "audio"
    assert aud.mask.sum(dim=1).tolist() == [10, 11, 12, 12, 12, 12]
    np.testing.assert_array_equal(aud.data[1, :11].numpy(), a["c1"])
    assert cv.data.shape == (6, 1, 2) and cv.steps == 1  # clip-level feature stays one step
    assert d.streams()["aud"].dim == 4


def test_missing_clips_error_drop_zeros(store):
    fs, _, _ = store
    ids = [f"c{i}" for i in range(6)]
    with pytest.raises(FusionDataError, match=r"vid@\w+: 1 clip\(s\) missing: c5[\s\S]*--missing drop"):
        load_fusion_data(fs, ["aud", "vid"], ids, DataPolicy())
    d = load_fusion_data(fs, ["aud", "vid"], ids, DataPolicy(missing="drop"))
    assert d.ids == ids[:5] and d.dropped == {"vid": ["c5"]}
    z = load_fusion_data(fs, ["aud", "vid"], ids, DataPolicy(missing="zeros", steps=4))
    assert z.ids == ids and z.zero_filled == {"vid": ["c5"]}
    norm = Normalizer.fit(z, torch.arange(6))
    x, m = make_batch(z, norm, torch.tensor([5]))
    assert float(x["vid"].abs().sum()) == 0.0 and bool(m["vid"].all())
    assert float(x["aud"].abs().sum()) > 0


def test_standardisation_uses_train_rows_and_real_steps_only(store):
    fs, a, _ = store
    d = load_fusion_data(fs, ["aud"], [f"c{i}" for i in range(6)],
                         DataPolicy(steps=12, length="pad"))
    train = torch.tensor([0, 1, 2])
    norm = Normalizer.fit(d, train)
    frames = np.concatenate([a["c0"], a["c1"], a["c2"][:12]])
    np.testing.assert_allclose(norm.mean["aud"].numpy(), frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std["aud"].numpy(), frames.std(0), rtol=1e-4)
    x, m = make_batch(d, norm, train)
    real = x["aud"][m["aud"]].numpy()
    np.testing.assert_allclose(real.mean(0), 0, atol=1e-5)
    assert float(x["aud"][~m["aud"]].abs().sum()) == 0.0  # padding stays zero
    again = Normalizer.from_state(norm.state())
    assert torch.equal(again.mean["aud"], norm.mean["aud"])


def test_fingerprint_refs_and_ambiguity(tmp_path):
    x = {"c0": np.ones((3, 2), np.float32), "c1": np.zeros((3, 2), np.float32)}
    fp1 = write_feature(tmp_path, "f", x, fp_extra=1)
    fp2 = write_feature(tmp_path, "f", {k: v + 1 for k, v in x.items()}, fp_extra=2)
    fs = FeatureStore(tmp_path)
    with pytest.raises(LookupError, match="ambiguous"):
        load_fusion_data(fs, ["f"], ["c0"], DataPolicy())
    d = load_fusion_data(fs, [f"f@{fp2}"], ["c0", "c1"], DataPolicy(steps=3))
    assert d.blocks["f"].fingerprint == fp2 and float(d.blocks["f"].data[0, 0, 0]) == 2.0
    assert d.blocks["f"].describe()["ref"] == f"f@{fp2}"
    assert fp1 != fp2


def test_bad_policies(store):
    fs, _, _ = store
    with pytest.raises(FusionDataError, match="not among the features"):
        load_fusion_data(fs, ["aud"], ["c0"], DataPolicy(steps_per_feature={"nope": 3}))
    with pytest.raises(FusionDataError, match="missing must be"):
        load_fusion_data(fs, ["aud"], ["c0"], DataPolicy(missing="skip"))
    with pytest.raises(FusionDataError, match="named twice"):
        load_fusion_data(fs, ["aud", "aud"], ["c0"], DataPolicy())


def test_modality_from_spec_override_or_name():
    assert guess_modality("x", {"modality": "audio"}, {}) == "audio"
    assert guess_modality("x", {"modality": "audio"}, {"x": "video"}) == "video"
    assert guess_modality("egemaps", {}, {}) == "audio"
    assert guess_modality("ds", {}, {}) == "audio"
    assert guess_modality("w2v-msp", {}, {}) == "audio"
    assert guess_modality("vggface2", {}, {}) == "video"
    assert guess_modality("faces_embeds", {}, {}) == "video"


def test_a_feature_holding_none_of_the_labelled_clips_says_so_instead_of_suggesting_drop(tmp_path):
    import numpy as np

    from feature_store import FeatureStore
    from fusion.data import DataPolicy, FusionDataError, load_fusion_data

    store = FeatureStore(tmp_path)
    fd = store.feature_dir("other", "a" * 12, spec={"dim": 3})
    with fd.open_shard() as shard:
        shard.add("x1", np.zeros((2, 3), np.float32), np.arange(2.0))
    try:
        load_fusion_data(store, ["other"], ["00001", "00002"], DataPolicy())
    except FusionDataError as exc:
        assert "none of the 2 labelled" in str(exc) and "--missing drop" not in str(exc) and "x1" in str(exc)
    else:
        raise AssertionError("no error")
