"""Acceptance 3: SIGKILL a writer at random points; only whole shards survive, nothing committed is
lost, `eri-store verify` passes, and a resumed run ends with exactly one copy of every clip."""
from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from feature_store import FeatureStore
from feature_store.shard import shard_ids

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from crash_writer import FP, clip_data  # noqa: E402

N_CLIPS, PER_SHARD, TRIALS = 150, 3, 10


def _eri_store() -> list[str]:
    script = Path(sys.executable).with_name("eri-store")
    return [str(script)] if script.exists() else [sys.executable, "-m", "feature_store.cli"]


def _writer(store: Path, kind: str = "vectors") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(store), str(N_CLIPS), str(PER_SHARD),
                             kind], stdout=subprocess.PIPE, text=True)


def _copies(store: Path) -> Counter:
    fd = FeatureStore(store).feature_dir("crashy", FP)
    return Counter(c for shard in fd.shards() for c in shard_ids(shard))


def _full_write_seconds(store: Path, kind: str) -> float:
    """How long one whole write takes on this machine, so kill times spread over it (fast or loaded)."""
    proc = _writer(store, kind)
    assert proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    out, _ = proc.communicate(timeout=120)
    assert "finished" in out
    shutil.rmtree(store)
    return time.perf_counter() - start


@pytest.mark.parametrize("kind", ["vectors", "tokens"])
def test_sigkill_at_random_points_leaves_only_whole_shards(tmp_path: Path, kind: str) -> None:
    """Each kill comes after a random number of published shards plus a random part of the time one
    shard takes, so kills land mid-write however fast or loaded the machine is."""
    rng = random.Random(20240607)
    killed_midway = killed_inside_shard = 0
    shards = N_CLIPS // PER_SHARD
    shard_seconds = _full_write_seconds(tmp_path / "calibration", kind) / shards
    for trial in range(TRIALS):
        store = tmp_path / f"store{trial}"
        proc = _writer(store, kind)
        assert proc.stdout.readline().strip() == "ready"
        seen = [proc.stdout.readline() for _ in range(PER_SHARD * rng.randrange(shards - 1))]
        time.sleep(rng.uniform(0.0, 1.5 * shard_seconds))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        lines = "".join(seen).splitlines() + rest.splitlines()
        committed = {line.split()[1] for line in lines if line.startswith("committed ")}
        killed_midway += "finished" not in rest
        killed_inside_shard += bool(FeatureStore(store).feature_dir("crashy", FP).temporaries())

        check = subprocess.run([*_eri_store(), "verify", "--store", str(store)], capture_output=True, text=True)
        assert check.returncode == 0, f"trial {trial}: verify failed\n{check.stdout}\n{check.stderr}"
        present = set(_copies(store))
        assert committed <= present, f"trial {trial}: lost committed clips {sorted(committed - present)[:5]}"

        resumed = _writer(store, kind)
        out, _ = resumed.communicate(timeout=60)
        assert resumed.returncode == 0 and "finished" in out
        copies = _copies(store)
        assert set(copies) == {f"clip/{i:04d}" for i in range(N_CLIPS)}
        assert max(copies.values()) == 1, f"trial {trial}: duplicated clips"
        assert not FeatureStore(store).feature_dir("crashy", FP).temporaries(), "dead writer's temp not cleaned"
        reader = FeatureStore(store).reader("crashy")
        for i in rng.sample(range(N_CLIPS), 5):
            data, times = reader.get(f"clip/{i:04d}")
            expected, expected_t = clip_data(i, kind)
            np.testing.assert_array_equal(data, expected)
            np.testing.assert_array_equal(times, expected_t)
        reader.close()
        shutil.rmtree(store)
    assert killed_midway >= TRIALS // 2, f"only {killed_midway} of {TRIALS} kills landed mid-write"
    assert killed_inside_shard >= 1, "no kill landed while a shard was being written"
