"""The eri-extract flow: discover clips → plan → (dry run | tasks on a scheduler) → summary."""
from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from feature_store import FeatureStore
from feature_store.fsutil import unwritable_reason
from pipelines.dataset import Discovery, discover
from pipelines.estimate import estimate_work, load_costs, record_costs
from pipelines.exit_codes import EXIT_REFUSED, EXIT_OK
from pipelines.plan import make_plan
from pipelines.report import print_plan
from pipelines.runner import run_tasks
from pipelines.schedulers import open_executor, planned_workers
from pipelines.schedulers.dask_executor import quiet_dask
from pipelines.stage_io import record_error
from pipelines.settings import ExtractSettings, SchedulerSettings
from pipelines.stages import Task
from pipelines.summary import RunSummary
from pipelines.tasks import make_tasks

log = logging.getLogger(__name__)

def run_extraction(input: Path, store_root: Path, settings: ExtractSettings, sched: SchedulerSettings,
                   dry_run: bool, summary_json: Path | None, console: Console) -> int:
    """The whole command; returns its exit code (EXIT_CODES_HELP)."""
    found = discover(input, settings.id_from)
    store = FeatureStore(store_root)
    plan = make_plan(found.clips, settings, store, save_cache=not dry_run)
    workers = planned_workers(sched)
    estimate = estimate_work(plan, store_root, workers, probe_limit=32 if dry_run else 8)
    print_plan(plan, estimate, console, found)
    refused = [name for name in plan.skipped if name in settings.features]
    if refused:
        console.print(f"[red]cannot compute requested feature(s) {', '.join(refused)}[/] (reasons above)")
        return EXIT_REFUSED
    summary = RunSummary(plan, estimate=estimate)
    summary.add_input_failures(found.failed)
    if dry_run:
        if summary_json:
            summary.finish()
            summary.write_json(summary_json)
        return EXIT_OK
    if not plan.nothing_to_do or found.failed:
        problem = unwritable_reason(store_root)
        if problem:
            console.print(f"[red]error:[/] {problem}; nothing was decoded. Free space or fix the permissions, "
                          "or choose another --store.", highlight=False)
            return EXIT_REFUSED
        _record_input_failures(store, plan, found, summary)
    if not plan.nothing_to_do:
        try:
            _execute(plan, estimate, summary, sched, settings, store, console)
        except KeyboardInterrupt:
            quiet_dask(False, logging.CRITICAL)  # late shutdown chatter is not the user's business
            summary.interrupted = True
            console.print("[yellow]interrupted: finished shards are kept; run the same command to continue[/]")
    if summary.finished is None:
        summary.finish()
    record_costs(store_root, summary.stage_seconds, summary.stage_media)
    console.print(summary.table())
    summary.print_problems(console, verbose=sched.verbose)
    if summary_json:
        summary.write_json(summary_json)
    return summary.exit_code()


def _record_input_failures(store: FeatureStore, plan, found: Discovery, summary: RunSummary) -> None:
    """Clips that cannot run because of their input entry, as failed clips of every planned feature
    (an unchanged failure already recorded last time is not written again)."""
    for job in plan.jobs:
        fd = store.feature_dir(job.name, job.fingerprint, spec=job.spec_json)
        latest = fd.failed()
        for clip_id, failure in found.failed.items():
            if latest.get(clip_id, {}).get("reason") != failure.reason:
                record_error(fd, clip_id, str(failure.paths[0]), failure.reason)


def _execute(plan, estimate, summary: RunSummary, sched: SchedulerSettings, settings: ExtractSettings,
             store: FeatureStore, console: Console) -> None:
    columns = (TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(), TextColumn("clips"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with open_executor(sched, worker_env(settings.torch_threads)) as executor, \
            Progress(*columns, console=console, transient=False) as progress:
        if executor.note:
            progress.console.print(executor.note, highlight=False)
        tasks = make_tasks(plan, settings, str(store.root), executor.workers, load_costs(store.root),
                           estimate.seconds_per_byte)
        bar = progress.add_task("clips", total=sum(len(t.clips) for t in tasks), rate="")

        def advance(task: Task) -> None:
            progress.advance(bar, len(task.clips))
            wall = max(summary.elapsed, 1e-9)
            media = sum(summary.media_seconds.values())
            progress.update(bar, rate=f"{progress.tasks[0].completed / wall:.2f} clips/s, {media / wall:.1f}× real time")

        def on_result(task, result) -> None:
            summary.add(task, result)
            advance(task)

        def on_failure(task: Task, reason: str, clip_to_blame: bool) -> None:
            if clip_to_blame:  # the client records it, as the worker never got to
                try:
                    for job in task.jobs:
                        fd = store.feature_dir(job.name, job.fingerprint, spec=job.spec_json)
                        for clip_id, path in task.clips:
                            record_error(fd, clip_id, path, reason)
                except OSError as exc:
                    summary.unrecorded += len(task.clips) * len(task.jobs)
                    summary.store_errors.append(f"cannot record failures in errors.jsonl: {exc}")
            else:
                log.error("a batch of %d clip(s) failed: %s", len(task.clips), reason)
            summary.add_failure(task, reason)
            advance(task)

        summary.start_compute()
        run_tasks(tasks, on_result, on_failure, executor)
        summary.finish()  # before the cluster shuts down


def worker_env(torch_threads: int) -> dict[str, str]:
    """Environment of worker processes we start: BLAS/OpenMP threads = torch threads per worker."""
    threads = str(max(1, torch_threads))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
