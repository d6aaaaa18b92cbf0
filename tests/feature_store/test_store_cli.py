"""`eri-store` commands: ls, info, verify (detects NaN / wrong shape / truncated shard), compact,
export-csv → import-csv round trip."""
from __future__ import annotations

import json
import pathlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from feature_store import FeatureStore
from feature_store.cli import app
from feature_store.shard import shard_ids
from store_helpers import SPEC, write_clips

runner = CliRunner()


def eri_store(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def filled(tmp_path: Path) -> FeatureStore:
    store = FeatureStore(tmp_path / "store")
    fd = store.feature_dir("toy", "abc123", spec=SPEC)
    write_clips(fd, [f"c{i:02d}" for i in range(10)], per_shard=3, face_detection_rate=0.5)
    write_clips(fd, ["c00", "c01", "odd/id.1"], per_shard=3, face_detection_rate=1.0, flags=["no_face"])
    fd.record_error("broken", "zero-length file")
    return store


def snapshot(store: FeatureStore, ref: str = "toy") -> dict[str, tuple]:
    with store.reader(ref) as r:
        return {c: (*r.get(c), r.attrs(c)) for c in r.ids()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for clip_id, (data, times, attrs) in a.items():
        np.testing.assert_array_equal(b[clip_id][0], data)
        np.testing.assert_array_equal(b[clip_id][1], times)
        assert b[clip_id][0].dtype == data.dtype and b[clip_id][2] == attrs


def test_ls_and_info(filled: FeatureStore) -> None:
    code, out = eri_store("ls", "--store", filled.root)
    assert code == 0 and "toy" in out and "abc123" in out and " 11 " in out
    code, out = eri_store("info", "toy", "--store", filled.root)
    assert code == 0, out
    assert "face_detection_rate" in out and "0.6364" in out  # (8 * 0.5 + 3 * 1.0) / 11 clips
    assert "flagged clips" in out and "clips: 11" in out and "failed clips: 1" in out
    code, out = eri_store("info", "nope", "--store", filled.root)
    assert code == 2 and "features: toy" in out


def test_verify_ok_then_reports_nan_shape_and_truncation(filled: FeatureStore) -> None:
    code, out = eri_store("verify", "--store", filled.root)
    assert code == 0 and "OK" in out and "more than one shard" in out  # duplicates are info only
    shards = filled.feature_dir("toy", "abc123").shards()
    with h5py.File(shards[0], "r+") as f:
        key = next(iter(f["clips"]))
        f["clips"][key]["data"][0, 0] = np.nan
    with h5py.File(shards[1], "r+") as f:
        f["clips"].create_group("wrong").create_dataset("data", data=np.zeros((2, 5), np.float32))
        f["clips/wrong"].create_dataset("times", data=np.zeros(2))
    raw = shards[2].read_bytes()
    shards[2].write_bytes(raw[: len(raw) // 2])
    code, out = eri_store("verify", "--store", filled.root)
    assert code == 1, out
    assert "NaN" in out and "dim 6" in out and "cannot be read" in out and "FAILED: 3 problem" in out


def test_compact_gives_identical_arrays(filled: FeatureStore) -> None:
    fd = filled.feature_dir("toy", "abc123")
    before = snapshot(filled)
    assert len(fd.shards()) == 5
    code, out = eri_store("compact", "toy", "--store", filled.root)
    assert code == 0 and "2 duplicate(s) dropped" in out, out
    assert len(fd.shards()) == 1 and sorted(shard_ids(fd.shards()[0])) == sorted(before)
    assert_same(before, snapshot(filled))
    assert eri_store("verify", "--store", filled.root)[0] == 0
    assert eri_store("compact", "--all", "--store", filled.root)[0] == 0  # nothing left to merge
    assert eri_store("compact", "--store", filled.root)[0] == 2


def test_interrupted_compact_still_reads_each_clip_once(filled: FeatureStore, monkeypatch) -> None:
    fd = filled.feature_dir("toy", "abc123")
    before = snapshot(filled)
    real_unlink, calls = pathlib.Path.unlink, []

    def crash_after_two(self, missing_ok=False):
        if self.name.startswith("shard-"):
            calls.append(self)
            if len(calls) > 2:
                raise KeyboardInterrupt("simulated crash while removing merged shards")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", crash_after_two)
    from feature_store.compact import compact_dir

    with pytest.raises(KeyboardInterrupt):
        compact_dir(fd)
    monkeypatch.undo()
    assert len(fd.shards()) == 4  # merged shard published, 2 of 5 inputs removed
    assert_same(before, snapshot(filled))
    compact_dir(fd)
    assert len(fd.shards()) == 1
    assert_same(before, snapshot(filled))


def test_export_import_round_trip(filled: FeatureStore, tmp_path: Path) -> None:
    code, out = eri_store("export-csv", "toy", tmp_path / "feats", "--store", filled.root)
    assert code == 0, out
    csvs = sorted((tmp_path / "feats" / "toy").glob("*.csv"))
    assert len(csvs) == 11
    header = csvs[0].read_text().splitlines()[0]
    assert header == "id,timestamp," + ",".join(f"toy_{i}" for i in range(6))
    other = tmp_path / "other"
    code, out = eri_store("import-csv", tmp_path / "feats", "--feature", "toy", "--store", other)
    assert code == 0 and "imported 11" in out, out
    imported = FeatureStore(other).reader("toy")
    assert imported.spec["name"] == "toy" and imported.spec["dim"] == 6 and "imported_from" in imported.spec
    original = snapshot(filled)
    for clip_id, (data, times, _) in original.items():
        got, got_times = imported.get(clip_id)
        np.testing.assert_array_equal(got, data)
        np.testing.assert_array_equal(got_times, times)
    code, out = eri_store("import-csv", tmp_path / "feats" / "toy", "--feature", "toy", "--store", other)
    assert code == 0 and "imported 0, already present 11" in out  # same files → same fingerprint → resume
    assert FeatureStore(other).fingerprints("toy") == [imported.fingerprint]


def test_import_reports_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "csv" / "egemaps"
    src.mkdir(parents=True)
    (src / "a.csv").write_text("id,timestamp,f0,f1\na,0.0,1.5,2\na,0.5,3,4\n")
    (src / "b.csv").write_text("id,timestamp,f0,f1\nb,0.0,oops,2\n")
    (src / "c.csv").write_text("")
    code, out = eri_store("import-csv", tmp_path / "csv", "--feature", "egemaps", "--timestamp-unit", "ms",
                          "--store", tmp_path / "s")
    assert code == 1 and "imported 1" in out and "non-numeric" in out and "empty file" in out
    r = FeatureStore(tmp_path / "s").reader("egemaps")
    data, times = r.get("a")
    np.testing.assert_array_equal(data, [[1.5, 2], [3, 4]])
    np.testing.assert_array_equal(times, [0.0, 0.0005])
    failed = r.dir.failed()
    assert set(failed) == {"b", "c"} and json.dumps(failed)


def test_readers_survive_a_concurrent_compact(filled: FeatureStore, monkeypatch) -> None:
    from feature_store.compact import compact_dir
    from feature_store.feature_dir import FeatureDir

    before = snapshot(filled)
    fd = filled.feature_dir("toy", "abc123")
    reader = filled.reader("toy")  # index built on the old shards, no handle opened yet
    stale = fd.shards()
    compact_dir(fd)
    assert_same(before, {c: (*reader.get(c), reader.attrs(c)) for c in reader.ids()})  # reopens via refresh
    real_shards, calls = FeatureDir.shards, []

    def stale_first(self):  # a listing taken just before the compact removed the old shards
        calls.append(1)
        return stale if len(calls) == 1 else real_shards(self)

    monkeypatch.setattr(FeatureDir, "shards", stale_first)
    assert fd.completed() == set(before)
