"""What travels between client and workers: a Task (a batch of clips and the features it needs)
and its TaskResult (counts and timings only, never arrays); ClipContext is a task's scratch pad."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from feature_store import source_attrs

FACE_QA_KEYS = ("face_detection_rate", "flagged", "fps")  # copied from `faces` onto backbone entries


@dataclass(frozen=True)
class JobRef:
    """What a worker needs to know of one FeatureJob for this task."""

    name: str
    fingerprint: str
    config: dict[str, Any]
    spec_json: dict[str, Any]
    weights_path: str | None
    clip_ids: tuple[str, ...]
    weights: dict[str, str] = field(default_factory=dict)  # every weights entry the config needs -> path


@dataclass(frozen=True)
class Task:
    store_root: str
    modality: str
    clips: tuple[tuple[str, str], ...]  # (id, path)
    jobs: tuple[JobRef, ...]
    faces: JobRef | None  # the faces job, even when no crop is missing (backbones read them)
    sampling: dict[str, Any]
    device: str
    batch_size: int
    missing_audio: str
    torch_threads: int  # 0: the worker's share of its host
    prefetch: bool = True  # decode the next clip while detecting faces in this one
    audio_stream: int = 0  # which audio stream of each file (0 = the first)


@dataclass
class TaskResult:
    done: dict[str, int] = field(default_factory=dict)
    already_done: dict[str, int] = field(default_factory=dict)  # completed by an earlier attempt
    failed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    media_seconds: float = 0.0
    frames: int = 0
    seconds: float = 0.0
    qa: dict[str, list[float]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # worker time per stage
    stage_media: dict[str, float] = field(default_factory=dict)    # media seconds through each stage
    notes: list[dict[str, str]] = field(default_factory=list)      # per clip: decode damage, stream choice
    store_errors: list[str] = field(default_factory=list)          # the store refused a write (why)
    unrecorded: int = 0                                            # failures errors.jsonl could not take
    worker: str = ""

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - start


class ClipContext:
    """Per-task facts about its clips: paths, durations, source attributes, faces QA, failures."""

    def __init__(self, clips: tuple[tuple[str, str], ...]):
        self.paths = dict(clips)
        self.durations: dict[str, float] = {}
        self.face_qa: dict[str, dict[str, float]] = {}
        self.media_attrs: dict[str, dict[str, Any]] = {}  # clip -> decode facts stored on its entries
        self.failures: dict[str, str] = {}  # clip -> reason, for every feature of the task
        self._sources: dict[str, dict[str, Any]] = {}

    def source(self, clip_id: str) -> dict[str, Any]:
        if clip_id not in self._sources:  # hashes up to 2 MiB: once per clip, not per feature
            self._sources[clip_id] = source_attrs(self.paths[clip_id])
        return self._sources[clip_id]
