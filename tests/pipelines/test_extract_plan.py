"""eri-extract planning and the CLI around it: dry runs, freshness, failed clips, weights, SLURM scripts.

All in-process with `--scheduler sync` and the cheap `mfcc` feature (no Dask cluster here)."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from test_extract_helpers import cli, subset_manifest

from extract.catalog import catalog
from feature_store import FeatureStore
from pipelines import freshness
from pipelines.dataset import discover_clips
from pipelines.plan import make_job, make_plan
from pipelines.settings import ExtractSettings, split_cores

MFCC = ("-m", "audio", "-f", "mfcc", "--scheduler", "sync")


def _copy_clips(clips, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        shutil.copy2(clip.path, folder / clip.path.name)
    return folder


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())["features"]


def test_dry_run_prints_counts_and_estimate_and_writes_nothing(tmp_path, sample_dataset):
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:3])
    store = tmp_path / "store"
    code, out = cli("-i", manifest, "-s", store, *MFCC, "--dry-run")
    assert code == 0, out
    assert "plan over 3 clips" in out and "mfcc" in out
    assert "3 clip(s)" in out and "of media" in out and "no time estimate yet" in out
    assert not store.exists()  # no spec.json, no cache, nothing

    code, out = cli("-i", manifest, "-s", store, *MFCC)
    assert code == 0, out
    code, out = cli("-i", manifest, "-s", store, *MFCC, "--dry-run")
    assert "nothing to compute" in out
    (store / "mfcc").rename(store / "mfcc-gone")  # a new fingerprint dir would be needed again …
    code, out = cli("-i", manifest, "-s", store, *MFCC, "--dry-run")
    assert "at earlier runs' speed" in out  # … and now the estimate uses the recorded throughput


def test_changed_source_is_recomputed_and_wins(tmp_path, sample_dataset):
    videos = _copy_clips(sample_dataset.clips[:3], tmp_path / "videos")
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    assert cli("-i", videos, "-s", store, *MFCC)[0] == 0
    changed = videos / sample_dataset.clips[1].path.name
    new_mtime = changed.stat().st_mtime + 60
    os.utime(changed, (new_mtime, new_mtime))

    code, out = cli("-i", videos, "-s", store, *MFCC, "--summary-json", summary)
    assert code == 0, out
    tally = _summary(summary)["mfcc"]
    assert (tally["done"], tally["skipped_cached"], tally["recomputed_changed_source"]) == (1, 2, 1)
    with FeatureStore(store).reader("mfcc") as reader:
        assert reader.attrs(changed.stem)["mtime"] == pytest.approx(new_mtime)
    code, out = cli("-i", videos, "-s", store, *MFCC, "--dry-run")
    assert "nothing to compute" in out


def test_failed_clips_wait_for_rerun_failed_or_a_changed_file(tmp_path, sample_variants):
    videos = _copy_clips([sample_variants["face"], sample_variants["no_audio"]], tmp_path / "videos")
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    code, out = cli("-i", videos, "-s", store, *MFCC, "--summary-json", summary)
    assert code == 1, out  # partial: a clip failure is recorded, the rest is stored
    assert (_summary(summary)["mfcc"]["done"], _summary(summary)["mfcc"]["failed"]) == (1, 1)
    assert "no audio stream" in out

    cli("-i", videos, "-s", store, *MFCC, "--summary-json", summary)
    assert _summary(summary)["mfcc"]["skipped_failed_before"] == 1
    cli("-i", videos, "-s", store, *MFCC, "--rerun-failed", "--summary-json", summary)
    assert _summary(summary)["mfcc"]["failed"] == 1  # retried, fails again

    shutil.copy(sample_variants["face"].path, videos / "no_audio.mp4")  # the user fixed the file
    cli("-i", videos, "-s", store, *MFCC, "--summary-json", summary)
    assert _summary(summary)["mfcc"]["done"] == 1
    assert FeatureStore(store).resolve("mfcc").failed() == {}


def test_requested_feature_without_weights_exits_2_with_the_fetch_command(tmp_path, monkeypatch, sample_dataset):
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "none"))
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:1])
    code, out = cli("-i", manifest, "-s", tmp_path / "store", "-f", "fer_minixception", "--scheduler", "sync")
    assert code == 2, out
    assert "eri-weights fetch fer_minixception" in out and "eri-weights fetch blazeface" in out
    assert not (tmp_path / "store").exists()
    # not asked for explicitly: skipped with the reason, the rest runs
    code, out = cli("-i", manifest, "-s", tmp_path / "store", "-m", "all", "--scheduler", "sync", "--dry-run")
    assert code == 0 and "skipped fer_minixception" in out


def test_bad_input_is_a_clear_error(tmp_path):
    code, out = cli("-i", tmp_path / "nowhere", "-s", tmp_path / "store", *MFCC)
    assert code == 2 and "no such file or directory" in out
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    code, out = cli("-i", tmp_path / "v", "-s", tmp_path / "store", "-f", "nope", "--scheduler", "sync")
    assert code == 2 and "unknown feature 'nope'" in out


def test_rerun_with_nothing_to_do_decodes_nothing_and_loads_no_model(tmp_path, sample_dataset, monkeypatch):
    manifest = subset_manifest(tmp_path / "clips.csv", sample_dataset.clips[:2])
    store = tmp_path / "store"
    assert cli("-i", manifest, "-s", store, *MFCC)[0] == 0

    def forbidden(*args, **kwargs):
        raise AssertionError("work was done on a fully cached rerun")

    import extract.media
    import pipelines.run
    import pipelines.worker

    for module, name in ((extract.media, "decode_audio"), (extract.media, "decode_frames"),
                         (pipelines.worker, "extractor_for"), (pipelines.run, "open_executor")):
        monkeypatch.setattr(module, name, forbidden)
    code, out = cli("-i", manifest, "-s", store, "-m", "audio", "-f", "mfcc")  # default: local cluster
    assert code == 0, out
    assert "nothing to compute" in out and "AssertionError" not in out


def _fake_cached_store(root: Path, n: int, per_shard: int = 8) -> tuple[list, ExtractSettings, FeatureStore]:
    """n tiny files and an mfcc entry for each, written through the store API with real provenance."""
    from feature_store import source_attrs

    videos = root / "videos"
    videos.mkdir(parents=True)
    for i in range(n):
        (videos / f"{i:05d}.mp4").write_bytes(i.to_bytes(4, "little"))
    clips = discover_clips(videos)
    settings = ExtractSettings(modality="audio", features=("mfcc",))
    job = make_job(catalog().get("mfcc"), settings, None)
    store = FeatureStore(root / "store")
    fd = store.feature_dir(job.name, job.fingerprint, spec=job.spec_json)
    data = np.zeros((3, job.spec_json["dim"]), np.float32)
    for start in range(0, n, per_shard):
        with fd.open_shard() as shard:
            for clip in clips[start:start + per_shard]:
                shard.add(clip.id, data, np.arange(3) * 0.08,
                          attrs={**source_attrs(clip.path), "duration": 0.3, "extractor": "mfcc",
                                 "extractor_version": job.spec_json["version"]})
    return clips, settings, store


def test_cached_plan_reads_shard_attributes_only_once(tmp_path, monkeypatch):
    clips, settings, store = _fake_cached_store(tmp_path, 400)
    first = make_plan(clips, settings, store)
    assert first.jobs[0].cached == 400 and not first.jobs[0].todo
    monkeypatch.setattr(freshness, "read_sources", lambda *a: (_ for _ in ()).throw(AssertionError("HDF5 read")))
    start = time.perf_counter()
    second = make_plan(clips, settings, store)
    seconds = time.perf_counter() - start
    assert second.jobs[0].cached == 400
    assert seconds < 2.0, f"cached plan over 400 entries took {seconds:.2f} s"
    os.utime(clips[7].path, (1, 1))  # stat is still checked for every clip
    assert make_plan(clips, settings, store, save_cache=False).jobs[0].todo == [clips[7].id]


@pytest.mark.parametrize("kind,workers,threads,expected", [
    ("sync", 0, 0, (1, 8)), ("local", 0, 0, (8, 1)), ("local", 2, 0, (2, 4)), ("local", 0, 4, (2, 4)),
    ("local", 3, 0, (3, 2)), ("tcp", 0, 0, (0, 0)), ("slurm", 0, 4, (0, 4)),
])
def test_workers_times_threads_is_the_core_count(kind, workers, threads, expected):
    assert split_cores(kind, workers, threads, cores=8) == expected


@pytest.mark.parametrize("kind,workers,threads,busy,expected", [
    ("sync", 0, 0, 1.2, (1, 7)), ("sync", 0, 0, 9.0, (1, 1)), ("local", 2, 0, 4.4, (2, 2)),
    ("local", 0, 0, 6.0, (8, 1)),   # one process per core whatever the load: processes do not spin
    ("sync", 0, 3, 7.0, (1, 3)), ("local", 2, 4, 7.0, (2, 4)),  # threads the user asked for are kept
])
def test_automatic_threads_leave_out_busy_cores(kind, workers, threads, busy, expected):
    assert split_cores(kind, workers, threads, cores=8, busy=busy) == expected


def test_slurm_job_script_from_yaml_with_flags_overriding(tmp_path):
    config = tmp_path / "slurm.yaml"
    config.write_text("queue: short\naccount: proj42\ncores: 4\nprocesses: 2\nmemory: 8GB\n"
                      "walltime: '01:00:00'\njobs: 3\njob_extra_directives: ['--gres=gpu:1']\n")
    code, out = cli("--cluster", "slurm", "--cluster-config", config, "--queue", "long", "--cores", "8",
                    "--print-job-script")
    assert code == 0, out
    for expected in ("#SBATCH -p long", "#SBATCH -A proj42", "#SBATCH --cpus-per-task=8", "#SBATCH --gres=gpu:1",
                     "#SBATCH -t 01:00:00", "--nworkers 2", "--nthreads 1", "dask_worker"):
        assert expected in out, expected
    config.write_text("queue: short\ngpus: 2\n")
    code, out = cli("--cluster", "slurm", "--cluster-config", config, "--print-job-script")
    assert code == 2 and "unknown SLURM option(s) ['gpus']" in out and str(config) in out


def test_slurm_cluster_scheduler_listens_on_loopback_only():
    psutil = pytest.importorskip("psutil")
    from pipelines.schedulers.slurm import load_options, slurm_cluster

    options = load_options(None, {"jobs": 0})  # no sbatch is ever called
    options["scheduler_options"] = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    before = {c.laddr for c in psutil.Process().net_connections() if c.status == psutil.CONN_LISTEN}
    with slurm_cluster(options) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        assert address in cluster.job_script()
        listening = {c.laddr for c in psutil.Process().net_connections() if c.status == psutil.CONN_LISTEN}
        assert {a.ip for a in listening - before} == {"127.0.0.1"}


def test_a_batch_that_kills_workers_is_split_into_one_task_per_clip():
    from pipelines.runner import split_task
    from pipelines.stages import JobRef, Task

    job = lambda name, ids: JobRef(name, "fp", {}, {}, None, ids)  # noqa: E731
    task = Task("store", "video", (("a", "a.mp4"), ("b", "b.mp4"), ("c", "c.mp4")),
                (job("faces", ("a", "b")), job("fer_minixception", ("a", "b", "c"))), None, {"fps": 5.0},
                "cpu", 32, "error", 1)
    parts = split_task(task)
    assert [p.clips for p in parts] == [(("a", "a.mp4"),), (("b", "b.mp4"),), (("c", "c.mp4"),)]
    assert [[(j.name, j.clip_ids) for j in p.jobs] for p in parts] == [
        [("faces", ("a",)), ("fer_minixception", ("a",))], [("faces", ("b",)), ("fer_minixception", ("b",))],
        [("fer_minixception", ("c",))]]
