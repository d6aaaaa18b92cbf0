"""MuSe/Hume layout end to end, through the installed CLIs as a user types them.

A generated challenge-style folder: `feats/<Feature>/<id>.csv` for two features at different
frame rates (2 Hz and 25 Hz), ids written `[00001]` inside the CSVs, in labels.csv and in
partition.csv (`Id,Partition` with train/devel/test; test clips have no labels). In a fresh
working directory with no --store flag (default ./eri_store):
    eri-store import-csv feats/
    eri-fit --features A,B --labels labels.csv --partition partition.csv --out run
    eri-predict --run run --input test --labels labels.csv --partition partition.csv --output pred.csv
The predictions must carry the ids as the labels/partition files wrote them, and the model
must have learnt the relation the generator put between features and labels.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
EMOTIONS = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]
# feature name -> (frame rate in Hz, dim, id column name as written in its CSV header)
FEATURES = {"A": (2.0, 5, "File_ID"), "B": (25.0, 3, "Id")}
SPLITS = {"train": 48, "devel": 16, "test": 12}


def write_muse_folder(root: Path, seed: int = 0) -> dict[str, str]:
    """Write feats/, labels.csv and partition.csv under root; returns {written id: split}."""
    rng = np.random.default_rng(seed)
    ids = [f"[{i:05d}]" for i in range(1, sum(SPLITS.values()) + 1)]
    split_of = dict(zip(ids, [s for s, n in SPLITS.items() for _ in range(n)]))
    latent = rng.standard_normal((len(ids), 3))
    for name, (hz, dim, id_col) in FEATURES.items():
        mix = rng.standard_normal((3, dim))
        folder = root / "feats" / name
        folder.mkdir(parents=True)
        for cid, z in zip(ids, latent):
            n = int(rng.integers(3, 6) * hz)  # 3-5 s clips
            rows = z @ mix + 0.3 * rng.standard_normal((n, dim))
            with open(folder / f"{cid.strip('[]')}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow([id_col, "timestamp", *(f"{name.lower()}_{k}" for k in range(dim))])
                for t, row in enumerate(rows):
                    w.writerow([cid, f"{t / hz:.3f}", *(f"{v:.5f}" for v in row)])
    weights = rng.standard_normal((3, len(EMOTIONS)))
    targets = 1 / (1 + np.exp(-(latent @ weights)))
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["File_ID", *EMOTIONS])
        for cid, y in zip(ids, targets):
            if split_of[cid] != "test":
                w.writerow([cid, *(f"{v:.4f}" for v in y)])
    with open(root / "partition.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Id", "Partition"])
        w.writerows(split_of.items())
    return split_of


def cli(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ERI_STORE"}
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def first_column(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["File_ID", *EMOTIONS]
    return [r[0] for r in rows[1:]]


@pytest.mark.skipif(not (BIN / "eri-store").exists(), reason="console scripts not installed")
def test_muse_layout_import_fit_predict(tmp_path: Path) -> None:
    split_of = write_muse_folder(tmp_path)
    out = cli(tmp_path, "eri-store", "import-csv", "feats/")
    lines = [line for line in out.splitlines() if "imported" in line]
    assert len(lines) == 2 and lines[0].startswith("A@") and lines[1].startswith("B@"), out
    assert all(f"imported {len(split_of)}, already present 0, failed 0" in line for line in lines), out
    for name, (hz, dim, _) in FEATURES.items():
        spec_path, = (tmp_path / "eri_store" / name).glob("*/spec.json")
        spec = json.loads(spec_path.read_text())["spec"]
        assert spec["dim"] == dim and spec["frame_step"] == pytest.approx(1 / hz)
        assert spec["columns"] == [f"{name.lower()}_{k}" for k in range(dim)]
        assert Path(spec["imported_from"]) == (tmp_path / "feats" / name).resolve()

    cli(tmp_path, "eri-fit", "--features", "A,B", "--labels", "labels.csv", "--partition", "partition.csv",
        "--out", "run")
    run = tmp_path / "run"
    assert first_column(run / "predictions_val.csv") == [c for c, s in split_of.items() if s == "devel"]
    assert first_column(run / "predictions_test.csv") == [c for c, s in split_of.items() if s == "test"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["train"] == SPLITS["train"] and metrics["data"]["test"] == SPLITS["test"]
    assert metrics["ensemble"]["mean_pcc"] > 0.5, metrics["ensemble"]  # the relation was learnt

    out = cli(tmp_path, "eri-predict", "--run", "run", "--input", "test", "--labels", "labels.csv",
              "--partition", "partition.csv", "--output", "pred.csv")
    assert f"{SPLITS['test']} clips predicted" in out, out
    assert first_column(tmp_path / "pred.csv") == [c for c, s in split_of.items() if s == "test"]
    with open(tmp_path / "pred.csv") as a, open(run / "predictions_test.csv") as b:
        assert a.read() == b.read()  # the same models on the same clips
