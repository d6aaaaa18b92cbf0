"""Core API: fingerprints, provenance, write/read round trips, dtypes, references, duplicates."""
from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from store_helpers import SPEC, toy_clip, write_clips
from feature_store import AmbiguousFeature, FeatureNotFound, FeatureStore, fingerprint_of, source_attrs
from feature_store.names import decode_id, encode_id


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore(tmp_path / "store")


def test_fingerprint_is_canonical_and_short() -> None:
    a = fingerprint_of({"b": [1, 2.5], "a": {"y": 0.1, "x": "s"}})
    b = fingerprint_of({"a": {"x": "s", "y": 0.1}, "b": (1, np.float64(2.5))})
    assert a == b and len(a) == 12 and int(a, 16) >= 0
    assert fingerprint_of({"v": 1}) != fingerprint_of({"v": 1.0})
    assert fingerprint_of({"v": 0.1}) != fingerprint_of({"v": 0.1000001})
    with pytest.raises(TypeError, match="cannot canonicalise"):
        fingerprint_of({"f": object()})


def test_source_attrs_fast_hash(tmp_path: Path) -> None:
    small, big = tmp_path / "a.bin", tmp_path / "b.bin"
    small.write_bytes(b"x" * 100)
    big.write_bytes(bytes(range(256)) * 20000)  # ~5 MiB
    a = source_attrs(small)
    assert a["size"] == 100 and Path(a["source"]).is_absolute() and len(a["content_hash"]) == 64
    h = source_attrs(big)["content_hash"]
    with open(big, "r+b") as f:  # a change at the head is seen
        f.write(b"\xff")
    assert source_attrs(big)["content_hash"] != h
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        source_attrs(tmp_path / "missing.mp4")


@pytest.mark.parametrize("clip_id", ["plain", "a/b", "x.y", ".", "..", "sp ace", "%41", "ünï/cödé"])
def test_clip_id_encoding_round_trips(clip_id: str) -> None:
    name = encode_id(clip_id)
    assert "/" not in name and "." not in name and decode_id(name) == clip_id


