"""Per-feature bookkeeping during a run and the final summary (table + JSON)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.estimate import WorkEstimate
from pipelines.exit_codes import EXIT_INTERRUPTED, EXIT_NOTHING, EXIT_OK, EXIT_PARTIAL
from pipelines.plan import Plan
from pipelines.stages import Task, TaskResult

LISTED = 10  # problems printed one per line before the rest are counted


@dataclass
class FeatureTally:
    todo: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    failed_before: int = 0
    stale: int = 0
    fingerprint: str = ""
    modality: str = ""


@dataclass
class RunSummary:
    plan: Plan
    estimate: WorkEstimate | None = None
    started: float = field(default_factory=time.perf_counter)
    tallies: dict[str, FeatureTally] = field(default_factory=dict)
    media_seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    qa: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    task_errors: list[dict] = field(default_factory=list)  # batches lost to a non-clip problem
    notes: list[dict] = field(default_factory=list)        # per clip: decode damage, audio stream choice
    store_errors: list[str] = field(default_factory=list)  # writes the store refused (distinct reasons)
    unrecorded: int = 0                                    # failures errors.jsonl could not take
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_media: dict[str, float] = field(default_factory=dict)
    workers_seen: set[str] = field(default_factory=set)
    worker_busy: dict[str, float] = field(default_factory=dict)  # worker -> seconds spent in tasks
    tasks_done: int = 0
    interrupted: bool = False
    compute_started: float | None = None  # scheduler ready, first task submitted
    finished: float | None = None

    def __post_init__(self) -> None:
        for job in self.plan.jobs:
            self.tallies[job.name] = FeatureTally(len(job.todo), 0, job.cached, 0, len(job.failed_before),
                                                  job.stale, job.fingerprint, job.modality)

    def add_input_failures(self, failed: dict) -> None:
        """Clips that cannot run because of their input entry: failed for every planned feature."""
        for name, tally in self.tallies.items():
            tally.todo += len(failed)
            tally.failed += len(failed)
            self.errors += [{"feature": name, "clip": c, "reason": f.reason} for c, f in failed.items()]

    def add(self, task: Task, result: TaskResult) -> None:
        self.tasks_done += 1
        self.notes += result.notes
        self.store_errors += [e for e in result.store_errors if e not in self.store_errors]
        self.unrecorded += result.unrecorded
        self.workers_seen.add(result.worker)
        self.worker_busy[result.worker] = self.worker_busy.get(result.worker, 0.0) + result.seconds
        for counts in (result.done, result.already_done):  # already_done: an earlier attempt wrote them
            for name, count in counts.items():
                self.tallies[name].done += count
        for name, failures in result.failed.items():
            self.tallies[name].failed += len(failures)
            self.errors += [{"feature": name, "clip": c, "reason": r} for c, r in failures]
        self.media_seconds[task.modality] = self.media_seconds.get(task.modality, 0.0) + result.media_seconds
        self.frames += result.frames
        for key, values in result.qa.items():
            self.qa.setdefault(key, []).extend(values)
        for target, source in ((self.stage_seconds, result.stage_seconds), (self.stage_media, result.stage_media)):
            for key, value in source.items():
                target[key] = target.get(key, 0.0) + value

    def add_failure(self, task: Task, reason: str) -> None:
        """A whole task was lost (its clips are counted as failed for its features)."""
        for job in task.jobs:
            self.tallies[job.name].failed += len(job.clip_ids)
            self.errors += [{"feature": job.name, "clip": c, "reason": reason} for c in job.clip_ids]
        self.task_errors.append({"clips": [c for c, _ in task.clips], "reason": reason})

    def start_compute(self) -> None:
        self.compute_started = time.perf_counter()

    def finish(self) -> None:
        self.finished = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def as_dict(self) -> dict:
        wall = max(self.elapsed, 1e-9)
        features = {}
        for name, t in self.tallies.items():
            features[name] = {"fingerprint": t.fingerprint, "modality": t.modality, "planned": t.todo,
                              "done": t.done, "skipped_cached": t.cached, "failed": t.failed,
                              "skipped_failed_before": t.failed_before, "recomputed_changed_source": t.stale,
                              "clips_per_s": t.done / wall,
                              "real_time_factor": self.media_seconds.get(t.modality, 0.0) / wall}
        compute = (self.finished or time.perf_counter()) - self.compute_started if self.compute_started else 0.0
        return {"wall_seconds": wall, "compute_seconds": compute, "interrupted": self.interrupted, "tasks_done": self.tasks_done,
                "workers_seen": len(self.workers_seen),
                "worker_busy_fraction": {w: round(b / compute, 3) if compute else None
                                         for w, b in sorted(self.worker_busy.items())}, "frames_decoded": self.frames,
                "frames_per_s": self.frames / wall, "media_seconds": self.media_seconds, "features": features,
                "skipped_features": self.plan.skipped,
                "estimate": None if self.estimate is None else {
                    "clips": self.estimate.clips, "bytes": self.estimate.bytes,
                    "media_seconds": self.estimate.media_seconds, "worker_seconds": self.estimate.worker_seconds,
                    "wall_seconds": self.estimate.wall_seconds},
                "stage_seconds": self.stage_seconds, "stage_media_seconds": self.stage_media,
                "qa_means": {k: float(np.mean(v)) for k, v in self.qa.items() if v},
                "task_errors": self.task_errors, "errors": self.errors, "notes": self.notes,
                "store_errors": self.store_errors, "failures_not_recorded": self.unrecorded,
                "exit_code": self.exit_code()}

    def empty_features(self) -> list[str]:
        """Features that had clips to compute and produced none."""
        return [n for n, t in self.tallies.items() if t.todo and not t.done and t.failed]

    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.empty_features():
            return EXIT_NOTHING
        return EXIT_PARTIAL if any(t.failed for t in self.tallies.values()) else EXIT_OK

    def print_problems(self, console, verbose: bool = False) -> None:
        """What went wrong, once per cause: per feature when all its clips failed alike, else per clip."""
        for line in self.store_errors:
            console.print(f"[red]store:[/] {line}", highlight=False)
        by_feature: dict[str, list[dict]] = {}
        for e in self.errors:
            by_feature.setdefault(e["feature"], []).append(e)
        listed = 0
        for name, errors in by_feature.items():
            reasons = {e["reason"] for e in errors}
            if len(reasons) == 1 and len(errors) > 1:
                console.print(f"[red]{name}: {len(errors)} clip(s) failed[/]: {reasons.pop()}", highlight=False)
                continue
            for e in errors:
                if listed < LISTED or verbose:
                    console.print(f"[red]{name} {e['clip']}[/]: {e['reason']}", highlight=False)
                listed += 1
        if listed > LISTED and not verbose:
            console.print(f"… and {listed - LISTED} more clip failure(s) (-v lists all; --summary-json has them)")
        if self.errors:
            where = ("every failure is in STORE/<feature>/<fingerprint>/errors.jsonl" if not self.unrecorded else
                     f"{self.unrecorded} failure(s) could NOT be recorded in errors.jsonl (the store refused the "
                     "write); the rest are there")
            console.print(f"{where}; --rerun-failed retries them", highlight=False)
        if self.notes:
            damaged = len({n["clip"] for n in self.notes})
            console.print(f"[yellow]{damaged} clip(s) with notes[/] (decode damage or several audio streams; "
                          "stored on their entries)" + ("" if verbose else "; -v lists them"), highlight=False)
            if verbose:
                for n in self.notes:
                    console.print(f"  {n['clip']}: {n['note']}", highlight=False)
        for name in self.empty_features():
            console.print(f"[red]{name} produced no clip at all[/] (reasons above)", highlight=False)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2))

    def table(self):
        from rich.table import Table

        data = self.as_dict()
        title = f"eri-extract: {data['wall_seconds']:.1f} s"
        if self.interrupted:
            title += " — interrupted: run the same command to continue"
        table = Table(title=title)
        for col in ("feature", "done", "cached", "failed", "failed earlier", "clips/s", "× real time"):
            table.add_column(col, justify="left" if col == "feature" else "right")
        for name, f in data["features"].items():
            table.add_row(f"{name}@{f['fingerprint']}", str(f["done"]), str(f["skipped_cached"]),
                          str(f["failed"]), str(f["skipped_failed_before"]),
                          f"{f['clips_per_s']:.2f}", f"{f['real_time_factor']:.1f}")
        return table
