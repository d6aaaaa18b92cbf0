"""The canonical clip-id rule (feature_store/clip_ids.py) and the store's entry points:
writer, reader, errors, and stores written before the rule (groups named `[00001]`)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from feature_store import FeatureStore, canonical_id, id_column, match_ids
from feature_store.compact import compact_dir
from feature_store.names import encode_id
from feature_store.shard import shard_ids
from store_helpers import SPEC, toy_clip, write_clips


@pytest.mark.parametrize("raw, canonical", [
    ("[00001]", "00001"), (" [00001] ", "00001"), ("[ 00001 ]", "00001"), ("00001", "00001"),
    ("\t00001\n", "00001"), ("[[7]]", "7"), ("[ [7] ]", "7"), ("[]", "[]"), ("[[]]", "[]"), ("[ ]", "[ ]"), ("[a]b", "[a]b"), ("a[1]", "a[1]"),
    ("Clip_A", "Clip_A"), ("odd/id.1", "odd/id.1"), ("1", "1"),
])
def test_canonical_id(raw: str, canonical: str) -> None:
    assert canonical_id(raw) == canonical
    assert canonical_id(canonical_id(raw)) == canonical_id(raw)  # idempotent


@pytest.mark.parametrize("header, index", [
    (["File_ID", "timestamp", "f0"], 0), (["timestamp", "Id", "f0"], 1), (["timestamp", "id"], 1),
    (["FileID", "x"], 0), (["file_id", "x"], 0), (["clip_id", "x"], 0), (["Clip ID", "x"], 0),
    (["id", "File_ID"], 1),  # File_ID is preferred over a generic id column
    (["timestamp", "f0"], None),
])
def test_id_column(header: list[str], index: int | None) -> None:
    assert id_column(header) == index


def test_match_ids_exact_and_by_integer_value() -> None:
    m = match_ids(["00001", "2", "10", "x"], {"00001", "00002", "00010", "clip"})
    assert m.mapping == {"00001": "00001", "2": "00002", "10": "00010"}
    assert m.by_value == {"2": "00002", "10": "00010"}
    assert m.unmatched == ["x"] and not m.ambiguous


def test_match_ids_never_guesses() -> None:
    m = match_ids(["1", "2", "00002", "٣"], {"01", "001", "00002", "3"})
    assert set(m.ambiguous) == {"1", "2"}
    assert "'01'" in m.ambiguous["1"] and "'001'" in m.ambiguous["1"]   # two stored ids share the value
    assert "'00002'" in m.ambiguous["2"]                                # labels name that clip twice
    assert m.mapping == {"00002": "00002"} and m.unmatched == ["٣"]     # only ASCII digits count
    assert "'1'" in m.describe_ambiguous()


def test_writer_reader_and_errors_use_canonical_ids(tmp_path: Path) -> None:
    fd = FeatureStore(tmp_path).feature_dir("toy", "fp1", spec=SPEC)
    write_clips(fd, ["[00001]", " 00002 "])
    assert fd.completed() == {"00001", "00002"}
    assert shard_ids(fd.shards()[0]) == ["00001", "00002"]  # stored under the canonical name
    with FeatureStore(tmp_path).reader("toy") as r:
        assert "[00002]" in r and "00002" in r and "00003" not in r
        np.testing.assert_array_equal(r.get("[00001]")[0], r.get("00001")[0])
        assert [a.shape for a in r.load_all(["[00002]", "00001"])] == [r.get("00002")[0].shape, r.get("00001")[0].shape]
    with pytest.raises(ValueError, match="added twice"):
        with fd.open_shard() as shard:
            data, times = toy_clip(1)
            shard.add("[00009]", data, times)
            shard.add("00009", data, times)
    fd.record_error("[00005]", "broken")
    assert set(fd.failed()) == {"00005"}


def bracket_groups(shard: Path) -> None:
    """Rename every clip group `X` to `[X]`, as the import before the canonical rule stored them."""
    with h5py.File(shard, "r+") as f:
        clips = f["clips"]
        for key in list(clips):
            old = clips[key].attrs["clip_id"]
            clips.move(key, encode_id(f"[{old}]"))
            clips[encode_id(f"[{old}]")].attrs["clip_id"] = f"[{old}]"


def test_old_store_with_bracketed_groups_still_matches(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    fd = store.feature_dir("toy", "fp1", spec=SPEC)
    ids = [f"{i:05d}" for i in range(1, 7)]
    write_clips(fd, ids, per_shard=3)
    with store.reader("toy") as r:
        before = {c: r.get(c) for c in ids}
    for shard in fd.shards():
        bracket_groups(shard)
    assert sorted(shard_ids(fd.shards()[0])) == ["[00001]", "[00002]", "[00003]"]
    assert fd.completed() == set(ids)
    with store.reader("toy") as r:
        assert r.ids() == ids and "[00004]" in r
        for c in ids:
            np.testing.assert_array_equal(r.get(c)[0], before[c][0])
            np.testing.assert_array_equal(r.get(c)[1], before[c][1])
        assert [a.tolist() for a in r.load_all(ids)] == [before[c][0].tolist() for c in ids]
        assert r.item("00002").attr("clip_id") == "[00002]"  # the original spelling stays in the attribute
    result = compact_dir(fd)  # also renames the groups to canonical ids
    assert result.clips == 6 and shard_ids(fd.shards()[0]) == ids
    with store.reader("toy") as r:
        for c in ids:
            np.testing.assert_array_equal(r.get(c)[0], before[c][0])


def test_single_old_shard_is_renamed_by_compact(tmp_path: Path) -> None:
    fd = FeatureStore(tmp_path).feature_dir("toy", "fp1", spec=SPEC)
    write_clips(fd, ["00001", "00002"], per_shard=2)
    bracket_groups(fd.shards()[0])
    assert compact_dir(fd).merged is not None and shard_ids(fd.shards()[0]) == ["00001", "00002"]


@pytest.mark.parametrize("old_first", [True, False])
def test_newest_copy_wins_across_spellings(tmp_path: Path, old_first: bool) -> None:
    """A clip stored as `[00003]` in one shard and `00003` in another: the newest shard wins,
    and its group is read under the name it was stored with."""
    store = FeatureStore(tmp_path)
    fd = store.feature_dir("toy", "fp1", spec=SPEC)
    first, second = (np.full((2, 6), 1.0, np.float32), np.full((2, 6), 2.0, np.float32))
    for value, bracketed in ((first, old_first), (second, not old_first)):
        with fd.open_shard() as shard:
            shard.add("00003", value, np.arange(2) * 0.1)
        if bracketed:
            bracket_groups(fd.shards()[-1])
    assert fd.completed() == {"00003"}
    with store.reader("toy") as r:
        np.testing.assert_array_equal(r.get("00003")[0], second)
        np.testing.assert_array_equal(r.load_all(["00003"])[0], second)
    compact_dir(fd)
    with store.reader("toy") as r:
        np.testing.assert_array_equal(r.get("00003")[0], second)
