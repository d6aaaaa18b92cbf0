"""`eri-store import-csv` on MuSe/Hume-style folders: every feature folder at once, --feature to
select or rename, canonical ids, spec.json contents, reruns, and failures that stop nothing."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from feature_store import FeatureStore
from feature_store.cli import app
from feature_store.names import encode_id

runner = CliRunner()


def eri_store(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def write_feature(folder: Path, ids: list[str], hz: float, dim: int, id_col: str = "File_ID",
                  rows: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """One MuSe CSV per id (file named without brackets, id column as given); returns the data."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for cid in ids:
        data = rng.standard_normal((rows, dim)).astype(np.float32)
        lines = [",".join([id_col, "timestamp", *(f"f{k}" for k in range(dim))])]
        lines += [",".join([cid, f"{t / hz:.4f}", *("%.9g" % v for v in row)]) for t, row in enumerate(data)]
        (folder / f"{cid.strip('[]')}.csv").write_text("\n".join(lines) + "\n")
        out[cid] = data
    return out


@pytest.fixture
def feats(tmp_path: Path) -> Path:
    root = tmp_path / "feats"
    ids = [f"[{i:05d}]" for i in range(1, 5)]
    write_feature(root / "VGGFace2", ids, hz=2.0, dim=4, id_col="File_ID")
    write_feature(root / "eGeMAPS", ids, hz=25.0, dim=3, id_col="Id", rows=20)
    write_feature(root / "DeepSpectrum", ids, hz=1.0, dim=2, id_col="id", rows=1)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.csv").write_text("id,timestamp,f0\nx,0,1\n")
    (root / "notes").mkdir()  # a folder without CSVs is not a feature
    return root


def import_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": imported " in line]


def test_import_every_feature_folder_then_rerun_skips(feats: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out = eri_store("import-csv", feats, "--store", store)
    assert code == 0, out
    lines = import_lines(out)
    assert [line.split("@")[0] for line in lines] == ["DeepSpectrum", "VGGFace2", "eGeMAPS"]
    assert all("imported 4, already present 0, failed 0" in line for line in lines), out
    fs = FeatureStore(store)
    assert fs.features() == ["DeepSpectrum", "VGGFace2", "eGeMAPS"]
    for name, (step, dim, id_col) in {"VGGFace2": (0.5, 4, "File_ID"), "eGeMAPS": (0.04, 3, "Id"),
                                      "DeepSpectrum": (None, 2, "id")}.items():
        with fs.reader(name) as r:
            assert r.ids() == ["00001", "00002", "00003", "00004"]  # canonical, brackets gone
            assert r.spec["dim"] == dim and r.spec["columns"] == [f"f{k}" for k in range(dim)]
            assert r.spec["frame_step"] == step and r.spec["id_column"] == id_col
            assert r.spec["imported_from"] == str((feats / name).resolve())
    code, out = eri_store("import-csv", feats, "--store", store)
    assert code == 0 and len(import_lines(out)) == 3, out
    assert all("imported 0, already present 4, failed 0" in line for line in import_lines(out)), out
    assert all(len(fs.fingerprints(f)) == 1 for f in fs.features())


def test_feature_option_selects_or_renames(feats: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out = eri_store("import-csv", feats, "--feature", "eGeMAPS", "--store", store)
    assert code == 0 and [line.split("@")[0] for line in import_lines(out)] == ["eGeMAPS"], out
    code, out = eri_store("import-csv", feats / "VGGFace2", "--feature", "vggface2", "--store", store)
    assert code == 0 and import_lines(out)[0].startswith("vggface2@"), out
    code, out = eri_store("import-csv", feats / "DeepSpectrum", "--store", store)  # named after the folder
    assert code == 0 and import_lines(out)[0].startswith("DeepSpectrum@"), out
    assert FeatureStore(store).features() == ["DeepSpectrum", "eGeMAPS", "vggface2"]
    code, out = eri_store("import-csv", feats, "--feature", "nope", "--store", store)
    assert code == 2 and "no sub-folder 'nope'" in out and "VGGFace2" in out, out
    code, out = eri_store("import-csv", feats / "notes", "--store", store)
    assert code == 2 and "no .csv files" in out, out


def test_a_failing_folder_or_file_stops_nothing(feats: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (feats / "Broken").mkdir()
    (feats / "Broken" / "00001.csv").write_text("no header here\n")
    (feats / "bad name").mkdir()
    write_feature(feats / "bad name", ["00001"], hz=1.0, dim=2)
    (feats / "VGGFace2" / "00003.csv").write_text("File_ID,timestamp,f0,f1,f2,f3\n[00003],0,1,2,x,4\n")
    code, out = eri_store("import-csv", feats, "--store", store)
    assert code == 1, out
    assert [line.split("@")[0] for line in import_lines(out)] == ["DeepSpectrum", "VGGFace2", "eGeMAPS"]
    assert "imported 3, already present 0, failed 1" in out and "00003" in out and "non-numeric" in out
    assert "Broken: not imported" in out and "bad name: not imported" in out and "invalid feature name" in out
    assert "failures in: Broken (not imported), VGGFace2 (1 clip(s)), bad name (not imported)" in out
    assert set(FeatureStore(store).resolve("VGGFace2").failed()) == {"00003"}


def test_old_import_with_bracketed_ids_is_found_and_not_duplicated(feats: Path, tmp_path: Path) -> None:
    """A store written by the import before the canonical rule holds groups named `[00001]`:
    reimporting the same files skips them, and readers find them as `00001`."""
    store = tmp_path / "store"
    assert eri_store("import-csv", feats, "--feature", "VGGFace2", "--store", store)[0] == 0
    fd = FeatureStore(store).resolve("VGGFace2")
    for shard in fd.shards():
        with h5py.File(shard, "r+") as f:
            for key in list(f["clips"]):
                f["clips"].move(key, encode_id(f"[{key}]"))
    code, out = eri_store("import-csv", feats, "--feature", "VGGFace2", "--store", store)
    assert code == 0 and "imported 0, already present 4" in out, out
    with FeatureStore(store).reader("VGGFace2") as r:
        assert r.ids() == ["00001", "00002", "00003", "00004"] and r.get("00002")[0].shape == (6, 4)


def test_import_tolerates_a_byte_order_mark_and_reports_duplicate_ids(tmp_path: Path) -> None:
    src = tmp_path / "feats" / "A"
    write_feature(src, ["[00001]", "00002"], hz=2.0, dim=2)
    raw = (src / "00001.csv").read_text()
    (src / "00001.csv").write_text("\ufeff" + raw)
    (src / "copy.csv").write_text(raw)  # a second file claiming clip [00001]
    code, out = eri_store("import-csv", tmp_path / "feats", "--store", tmp_path / "s")
    assert code == 1 and "imported 2" in out and "also the id of" in out, out
    assert json.dumps(FeatureStore(tmp_path / "s").resolve("A").failed())
