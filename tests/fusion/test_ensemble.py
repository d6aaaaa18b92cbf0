"""eri-ensemble through the CLI on runs trained with eri-fit on a MuSe-layout store."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from fusion.cli import ensemble_main, fit_main, predict_main


def preds(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return {r[0]: np.array(r[1:], dtype=float) for r in rows[1:]}


@pytest.fixture(scope="module")
def runs(muse_events, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    small = ["--epochs", "4", "--head-opt", "hidden=16"]
    assert fit_main(muse_events.fit_args(root / "conv_a", *small)) == 0
    assert fit_main(muse_events.fit_args(root / "conv_b", *small, "--seed", "3")) == 0
    assert fit_main(muse_events.fit_args(root / "ridge", "--head", "ridge")) == 0
    return root


def test_mean_of_members_written_like_a_run(runs, tmp_path, capsys):
    members = [runs / "conv_a", runs / "conv_b", runs / "ridge"]
    assert ensemble_main([*map(str, members), "--out", str(tmp_path / "ens")]) == 0
    out = capsys.readouterr().out
    assert "members" in out and "mean PCC" in out and "ridge baseline" in out
    ens = tmp_path / "ens"
    for kind in ("val", "test"):
        got = preds(ens / f"predictions_{kind}.csv")
        each = [preds(m / f"predictions_{kind}.csv") for m in members]
        assert list(got) == sorted(each[0]) and all(c.startswith("[") for c in got)  # ids as the labels spell them
        for cid, v in got.items():
            np.testing.assert_allclose(v, np.mean([e[cid] for e in each], axis=0), atol=2e-6)
    m = json.loads((ens / "metrics.json").read_text())
    assert [x["selected"] for x in m["members"]] == [1, 1, 1]
    assert m["ensemble"]["mean_pcc"] > 0 and "baseline" in m and m["data"] == {"val": 60, "test": 30}
    # eri-predict with the ensemble directory = its test predictions
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(preds(ens / "predictions_test.csv")))
    store = json.loads((runs / "conv_a/inputs.json").read_text())["store"]
    assert predict_main(["--run", str(ens), "--store", store, "--input", str(ids),
                         "--output", str(tmp_path / "p.csv")]) == 0
    got, want = preds(tmp_path / "p.csv"), preds(ens / "predictions_test.csv")
    assert list(got) == list(want)
    np.testing.assert_allclose(np.stack(list(got.values())), np.stack(list(want.values())), atol=2e-6)


def test_greedy_selection_table(runs, tmp_path, capsys):
    members = [runs / "ridge", runs / "conv_a", runs / "conv_b"]
    assert ensemble_main([*map(str, members), "--out", str(tmp_path / "g"), "--select", "greedy"]) == 0
    out = capsys.readouterr().out
    assert "greedy forward selection" in out
    m = json.loads((tmp_path / "g/metrics.json").read_text())
    steps = m["selection"]
    best_single = max(x["val"]["mean_pcc"] for x in m["members"])
    assert steps[0]["val_mean_pcc"] == pytest.approx(best_single)            # starts from the best run
    assert all(b["val_mean_pcc"] > a["val_mean_pcc"] for a, b in zip(steps, steps[1:]))  # each addition helps
    assert m["ensemble"]["mean_pcc"] == pytest.approx(steps[-1]["val_mean_pcc"])
    with open(tmp_path / "g/selection.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["added"] for r in rows] == [s["added"] for s in steps]
    assert sum(x["selected"] for x in m["members"]) == len(steps)


def test_mismatched_clip_sets_name_the_clips(runs, tmp_path, capsys):
    odd = tmp_path / "odd"
    shutil.copytree(runs / "conv_b", odd)
    with open(odd / "predictions_val.csv") as fh:
        lines = fh.read().splitlines()
    dropped = lines[1].split(",")[0]
    (odd / "predictions_val.csv").write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert ensemble_main([str(runs / "conv_a"), str(odd), "--out", str(tmp_path / "x")]) == 2
    out = capsys.readouterr().out.replace("\n", "")
    assert "different clips" in out and dropped.strip("[]") in out and "conv_a" in out
    assert ensemble_main([str(runs / "conv_a"), "--out", str(tmp_path / "x")]) == 2
    assert "at least two" in capsys.readouterr().out
