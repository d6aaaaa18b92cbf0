"""eri-fit --search and --resume through the CLI on a MuSe-layout store: a search of 8 trials on a
local Dask cluster; searches killed with SIGINT and SIGKILL continue and end with N trials in
total; an interrupted fit continues and ends bit-identical to an uninterrupted one."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from fusion_helpers import BIN, run_cli
from signal_helpers import ctrl_c_lost_in_gc, interruptible

from fusion.cli import fit_main
from fusion.config import resolve_config

QUICK = ["--epochs", "3", "--patience", "100"]


def flat(text: str) -> str:
    """Console text without rich's line wrapping."""
    return " ".join(text.split())


def trials_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def finished_trials(search_dir) -> int:
    from fusion.search import open_study
    try:
        study = open_study(search_dir)
    except Exception:  # noqa: BLE001 — not created yet
        return 0
    return sum(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in study.trials)


def wait_for(predicate, proc, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.timeout(600)
def test_search_8_trials_on_a_local_cluster(muse_events, tmp_path, capsys):
    out = tmp_path / "search"
    args = muse_events.fit_args(out, *QUICK, "--search", "8", "--workers", "2")
    assert fit_main([a for a in args if a not in ("--threads", "1")]) == 0
    text = flat(capsys.readouterr().out)
    assert "[8/8]" in text and "best: trial" in text and "local (2 worker(s) x 1 thread(s))" in text
    rows = trials_csv(out / "trials.csv")
    assert [int(r["trial"]) for r in rows] == list(range(8))
    assert all(r["state"] in ("complete", "pruned") for r in rows)
    assert rows[0]["head"] == "conv_pool" and float(rows[0]["lr"]) == pytest.approx(3e-3)  # trial 0: the defaults
    for r in rows[1:]:  # the documented space, widened to contain trial 0 (lr up to 3e-3)
        assert 1e-5 <= float(r["lr"]) <= 3e-3 and int(r["batch_size"]) in (8, 16, 32, 64, 128, 256)
        assert int(r["hidden"]) in (32, 64, 128, 256) and 0 <= float(r["dropout"]) <= 0.5
    summary = json.loads((out / "search.json").read_text())
    best = summary["best_trial"]
    complete = [r for r in rows if r["state"] == "complete"]
    assert float(rows[best]["val_mean_pcc"]) == max(float(r["val_mean_pcc"]) for r in complete)
    best_dir = out / "best"
    assert best_dir.resolve() == (out / "trials" / f"trial-{best:04d}").resolve()
    metrics = json.loads((best_dir / "metrics.json").read_text())
    assert metrics["ensemble"]["mean_pcc"] == pytest.approx(summary["best_value"])
    cfg = resolve_config(out / "best_config.yaml", {})          # usable with eri-fit --config
    assert cfg.lr == pytest.approx(summary["best_params"]["lr"]) and cfg.head == summary["best_params"]["head"]
    again = tmp_path / "again"
    assert fit_main(muse_events.fit_args(again, "--config", str(out / "best_config.yaml"))) == 0
    assert json.loads((again / "metrics.json").read_text())["ensemble"]["mean_pcc"] > 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.timeout(600)
def test_interrupted_search_continues_to_n_trials(muse_events, tmp_path, sig):
    out = tmp_path / "search"
    n = 5
    args = muse_events.fit_args(out, *QUICK, "--search", str(n), "--scheduler", "sync", "--head-opt", "hidden=16")
    proc = interruptible([str(BIN / "eri-fit"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: finished_trials(out) >= 2, proc)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and f"eri-fit --resume {out}" in stdout.replace("\n", "")
    else:
        assert proc.returncode == -9
    before = finished_trials(out)
    assert 2 <= before < n
    text = run_cli("eri-fit", "--resume", str(out), "-q")
    rows = trials_csv(out / "trials.csv")
    assert [int(r["trial"]) for r in rows] == list(range(n))            # N in total, no duplicates, no gaps
    assert all(r["state"] in ("complete", "pruned") for r in rows), rows
    assert f"[{n}/{n}]" in text
    params = [(r["lr"], r["batch_size"], r["hidden"], r["dropout"]) for r in rows]
    assert len(set(params)) == n                                          # the continued search drew new ones
    for r in rows:
        if r["state"] == "complete":
            assert (Path(r["run_dir"]) / "metrics.json").is_file()


@pytest.mark.parametrize("kind", ["fit", "search"])
def test_a_ctrl_c_dropped_by_the_garbage_collector_still_stops_the_run(muse_events, tmp_path, monkeypatch,
                                                                      capsys, terminal_sigint, kind):
    """Python drops a KeyboardInterrupt raised inside a finalizer; the run must stop anyway (it once
    finished the whole search and exited 0) and say how to continue."""
    import fusion.train
    calls = {"n": 0}
    real = fusion.train.make_batch

    def make_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            ctrl_c_lost_in_gc()
        return real(*args, **kwargs)
    monkeypatch.setattr(fusion.train, "make_batch", make_batch)
    out = tmp_path / kind
    extra = ["--search", "3", "--scheduler", "sync"] if kind == "search" else []
    assert fit_main(muse_events.fit_args(out, *QUICK, "--head-opt", "hidden=16", *extra)) == 130
    assert terminal_sigint == [KeyboardInterrupt]           # the interrupt was indeed dropped by Python
    assert f"eri-fit--resume{out}" in "".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert not (out / "metrics.json").exists() and not (out / "search.json").exists()
    monkeypatch.setattr(fusion.train, "make_batch", real)
    assert fit_main(["--resume", str(out), "-q", "--no-plots"]) == 0


def test_search_refuses_bad_requests(muse_events, tmp_path, capsys):
    assert fit_main(muse_events.fit_args(tmp_path / "s", "--search", "2", "--search-heads", "ridge")) == 2
    assert "closed form" in flat(capsys.readouterr().out)
    space = tmp_path / "space.yaml"
    space.write_text("lr: [0.1, 0.01]\n")
    assert fit_main(muse_events.fit_args(tmp_path / "s", "--search", "2", "--search-space", str(space))) == 2
    assert "lr range" in flat(capsys.readouterr().out)
    space.write_text("width: [3]\n")
    assert fit_main(muse_events.fit_args(tmp_path / "s", "--search", "2", "--search-space", str(space))) == 2
    assert "unknown search-space key" in flat(capsys.readouterr().out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.timeout(300)
def test_resumed_fit_ends_where_an_uninterrupted_one_does(muse_events, tmp_path, sig):
    """Killed after its 2nd epoch and resumed: the same checkpoint, predictions and history as a
    run that was never interrupted (same seed, same thread count)."""
    steady = ["--epochs", "5", "--patience", "100", "--seeds", "2", "--head-opt", "hidden=16", "--no-plots"]
    assert fit_main(muse_events.fit_args(tmp_path / "whole", *steady)) == 0
    cut = tmp_path / "cut"
    proc = interruptible([str(BIN / "eri-fit"), *muse_events.fit_args(cut, *steady)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = cut / "checkpoints/seed1/resume.pt"                # the second model, mid-way

    def epochs_done() -> int:
        try:
            return int(torch.load(state, weights_only=True)["progress"]["epoch"])
        except Exception:  # noqa: BLE001 — not there yet, or being replaced
            return 0
    wait_for(lambda: epochs_done() >= 2, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert not (cut / "metrics.json").exists() and (cut / "checkpoints/seed0/member.json").exists()
    run_cli("eri-fit", "--resume", str(cut), "-q", "--no-plots")
    for name in ("predictions_val.csv", "predictions_test.csv", "checkpoints/seed0/model.safetensors",
                 "checkpoints/seed1/model.safetensors", "history.csv"):
        if name == "history.csv":
            drop = {"seconds", "train_seconds", "data_seconds"}
            a, b = (
                [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(open(p / name))]
                for p in (tmp_path / "whole", cut))
            assert a == b
        else:
            assert (tmp_path / "whole" / name).read_bytes() == (cut / name).read_bytes(), name
    assert not (cut / "checkpoints/seed1/resume.pt").exists()
    assert yaml.safe_load((cut / "config.yaml").read_text())["seeds"] == 2


def test_resume_refuses_changes_and_non_runs(muse_events, tmp_path, capsys):
    assert fit_main(["--resume", str(tmp_path)]) == 2
    assert "cannot resume" in flat(capsys.readouterr().out)
    run = tmp_path / "run"
    assert fit_main(muse_events.fit_args(run, "--epochs", "1", "--head-opt", "hidden=8")) == 0
    capsys.readouterr()
    assert fit_main(["--resume", str(run), "--lr", "0.1"]) == 2
    assert "keeps the run's configuration; drop --lr" in flat(capsys.readouterr().out)


def test_default_beats_ridge_on_a_small_event_set(muse_events, tmp_path):
    """The one quality check in the unit tests (the benchmark judges quality): the default recipe,
    untouched, beats the closed-form baseline by a clear margin on held-out clips."""
    assert fit_main(muse_events.fit_args(tmp_path / "default")) == 0
    m = json.loads((tmp_path / "default/metrics.json").read_text())
    assert m["head"] == "conv_pool" and m["beats_baseline"]
    assert m["ensemble"]["mean_pcc"] > m["baseline"]["val"]["mean_pcc"] + 0.05