def test_write_read_round_trip(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    assert (fd.path / "spec.json").is_file() and fd.completed() == set()
    ids = ["00001", "dir/clip.mp4", "z"]
    with fd.open_shard() as shard:
        for i, clip_id in enumerate(ids):
            data, times = toy_clip(i)
            shard.add(clip_id, data, times, attrs={"source": "/v/x.mp4", "size": 10, "duration": 1.5,
                                                   "face_detection_rate": 0.9, "flags": ["blurry"], "note": None},
                      extras={"probs": np.full((len(times), 7), 0.5)})
    assert fd.completed() == set(ids)
    r = store.reader("toy")
    assert r.fingerprint == "abc123" and r.spec == SPEC and r.ids() == sorted(ids) and len(r) == 3
    for i, clip_id in enumerate(ids):
        data, times = r.get(clip_id)
        exp_data, exp_times = toy_clip(i)
        assert data.dtype == np.float32 and times.dtype == np.float64
        np.testing.assert_array_equal(data, exp_data)
        np.testing.assert_array_equal(times, exp_times)
        assert r.extra(clip_id, "probs").shape == (len(times), 7)
    assert r.attrs("z") == {"source": "/v/x.mp4", "size": 10, "duration": 1.5, "face_detection_rate": 0.9,
                            "flags": ["blurry"], "note": None}
    loaded = r.load_all(["z", "00001"])
    np.testing.assert_array_equal(loaded[0], toy_clip(2)[0])
    np.testing.assert_array_equal(loaded[1], toy_clip(0)[0])
    with pytest.raises(KeyError, match="nope"):
        r.get("nope")
    with pytest.raises(KeyError, match="no extra 'boxes'"):
        r.extra("z", "boxes")
    r.close()


def test_bad_items_are_rejected_with_clear_messages(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    good = np.zeros((2, 6), np.float32)
    with pytest.raises(ValueError, match="'c1'.*dim 6"):
        with fd.open_shard() as shard:
            shard.add("c1", np.zeros((2, 5)), [0, 1])
    with fd.open_shard() as shard:
        with pytest.raises(ValueError, match="NaN"):
            shard.add("c2", np.full((2, 6), np.nan), [0, 1])
        with pytest.raises(ValueError, match="times shape"):
            shard.add("c3", good, [0, 1, 2])
        with pytest.raises(ValueError, match="extra 'probs'"):
            shard.add("c4", good, [0, 1], extras={"probs": np.zeros((3, 7))})
        shard.add("c5", good, [0, 1])
        with pytest.raises(ValueError, match="twice"):
            shard.add("c5", good, [0, 1])
    assert fd.completed() == {"c5"}  # the failed shard published nothing, the caught failures left no trace


def test_exception_publishes_nothing_and_empty_shard_is_dropped(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    with pytest.raises(RuntimeError):
        with fd.open_shard() as shard:
            shard.add("a", *toy_clip(0))
            raise RuntimeError("extractor blew up")
    with fd.open_shard():
        pass
    assert fd.shards() == [] and fd.temporaries() == [] and fd.completed() == set()


def test_float16_storage(store: FeatureStore) -> None:
    fd = store.feature_dir("half", "f16", spec={**SPEC, "dtype": "float16"})
    data, times = toy_clip(3)
    with fd.open_shard() as shard:
        shard.add("a", data, times)
    with h5py.File(fd.shards()[0], "r") as f:
        assert f["clips/a/data"].dtype == np.float16
    r = store.reader("half")
    got, _ = r.get("a")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, data.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(r.load_all(["a"])[0], got)
    with fd.open_shard() as shard, pytest.raises(ValueError, match="float16 range"):
        shard.add("b", np.full((1, 6), 1e6), [0.0])


def test_uint8_faces(store: FeatureStore) -> None:
    spec = {"name": "faces", "dtype": "uint8", "item_shape": [16, 16, 3], "extras": {"boxes": 4}}
    fd = store.feature_dir("faces", "face01", spec=spec)
    crops = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    with fd.open_shard() as shard:
        shard.add("v1", crops, np.arange(5) / 5, extras={"boxes": np.ones((5, 4))}, attrs={"face_detection_rate": 1.0})
        with pytest.raises(ValueError, match="uint8"):
            shard.add("v2", crops.astype(np.float32), np.arange(5) / 5)
        with pytest.raises(ValueError, match=r"\(16, 16, 3\)"):
            shard.add("v3", crops[:, :8], np.arange(5) / 5)
    r = store.reader("faces")
    got, _ = r.get("v1")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, crops)
    assert r.extra("v1", "boxes").dtype == np.float32


def test_reference_resolution(store: FeatureStore) -> None:
    write_clips(store.feature_dir("toy", "aaa111", spec=SPEC), ["a", "b"])
    assert store.reader("toy").fingerprint == "aaa111"
    write_clips(store.feature_dir("toy", "aab222", spec={**SPEC, "version": "2"}), ["a"])
    with pytest.raises(AmbiguousFeature) as exc:
        store.reader("toy")
    assert "toy@aaa111 (2 clips" in str(exc.value) and "toy@aab222 (1 clips" in str(exc.value)
    with pytest.raises(AmbiguousFeature):
        store.reader("toy@aa")
    assert store.reader("toy@aab").fingerprint == "aab222"
    assert store.reader("toy", default_fp="aab222").fingerprint == "aab222"
    with pytest.raises(AmbiguousFeature):
        store.reader("toy", default_fp="fff000")  # default not present: still ambiguous
    with pytest.raises(FeatureNotFound, match="candidates"):
        store.reader("toy@zzz")
    with pytest.raises(FeatureNotFound, match="features: toy"):
        store.reader("wav2vec2")


def test_duplicates_newest_shard_wins(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    for value in (1.0, 2.0, 3.0):
        with fd.open_shard() as shard:
            shard.add("dup", np.full((2, 6), value), [0.0, 1.0])
            shard.add(f"only{value}", np.full((1, 6), value), [0.0])
    assert len(fd.shards()) == 3 and len(fd.completed()) == 4
    data, _ = store.reader("toy").get("dup")
    assert (data == 3.0).all()


def test_errors_jsonl_semantics(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    fd.record_error("a", "no audio stream", source="/v/a.mp4")
    fd.record_error("b", "first")
    fd.record_error("b", "second")
    fd.record_error("c", "x" * 10000, blob="y" * 10000)
    lines = fd.errors_path.read_bytes().splitlines()
    assert len(lines) == 4 and all(len(line) < 4096 for line in lines)
    failed = fd.failed()
    assert set(failed) == {"a", "b", "c"}
    assert failed["a"]["reason"] == "no audio stream" and failed["a"]["source"] == "/v/a.mp4" and failed["a"]["time"]
    assert failed["b"]["reason"] == "second" and "truncated" in failed["c"]["reason"]
    write_clips(fd, ["a"])  # a later success clears the failure
    assert set(fd.failed()) == {"b", "c"}
    with open(fd.errors_path, "ab") as f:
        f.write(b'{"clip_id": "d", "rea')  # a torn line is skipped, not fatal
    assert set(fd.failed()) == {"b", "c"}


def test_temporaries_ignored_and_cleaned_only_when_dead(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    dead = fd.path / ".tmp-shard-00000000000000000001-somehost-999999-abcd.h5"
    dead.write_bytes(b"partial")
    with fd.open_shard() as shard:
        shard.add("a", *toy_clip(0))
        assert fd.clean_temporaries(stale_after=0) == [dead]  # unlocked and old: removed
        assert shard.temp_path.exists()  # a live writer's temporary is locked: kept even when "stale"
        assert fd.completed() == set()
    assert fd.completed() == {"a"} and fd.temporaries() == []


def test_completed_is_fast(store: FeatureStore) -> None:
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    write_clips(fd, [f"clip{i:04d}" for i in range(1000)], per_shard=17)
    assert len(fd.shards()) == 59
    fresh = FeatureStore(store.root).feature_dir("toy", "abc123")
    from feature_store import feature_dir as fd_module

    fd_module._IDS_CACHE.clear()
    start = time.perf_counter()
    assert len(fresh.completed()) == 1000
    assert time.perf_counter() - start < 1.0
