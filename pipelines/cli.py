"""`eri-extract`: plan what the store lacks, then compute it in parallel with Dask."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from pipelines.exit_codes import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_REFUSED
from pipelines.settings import ExtractSettings, SamplingChoice, SchedulerSettings

console = Console(stderr=True)
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def _parse_sets(items: list[str]) -> dict[str, dict]:
    """`--set mfcc.n_mfcc=40` → {"mfcc": {"n_mfcc": 40}} (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        feature, dot, option = key.partition(".")
        if not sep or not dot:
            raise typer.BadParameter(f"--set {item!r}: expected FEATURE.OPTION=VALUE")
        out.setdefault(feature, {})[option] = yaml.safe_load(value)
    return out


def _parse_weights(items: list[str]) -> dict[str, str]:
    pairs = [i.partition("=") for i in items]
    bad = [i for i, (_, sep, _) in zip(items, pairs) if not sep]
    if bad:
        raise typer.BadParameter(f"--weights {bad[0]!r}: expected ENTRY=PATH")
    return {k: v for k, _, v in pairs}


def _sampling(fps: Optional[float], frames: Optional[int], every: Optional[int]) -> SamplingChoice:
    given = [x is not None for x in (fps, frames, every)]
    if sum(given) > 1:
        raise typer.BadParameter("choose one of --fps, --frames, --every")
    if not any(given):
        return SamplingChoice()
    return SamplingChoice(fps=fps, frames=frames, every=every)


def _scheduler(scheduler: str, cluster: Optional[str], workers: int, threads: int, tasks_per_worker: int,
               dashboard: bool, slurm: dict, verbose: bool) -> tuple[SchedulerSettings, int]:
    from pipelines.schedulers import build_settings

    try:
        return build_settings(scheduler, cluster, workers, threads, tasks_per_worker, dashboard, slurm, verbose)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command(help="Extract features for a folder of clips (or a manifest CSV) into the feature store.\n\n"
                  "Only what the store lacks under today's settings is computed: every feature is keyed by a "
                  "fingerprint of its extractor, config, weights and sampling, so a rerun skips what is cached "
                  "and recomputes what changed (settings, or a clip's file: size/mtime). Failed clips are "
                  "recorded in the store's errors.jsonl and retried with --rerun-failed (or when their file "
                  "changes). One bad file never stops the batch: it becomes a failed clip with its reason, "
                  "and files that are not taken are listed in the plan.\n\n" + EXIT_CODES_HELP)
def extract(
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="Directory of media files (any container PyAV opens: mp4, mkv, mov, webm, avi, ts, m4a, wav, …; searched recursively) or manifest CSV (id,path)."),
    id_from: str = typer.Option("name", "--id-from", help="Clip ids of a folder scan: name (file stem, e.g. 00001) or relpath (path below the folder with extension, e.g. sub/a.mkv: tells apart files that share a stem)."),
    store: Path = typer.Option(Path(os.environ.get("ERI_STORE", "eri_store")), "--store", "-s", help="Feature store directory ($ERI_STORE)."),
    modality: str = typer.Option("all", "--modality", "-m", help="video | audio | all"),
    features: str = typer.Option("", "--features", "-f", help="Comma-separated features (default: every feature of the modality whose weights are available). See --list."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Sample frames at this rate (default 5, i.e. one every 0.2 s)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Sample this many frames spread uniformly over each clip."),
    every: Optional[int] = typer.Option(None, "--every", help="Sample every n-th decoded frame."),
    face_size: int = typer.Option(224, "--face-size", help="Side of the cached square face crops (112 or 224)."),
    detector: str = typer.Option("short", "--detector", help="BlazeFace model: short (faces within ~2 m) or full (full-range)."),
    fallback_detector: str = typer.Option("none", "--fallback-detector", help="none | mtcnn: a second pass with MTCNN on the frames where BlazeFace found no face (small or turned faces); the faces feature records per frame which detector found the face (weights: eri-weights fetch mtcnn_pnet mtcnn_rnet mtcnn_onet)."),
    align: str = typer.Option("none", "--align", help="none (square crop with margin around the face box) | dlib68: crops similarity-aligned so that dlib's 68 landmarks (eye centres, nose tip, mouth corners) sit on the ArcFace five-point template, at --face-size 112 or 224 (weights: eri-weights fetch dlib_shape_predictor_68)."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Frames/windows per forward pass (mixed across clips)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N (fp16 autocast on CUDA)."),
    scheduler: str = typer.Option("local", "--scheduler", help="local (LocalCluster on 127.0.0.1) | sync (in-process, for debugging) | tcp://HOST:PORT (existing cluster)."),
    workers: int = typer.Option(0, "--workers", "-w", help="Worker processes for --scheduler local (0 = cores / threads)."),
    threads: int = typer.Option(0, "--threads", help="torch threads per worker (0 = cores / workers, leaving out cores other processes keep busy; on tcp:// each worker takes its host's cores / workers there)."),
    tasks_per_worker: int = typer.Option(1, "--tasks-per-worker", help="Batches in flight per worker process (2 lets one decode while the other infers; pays when workers × threads < cores, e.g. on a GPU)."),
    clips_per_task: int = typer.Option(8, "--clips-per-task", help="At most this many clips per Dask task (tasks are sized by estimated cost, at least 4 per worker, longest first; one shard per feature per task; bounds worker memory)."),
    prefetch: bool = typer.Option(True, "--prefetch/--no-prefetch", help="Decode the next clip in a thread while faces are detected in this one."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="slurm: start workers as SLURM jobs through dask-jobqueue."),
    cluster_config: Optional[Path] = typer.Option(None, "--cluster-config", help="YAML of SLURM options: queue, account, cores, processes, memory, walltime, jobs, interface, job_extra_directives, … (flags override it)."),
    queue: Optional[str] = typer.Option(None, "--queue", help="SLURM partition."),
    account: Optional[str] = typer.Option(None, "--account", help="SLURM account."),
    cores: Optional[int] = typer.Option(None, "--cores", help="CPUs per SLURM job (default 8)."),
    processes: Optional[int] = typer.Option(None, "--processes", help="Worker processes per SLURM job (default 1)."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Memory per SLURM job, e.g. 32GB."),
    walltime: Optional[str] = typer.Option(None, "--walltime", help="Wall time per SLURM job, HH:MM:SS."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="SLURM jobs to run at once (default 4)."),
    print_job_script: bool = typer.Option(False, "--print-job-script", help="Print the SLURM job script and exit."),
    audio_stream: int = typer.Option(0, "--audio-stream", help="Which audio stream of each file the audio features read (0 = the first; the choice is stored on every entry, -v lists files with several)."),
    missing_audio: str = typer.Option("error", "--missing-audio", help="error: a clip without audio fails its audio features; zeros: use silence."),
    rerun_failed: bool = typer.Option(False, "--rerun-failed", help="Retry clips that failed in an earlier run."),
    set_: list[str] = typer.Option([], "--set", help="Feature option, FEATURE.OPTION=VALUE (repeatable), e.g. --set mfcc.n_mfcc=40 --set vggish.postprocess=pca (options: eri-extract --list -v)."),
    weights: list[str] = typer.Option([], "--weights", help="Explicit weights file, ENTRY=PATH (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (what is missing per feature, estimated work) and exit; writes nothing."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Write a machine-readable summary here."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Start the Dask dashboard on 127.0.0.1:8787 (local scheduler; needs bokeh)."),
    list_: bool = typer.Option(False, "--list", help="List the registered features and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if list_:
        from pipelines.report import print_features
        print_features(console, options=verbose)
        raise typer.Exit(0)
    from pipelines.schedulers.slurm import ClusterConfigError, load_options, slurm_job_script

    slurm_flags = {"queue": queue, "account": account, "cores": cores, "processes": processes, "memory": memory,
                   "walltime": walltime, "jobs": jobs}
    try:
        slurm = load_options(cluster_config, slurm_flags) if (cluster == "slurm" or print_job_script) else {}
    except ClusterConfigError as exc:
        _fail(str(exc))
    if print_job_script:
        print(slurm_job_script(slurm, max(1, tasks_per_worker)), end="")
        raise typer.Exit(0)
    if input is None:
        raise typer.BadParameter("--input is required (a directory of videos or a manifest CSV)")
    if modality not in ("video", "audio", "all"):
        raise typer.BadParameter("--modality must be video, audio or all")
    if missing_audio not in ("error", "zeros"):
        raise typer.BadParameter("--missing-audio must be error or zeros")
    if id_from not in ("name", "relpath"):
        raise typer.BadParameter("--id-from must be name or relpath")
    if audio_stream < 0:
        raise typer.BadParameter("--audio-stream must be 0 or more")
    sched, threads = _scheduler(scheduler, cluster, workers, threads, tasks_per_worker, dashboard, slurm, verbose)
    overrides = _parse_sets(set_)
    overrides["faces"] = {"size": face_size, "detector": detector, "fallback_detector": fallback_detector,
                          "align": align, **overrides.get("faces", {})}
    settings = ExtractSettings(
        modality=modality, features=tuple(f.strip() for f in features.split(",") if f.strip()),
        sampling=_sampling(fps, frames, every), overrides=overrides,
        weights=_parse_weights(weights), batch_size=batch_size, device=device, missing_audio=missing_audio,
        rerun_failed=rerun_failed, clips_per_task=max(1, clips_per_task), torch_threads=threads, prefetch=prefetch,
        audio_stream=audio_stream, id_from=id_from)
    from pipelines.dataset import DatasetError
    from pipelines.interrupts import catch_interrupts
    from pipelines.run import run_extraction

    try:
        with catch_interrupts():
            code = run_extraction(input, store, settings, sched, dry_run, summary_json, console)
    except (DatasetError, ConnectionError, ValueError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    except KeyboardInterrupt:  # before any task ran (planning, cluster start-up)
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(code)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_REFUSED)


def main() -> None:
    app(prog_name="eri-extract")


if __name__ == "__main__":
    sys.exit(main())
