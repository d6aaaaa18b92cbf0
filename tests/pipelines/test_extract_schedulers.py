"""Real Dask on loopback: same arrays from every scheduler, models loaded once per worker process,
and a worker killed (SIGKILL) mid-batch → the batch is retried, no duplicate or partial entries.

Features: mfcc + egemaps (audio), faces + fer_minixception (video, real weights)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from test_extract_helpers import (cli, cli_command, entries, occurrences, subset_manifest, tcp_cluster,
                                  wait_for, weights_args)  # noqa: F401 (fixture)

from feature_store import FeatureStore
from feature_store.verify import verify_dirs
from pipelines.settings import usable_cores

FEATURES = ("mfcc", "egemaps", "faces", "fer_minixception")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> str:
    with tcp_cluster(2, tmp_path_factory.mktemp("dask-logs")) as address:
        yield address


def _extract(manifest: Path, store: Path, weights_args: list[str], *args: str) -> dict:
    summary = store.with_suffix(".json")
    code, out = cli("-i", manifest, "-s", store, "-f", ",".join(FEATURES), "--clips-per-task", "1",
                    "--summary-json", summary, *weights_args, *args)
    assert code == 0, out
    return json.loads(summary.read_text())


def test_same_arrays_from_every_scheduler_and_models_load_once(tmp_path, sample_dataset, weights_args, cluster):
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:4])
    runs = {"sync": ("--scheduler", "sync"), "local1": ("--workers", "1"), "local2": ("--workers", "2"),
            "tcp": ("--scheduler", cluster)}
    summaries = {name: _extract(manifest, tmp_path / name, weights_args, *args) for name, args in runs.items()}
    for name, summary in summaries.items():
        assert all(summary["features"][f]["done"] == 4 for f in FEATURES), (name, summary["features"])
    assert summaries["local2"]["workers_seen"] == 2 and summaries["tcp"]["workers_seen"] == 2

    reference = {f: entries(tmp_path / "sync", f) for f in FEATURES}
    for name in runs:
        for feature in FEATURES:
            got = entries(tmp_path / name, feature)
            assert got.keys() == reference[feature].keys()
            for clip, (data, times) in got.items():
                np.testing.assert_array_equal(times, reference[feature][clip][1])
                np.testing.assert_allclose(data, reference[feature][clip][0], rtol=1e-5, atol=1e-5,
                                           err_msg=f"{name} {feature} {clip}")

    with Client(cluster) as client:  # 8 tasks ran on 2 worker processes: each built each model once
        from pipelines.worker import model_loads

        loads = client.run(model_loads)
        import torch

        threads = client.run(torch.get_num_threads)
    assert set(threads.values()) == {max(1, usable_cores() // 2)}  # auto: the host's cores / its 2 workers
    assert len(loads) == 2
    assert all(count == 1 for per_worker in loads.values() for count in per_worker.values()), loads
    assert {f for per_worker in loads.values() for f in per_worker} == set(FEATURES)


def test_worker_killed_mid_batch_is_retried_without_duplicates(tmp_path, sample_dataset, weights_args, cluster):
    clips = sample_dataset.clips[4:10]
    manifest = subset_manifest(tmp_path / "clips.csv", clips)
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    with Client(cluster) as client:
        pids_before = client.run(os.getpid)
        run = subprocess.Popen(cli_command("-i", manifest, "-s", store, "-m", "video", "--scheduler", cluster,
                                           "--clips-per-task", "2", "--summary-json", summary, *weights_args),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            busy: dict = {}

            def a_worker_is_busy() -> bool:
                busy.update({w: keys for w, keys in client.processing().items() if keys})
                return bool(busy)

            wait_for(a_worker_is_busy, 120, "a task to start")
            victim = next(iter(busy))
            os.kill(pids_before[victim], signal.SIGKILL)
            out, _ = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, out.decode()[-3000:]
        wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 60, "the nanny to restart the worker")
        assert set(client.run(os.getpid).values()) != set(pids_before.values())

    result = json.loads(summary.read_text())["features"]
    for feature in ("faces", "fer_minixception"):
        assert result[feature]["done"] == len(clips), result
        assert occurrences(store, feature) == {c.id: 1 for c in clips}  # every clip once, none partial
    report = verify_dirs(FeatureStore(store).feature_dirs())
    assert report.ok, report.problems
    code, out = cli("-i", manifest, "-s", store, "-m", "video", "--dry-run", *weights_args)
    assert "nothing to compute" in out


FAKE_SBATCH = """#!/bin/bash
# stands in for SLURM: runs the job script here, in its own process group, and reports a job id
id=$((RANDOM * 32768 + RANDOM))
cp "$1" "$FAKE_SLURM/job-$id.sh"  # like sbatch: the script is read at submission
setsid bash "$FAKE_SLURM/job-$id.sh" > "$FAKE_SLURM/job-$id.log" 2>&1 < /dev/null &
echo $! > "$FAKE_SLURM/job-$id.pid"
echo "Submitted batch job $id"
"""
FAKE_SCANCEL = """#!/bin/bash
for id in "$@"; do kill -TERM -- "-$(cat "$FAKE_SLURM/job-$id.pid")" 2>/dev/null; done
exit 0
"""


def test_slurm_path_end_to_end_with_a_stand_in_sbatch(tmp_path, sample_dataset, monkeypatch):
    """The real SLURMCluster code path; `sbatch` runs the generated job script locally; the scheduler
    and the worker use interface `lo` only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(tmp_path))
    config = tmp_path / "slurm.yaml"
    config.write_text("cores: 1\nprocesses: 1\nmemory: 2GB\nwalltime: '00:10:00'\njobs: 1\ninterface: lo\n"
                      "scheduler_options: {dashboard_address: '127.0.0.1:0'}\n"
                      f"log_directory: {tmp_path / 'logs'}\n")
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:2])
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    try:
        code, out = cli("-i", manifest, "-s", store, "-m", "audio", "-f", "mfcc", "--cluster", "slurm",
                        "--cluster-config", config, "--summary-json", summary)
    finally:
        for pid_file in tmp_path.glob("job-*.pid"):  # in case scancel was never reached
            subprocess.run(["bash", str(bin_dir / "scancel"), pid_file.stem[4:]], check=False)
    assert code == 0, out
    assert json.loads(summary.read_text())["features"]["mfcc"]["done"] == 2
    script = next(tmp_path.glob("job-*.sh")).read_text()
    assert "tcp://127.0.0.1:" in script and "--interface lo" in script
    assert entries(store, "mfcc").keys() == {c.id for c in sample_dataset.clips[:2]}
