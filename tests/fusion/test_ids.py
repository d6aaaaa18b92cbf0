"""Clip ids in fusion: labels, partition and ids files follow the store's canonical rule, the
spelling the user wrote comes back in predictions, and integer ids without zero padding match
the store by value when (and only when) that is unambiguous."""
from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from feature_store import FeatureStore
from fusion.cli import fit_main, predict_main
from fusion.labels import EMOTION_COLUMNS, LabelError, align_ids, load_labels, read_partition
from fusion.rundir import read_ids_file, read_ids_file_spelled, write_predictions

HEADER = "File_ID," + ",".join(EMOTION_COLUMNS)
VALUES = ",".join(["0.5"] * 7)


def fit_args(store: Path, labels: Path, out: Path, *extra: str) -> list[str]:
    return ["--store", str(store), "--labels", str(labels), "--features", "synth_audio,synth_video",
            "--head", "te", "--head-opt", "d_model=16", "--head-opt", "layers=1", "--epochs", "2",
            "--threads", "1", "--steps", "8", "--out", str(out), "-q", "--no-plots", *extra]


def first_column(path: Path) -> list[str]:
    return [r[0] for r in list(csv.reader(path.open()))[1:]]


def test_labels_and_partition_keep_the_written_spelling(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(f"{HEADER}\n[00001],{VALUES}\n 00002 ,{VALUES}\n[00003],{VALUES}\n")
    part = tmp_path / "partition.csv"
    part.write_text("Id,Partition\n[00001],train\n[00002],devel\n00003,devel\n[00004],test\n")
    assert read_partition(part) == {"00001": "train", "00002": "val", "00003": "val", "00004": "test"}
    lab = load_labels(labels, partition=part)
    assert lab.ids == ["00001", "00002", "00003", "00004"] and lab.split == ["train", "val", "val", "test"]
    assert lab.spelling() == {"00001": "[00001]", "00002": "00002", "00003": "[00003]", "00004": "[00004]"}
    assert lab.select(["00004", "00001"]).spelled == ["[00004]", "[00001]"]
    assert load_labels(labels, clip_ids=["[00001]", "00002", "00003"]).ids == ["00001", "00002", "00003"]
    renamed = lab.renamed({"00001": "1"})
    assert renamed.ids[0] == "1" and renamed.spelling()["1"] == "[00001]"


def test_ids_file_and_predictions_csv(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\ufeffFile_ID\n[00007]\n00008,extra\n\n[00007]\n")
    assert read_ids_file(ids) == ["00007", "00008"]
    assert read_ids_file_spelled(ids) == {"00007": "[00007]", "00008": "00008"}
    out = tmp_path / "p.csv"
    write_predictions(out, ["00007", "00008"], np.full((2, 7), 0.5), {"00007": "[00007]"})
    assert first_column(out) == ["[00007]", "00008"]


def test_align_ids_by_integer_value_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fusion.labels"):
        got = align_ids(["1", "2", "00003", "9"], {"00001", "00002", "00003"}, "labels.csv")
    assert got == {"1": "00001", "2": "00002", "00003": "00003", "9": "9"}  # 9: left to --missing
    assert "labels.csv: 2 id(s) matched stored clips by integer value ('1' -> '00001'" in caplog.text


def test_align_ids_refuses_to_guess_and_says_what_does_not_match() -> None:
    with pytest.raises(LabelError, match=r"'1' could be any of the stored clips '001', '01'"):
        align_ids(["1", "2"], {"01", "001", "00002"}, "labels.csv")
    with pytest.raises(LabelError, match=r"'2' has the integer value of stored clip '00002'"):
        align_ids(["2", "00002"], {"00002"}, "labels.csv")
    with pytest.raises(LabelError) as ei:
        align_ids(["a1", "a2"], {"00001", "00002"}, "labels.csv")
    msg = str(ei.value)
    assert "none of its 2 id(s)" in msg and "'a1'" in msg and "'00001'" in msg and "--missing" not in msg


def unpadded_labels(src: Path, dst: Path) -> list[str]:
    """The synthetic labels with ids written `7` instead of `00007`; returns the written ids."""
    rows = list(csv.reader(src.open()))
    for r in rows[1:]:
        r[0] = str(int(r[0]))
    with dst.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return [r[0] for r in rows[1:]]


def test_fit_and_predict_with_unpadded_integer_ids(synth_small, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    labels = tmp_path / "labels.csv"
    written = unpadded_labels(synth_small.labels, labels)
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="fusion.labels"):
        assert fit_main(fit_args(synth_small.root, labels, run)) == 0
    assert "matched stored clips by integer value" in caplog.text
    val = first_column(run / "predictions_val.csv")
    assert val and set(val) <= set(written) and not any(c.startswith("0") for c in val if c != "0")
    pred = tmp_path / "pred.csv"
    assert predict_main(["--run", str(run), "--store", str(synth_small.root), "--input", "test",
                         "--labels", str(labels), "--output", str(pred)]) == 0
    assert first_column(pred) == first_column(run / "predictions_test.csv")
    assert set(first_column(pred)) <= set(written)


def test_fit_with_ambiguous_integer_ids_exits_2_naming_them(synth_small, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    shutil.copytree(synth_small.root, store)
    fs = FeatureStore(store)
    for name in ("synth_audio", "synth_video"):  # a second spelling of clip 7's integer value
        fd = fs.resolve(name)
        with fs.reader(name) as r:
            data, times = r.get("00007")
        with fd.open_shard() as shard:
            shard.add("007", data, times)
    labels = tmp_path / "labels.csv"
    unpadded_labels(synth_small.labels, labels)
    assert fit_main(fit_args(store, labels, tmp_path / "run")) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "'7' could be any of the stored clips '00007', '007'" in out, out
