"""Token-set items (T, N, D) stored as float16: write, read, verify, compact, export and import
through the eri-store CLI; the declared N and D are checked; h5py stays inside the shard module."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from feature_store import FeatureStore
from feature_store.cli import app
from feature_store.csv_io import grid_shape
from feature_store.verify import verify_dirs

N, D = 49, 16
SPEC = {"name": "maps", "version": "1", "dim": D, "item_shape": [N, D], "dtype": "float16"}
ROOT = Path(__file__).resolve().parents[2]


def _clip(i: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    t = 4 + i % 3
    return (rng.standard_normal((t, N, D)) * 3).astype(np.float32), np.arange(t) * 0.5


def _store(root: Path, clips: int = 7, per_shard: int = 3, dtype: str = "float16"):
    fd = FeatureStore(root).feature_dir("maps", "f16f16f16f16", spec={**SPEC, "dtype": dtype})
    for start in range(0, clips, per_shard):
        with fd.open_shard() as shard:
            for i in range(start, min(clips, start + per_shard)):
                shard.add(f"[{i:05d}]", *_clip(i))
    return fd


def test_float16_token_sets_round_trip_through_the_store_and_the_cli(tmp_path):
    fd = _store(tmp_path / "store")
    values = sum(_clip(i)[0].size for i in range(7))
    saved = _store(tmp_path / "f32", dtype="float32").size_bytes() - fd.size_bytes()
    assert saved >= 0.95 * 2 * values  # 2 bytes a value, not 4 (the rest of a shard is HDF5 metadata)
    with FeatureStore(tmp_path / "store").reader("maps") as reader:
        data, times = reader.get("00003")
        assert data.dtype == np.float32 and data.shape == (4, N, D)  # widened on read
        np.testing.assert_array_equal(data, _clip(3)[0].astype(np.float16).astype(np.float32))
        assert reader.get("00003", dtype=np.float16)[0].dtype == np.float16
        assert [a.shape for a in reader.load_all(dtype="float16")] == [_clip(i)[0].shape for i in range(7)]
        originals = {c: reader.get(c)[0] for c in reader.ids()}
    runner = CliRunner()
    store = ["--store", str(tmp_path / "store")]
    assert runner.invoke(app, ["verify", *store]).exit_code == 0
    result = runner.invoke(app, ["compact", "maps", *store])
    assert result.exit_code == 0 and "3 shard(s) → 1" in result.output
    assert runner.invoke(app, ["verify", *store]).exit_code == 0
    assert runner.invoke(app, ["export-csv", "maps", str(tmp_path / "csv"), *store]).exit_code == 0
    header = (tmp_path / "csv" / "maps" / "00001.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["id", "timestamp", "maps_0_0", "maps_0_1"] and header[-1] == f"maps_{N - 1}_{D - 1}"
    result = runner.invoke(app, ["import-csv", str(tmp_path / "csv"), "--dtype", "float16", "--store",
                                 str(tmp_path / "back")])
    assert result.exit_code == 0, result.output
    with FeatureStore(tmp_path / "back").reader("maps") as back:
        assert back.spec["item_shape"] == [N, D] and back.spec["dtype"] == "float16"
        for clip_id, original in originals.items():
            np.testing.assert_array_equal(back.get(clip_id)[0], original)  # float16 → text → float16, exactly
    info = runner.invoke(app, ["info", "maps", *store])
    assert info.exit_code == 0 and f"({N}, {D})" in info.output and "float16" in info.output


def test_items_of_another_token_count_are_refused_and_verify_names_them(tmp_path):
    fd = _store(tmp_path / "store", clips=2)
    with pytest.raises(ValueError, match=r"rows of \(49, 16\)"):
        with fd.open_shard() as shard:
            shard.add("bad", np.zeros((3, 36, D), np.float32), np.arange(3.0))
    import h5py  # tamper with a published shard the way a broken tool would

    with h5py.File(fd.shards()[0], "r+") as f:
        group = next(iter(f["clips"].values()))
        del group["data"]
        group.create_dataset("data", data=np.zeros((len(group["times"]), 36, D), np.float16))
    report = verify_dirs([fd])
    assert any("rows of (49, 16)" in p for p in report.problems), report.problems


def test_float16_refuses_values_beyond_its_range(tmp_path):
    fd = _store(tmp_path / "store", clips=1)
    with pytest.raises(ValueError, match="float16 range"):
        with fd.open_shard() as shard:
            shard.add("huge", np.full((2, N, D), 1e6, np.float32), np.arange(2.0))


def test_grid_columns_are_recognised_only_when_complete():
    names = [f"f_{n}_{d}" for n in range(3) for d in range(4)]
    assert grid_shape(names) == (3, 4)
    assert grid_shape(names[:-1]) is None and grid_shape(["f_0", "f_1"]) is None
    assert grid_shape([f"au_{i}_r" for i in range(4)]) is None


def test_h5py_is_imported_only_by_the_shard_module():
    """DESIGN, 'Seams worth having': the shard writer/reader pair is the only code that knows h5py."""
    importers = []
    for package in ("feature_store", "pipelines", "fusion"):
        for path in (ROOT / package).rglob("*.py"):
            if re.search(r"^\s*(import h5py|from h5py)", path.read_text(), re.M):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["feature_store/shard.py"]
