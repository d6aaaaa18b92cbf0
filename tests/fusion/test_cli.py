"""eri-fit / eri-predict end to end on a small synthetic store."""
from __future__ import annotations

import csv
import json

import pytest

from fusion.cli import fit_main, predict_main


def fit_args(s, out, *extra):
    return ["--store", str(s.root), "--labels", str(s.labels), "--features", "synth_audio,synth_video",
            "--head", "te", "--head-opt", "d_model=16", "--head-opt", "layers=1", "--epochs", "2",
            "--threads", "1", "--steps", "8", "--steps", "synth_audio=12", "--out", str(out), "-q", *extra]


def test_list_heads_one_line_each(capsys):
    assert fit_main(["--list-heads"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["av_interaction", "cross_attention_rnn", "lstm",
                                               "tcn_transformer", "te"]
    assert fit_main(["--show-head", "tcn_transformer"]) == 0
    assert "p_m = 0.1" in capsys.readouterr().out


def test_help_mentions_the_essentials(capsys):
    with pytest.raises(SystemExit):
        fit_main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--features", "--folds", "--partition", "--missing", "--seeds", "--steps", "--config",
                 "--list-heads", "examples:"):
        assert flag in text


def test_fit_then_predict(synth_small, tmp_path, capsys):
    run = tmp_path / "run"
    assert fit_main(fit_args(synth_small, run, "--seeds", "2")) == 0
    out = capsys.readouterr().out
    assert "mean PCC" in out and "Empathic-Pain" in out and str(run) in out
    feats = json.loads((run / "features.json").read_text())
    assert feats["synth_audio"]["steps"] == 12 and feats["synth_video"]["steps"] == 8
    ids = tmp_path / "ids.txt"
    ids.write_text("File_ID\n[00100]\n00101\n\n00102\n")
    pred = tmp_path / "p.csv"
    assert predict_main(["--run", str(run), "--store", str(synth_small.root), "--input", str(ids),
                         "--output", str(pred)]) == 0
    rows = list(csv.reader(pred.open()))
    # ids are written back as the ids file spelled them
    assert rows[0][0] == "File_ID" and [r[0] for r in rows[1:]] == ["[00100]", "00101", "00102"]
    assert all(0 <= float(v) <= 1 for r in rows[1:] for v in r[1:])
    capsys.readouterr()
    assert predict_main(["--run", str(run), "--store", str(synth_small.root), "--input", "test",
                         "--labels", str(synth_small.labels), "--output", str(pred)]) == 0
    out = capsys.readouterr().out
    assert "18 clips predicted with 2 model(s)" in out and "mean PCC=" in out
    assert list(csv.reader(pred.open()))[1:] == list(csv.reader((run / "predictions_test.csv").open()))[1:]


def test_user_errors_exit_2_with_a_message(synth_small, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("File_ID,Adoration\n1,0.5\n")
    assert fit_main(fit_args(synth_small, tmp_path / "r", "--labels", str(bad))) == 2
    assert "missing column" in capsys.readouterr().out
    assert fit_main(fit_args(synth_small, tmp_path / "r", "--features", "synth_audio,nope")) == 2
    assert "'nope' is not in the store" in capsys.readouterr().out
    assert fit_main(fit_args(synth_small, tmp_path / "r", "--head-opt", "width=3")) == 2
    assert "unknown option" in capsys.readouterr().out
    assert predict_main(["--run", str(tmp_path / "none"), "--input", "test", "--labels",
                         str(synth_small.labels)]) == 2
    assert "not an eri-fit run" in capsys.readouterr().out
