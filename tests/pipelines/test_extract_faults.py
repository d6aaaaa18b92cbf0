"""Broken clips fail alone with clear reasons; Ctrl-C stops a local-cluster run cleanly and a rerun
continues where it stopped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from signal_helpers import ctrl_c_lost_in_gc, interruptible
from test_extract_helpers import cli, cli_command, occurrences, subset_manifest, wait_for, weights_args  # noqa: F401

from feature_store import FeatureStore
from feature_store.verify import verify_dirs

BROKEN = {  # kind -> words the reason must contain (video; audio)
    "truncated": ("truncated",),
    "truncated_index": ("truncated", "moov"),
    "zero_length": ("zero-length",),
    "not_media": ("not a readable media file",),
}


def test_broken_clips_are_recorded_with_reasons_and_the_rest_finish(tmp_path, sample_variants, weights_args):
    kinds = ["face", "no_audio", *BROKEN]
    manifest = subset_manifest(tmp_path / "clips.csv", [sample_variants[k] for k in kinds])
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    code, out = cli("-i", manifest, "-s", store, "-f", "mfcc,faces,fer_minixception", "--scheduler", "sync",
                    "--clips-per-task", "6", "--summary-json", summary, *weights_args)
    assert code == 1, out  # partial: the broken clips failed alone, the rest is stored
    fs = FeatureStore(store)
    expected_ok = {"mfcc": {"face"}, "faces": {"face", "no_audio"}, "fer_minixception": {"face", "no_audio"}}
    for feature, ok in expected_ok.items():
        fd = fs.resolve(feature)
        assert fd.completed() == ok, feature
        failed = fd.failed()
        assert set(failed) == set(kinds) - ok, feature
        for kind, record in failed.items():
            reason = record["reason"]
            assert str(sample_variants[kind].path) in reason, reason  # names the file …
            words = BROKEN.get(kind, ("no audio stream",))
            assert all(w in reason for w in words), (feature, kind, reason)  # … and the problem
            assert record["source"] == str(sample_variants[kind].path) and record["size"] >= 0
    result = json.loads(summary.read_text())["features"]
    assert {f: (t["done"], t["failed"]) for f, t in result.items()} == \
        {f: (len(ok), len(kinds) - len(ok)) for f, ok in expected_ok.items()}
    assert verify_dirs(fs.feature_dirs()).ok


def test_ctrl_c_stops_cleanly_and_a_rerun_continues(tmp_path, sample_dataset, weights_args):
    clips = sample_dataset.clips[10:18]
    manifest = subset_manifest(tmp_path / "clips.csv", clips)
    store = tmp_path / "store"
    args = ["-i", manifest, "-s", store, "-m", "video", "--workers", "2", "--clips-per-task", "1", *weights_args]
    run = interruptible(cli_command(*args, "--summary-json", tmp_path / "first.json"), stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: list(store.glob("fer_minixception/*/shard-*.h5")) or run.poll() is not None, 180,
                 "the first finished clip")
        assert run.poll() is None, "the run ended before it could be interrupted"
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        sent = time.monotonic()
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    text = out.decode()
    assert run.returncode == 130, text[-3000:]
    assert time.monotonic() - sent < 30
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "interrupted" in text and json.loads((tmp_path / "first.json").read_text())["interrupted"]

    finished = {f: FeatureStore(store).resolve(f).completed() for f in ("faces", "fer_minixception")}
    assert 1 <= len(finished["fer_minixception"]) < len(clips)
    code, out = cli(*args, "--summary-json", tmp_path / "second.json")
    assert code == 0, out
    second = json.loads((tmp_path / "second.json").read_text())["features"]
    for feature, done_before in finished.items():
        assert second[feature]["skipped_cached"] == len(done_before)
        assert second[feature]["done"] == len(clips) - len(done_before)
        assert occurrences(store, feature) == {c.id: 1 for c in clips}
    assert verify_dirs(FeatureStore(store).feature_dirs()).ok


def test_a_ctrl_c_dropped_by_the_garbage_collector_still_stops_extraction(tmp_path, sample_dataset, monkeypatch,
                                                                          terminal_sigint):
    """Python drops a KeyboardInterrupt raised inside a finalizer: the run must still stop after
    the task in hand (exit 130, that clip kept) and a rerun must do only the rest."""
    import pipelines.runner
    clips = sample_dataset.clips[:4]
    args = ["-i", subset_manifest(tmp_path / "clips.csv", clips), "-s", tmp_path / "store", "-m", "audio",
            "-f", "mfcc", "--scheduler", "sync", "--clips-per-task", "1"]
    real = pipelines.runner.run_task

    def run_task(task):
        result = real(task)
        ctrl_c_lost_in_gc()
        return result
    monkeypatch.setattr(pipelines.runner, "run_task", run_task)
    code, out = cli(*args)
    assert code == 130 and terminal_sigint == [KeyboardInterrupt], out
    assert len(FeatureStore(tmp_path / "store").resolve("mfcc").completed()) == 1
    monkeypatch.setattr(pipelines.runner, "run_task", real)
    code, out = cli(*args, "--summary-json", tmp_path / "second.json")
    assert code == 0, out
    second = json.loads((tmp_path / "second.json").read_text())["features"]["mfcc"]
    assert (second["skipped_cached"], second["done"]) == (1, 3)
