"""The dual-branch model end to end, through the installed CLIs as the README's worked section
types them: generated clips -> eri-extract (faces at 112 px, 32 uniform frames, ResNet18 maps
with random stand-in weights stored as float16, MFCC) -> eri-fit --recipe dual_branch_2023 ->
eri-predict. Random weights: the numbers mean nothing; what is checked is the path (store
shapes and dtype, the model the recipe builds, predictions in the challenge layout)."""
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
MAPS = "resnet18_affectnet_maps"


def cli(cwd: Path, env: dict, *args: str) -> str:
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_dual_branch_from_clips_to_predictions(tmp_path, sample_dataset, blazeface_model):
    from extract.catalog import catalog
    from feature_store import FeatureStore

    weights = tmp_path / "weights"
    catalog().get(MAPS).make_random_weights(weights)
    env = {**{k: v for k, v in os.environ.items() if k != "ERI_STORE"}, "ERI_WEIGHTS_DIR": str(weights),
           "OMP_NUM_THREADS": "1"}
    store = tmp_path / "store"
    cli(tmp_path, env, "eri-extract", "-i", str(sample_dataset.video_dir), "-s", str(store), "-m", "all",
        "-f", f"{MAPS},mfcc", "--face-size", "112", "--frames", "32", "--set", f"{MAPS}.dtype=float16",
        "--weights", f"blazeface={blazeface_model}", "--workers", "1")
    with FeatureStore(store).reader(MAPS) as reader:
        assert len(reader) == len(sample_dataset.ids)
        assert reader.spec["item_shape"] == [49, 256] and reader.spec["dtype"] == "float16"
        item = reader.item(reader.ids()[0])
        assert item.shape == (32, 49, 256) and item.dtype == np.float16

    run = tmp_path / "run"
    out = cli(tmp_path, env, "eri-fit", "--store", str(store), "--labels", str(sample_dataset.labels_csv),
              "--features", f"{MAPS},mfcc", "--recipe", "dual_branch_2023", "--epochs", "2", "--threads", "1",
              "--out", str(run), "--no-plots")
    assert "dual_branch_2023" in out
    features = json.loads((run / "features.json").read_text())
    assert features[MAPS]["tokens"] == 49 and features[MAPS]["dim"] == 256 and features[MAPS]["steps"] == 32
    assert features["mfcc"]["modality"] == "audio" and "tokens" not in features["mfcc"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["ensemble"]["mean_pcc"]) and "baseline" in metrics

    from fusion.checkpoint import load_checkpoint
    ck = load_checkpoint(next((run / "checkpoints").iterdir()))
    spatial = ck.model.frontend[MAPS]
    assert type(spatial).__name__ == "SpatialEncoder" and len(spatial.enc.layers) == 4
    assert spatial.pos.shape == (49, 256) and spatial.enc.layers[0].self_attn.num_heads == 4

    pred = tmp_path / "pred.csv"
    cli(tmp_path, env, "eri-predict", "--run", str(run), "--store", str(store), "--input", "test",
        "--labels", str(sample_dataset.labels_csv), "--output", str(pred))
    with open(pred, newline="") as fh:
        rows = list(csv.reader(fh))
    with open(sample_dataset.labels_csv, newline="") as fh:
        test_ids = [r["File_ID"] for r in csv.DictReader(fh) if r.get("Split") == "test"]
    assert rows[0][0] == "File_ID" and len(rows[0]) == 8
    assert [r[0] for r in rows[1:]] == test_ids and test_ids
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert ((values >= 0) & (values <= 1)).all()
