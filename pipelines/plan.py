"""Planning: for each requested feature, its fingerprint and which clips still lack it.

Nothing here decodes media, loads a model or writes to a feature directory: a plan over a fully
cached dataset costs a stat per clip, a directory listing per feature and the freshness cache
(pipelines.freshness). A clip is to do for a feature when it has no entry under today's
fingerprint, or its entry is stale (the file's size/mtime changed since), or it failed before and
either --rerun-failed is given or the file changed since the failure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from extract.catalog import catalog
from extract.specs import FeatureSpec
from extract.weights import WeightsCorrupt, WeightsMissing, resolve
from feature_store import FeatureDir, FeatureStore, fingerprint_of
from pipelines.dataset import Clip
from pipelines.freshness import SourceCache, SourceKey, is_current, stat_source
from pipelines.settings import ExtractSettings

log = logging.getLogger(__name__)

AUDIO_SAMPLE_RATE = 16000


@dataclass
class FeatureJob:
    """One feature under one fingerprint, and the clips that still need it."""

    name: str
    modality: str
    fingerprint: str
    config: dict[str, Any]
    spec_json: dict[str, Any]
    weights_path: str | None
    todo: list[str] = field(default_factory=list)
    cached: int = 0
    failed_before: list[str] = field(default_factory=list)  # not retried (no --rerun-failed)
    stale: int = 0  # of todo: entries whose source file changed since
    retried: int = 0  # of todo: clips that failed before, retried (--rerun-failed or file changed)


@dataclass
class Plan:
    clips: dict[str, Clip]
    jobs: list[FeatureJob]
    skipped: dict[str, str]  # feature -> why (e.g. weights missing, with the fetch command)
    sources: dict[str, SourceKey | None] = field(default_factory=dict)  # clip -> (size, mtime) now

    def job(self, name: str) -> FeatureJob | None:
        return next((j for j in self.jobs if j.name == name), None)

    @property
    def nothing_to_do(self) -> bool:
        return not any(j.todo for j in self.jobs)


def requested_specs(settings: ExtractSettings) -> list[FeatureSpec]:
    registry = catalog()
    names = settings.features or tuple(registry.names(settings.modality))
    specs = [registry.get(n) for n in names]
    wrong = [s.name for s in specs if settings.modality not in ("all", s.modality)]
    if wrong:
        raise ValueError(f"feature(s) {', '.join(wrong)} are not {settings.modality} features")
    if any(s.input == "faces" for s in specs) and not any(s.name == "faces" for s in specs):
        specs.insert(0, registry.get("faces"))  # backbones read the cached crops
    return specs


def _input_description(spec: FeatureSpec, settings: ExtractSettings, faces_fp: str | None) -> dict[str, Any]:
    if spec.input == "frames":
        return {"sampling": settings.sampling.as_dict()}
    if spec.input == "faces":
        return {"faces": faces_fp}
    return {"sample_rate": AUDIO_SAMPLE_RATE, "missing_audio": settings.missing_audio}


def make_job(spec: FeatureSpec, settings: ExtractSettings, faces_fp: str | None) -> FeatureJob:
    overrides = settings.face_options if spec.name == "faces" else settings.overrides.get(spec.name, {})
    config = spec.config_with(overrides)
    weights_path, weights_sha = None, None
    entry = spec.weights_entry(config)
    if entry:
        resolved = resolve(entry, explicit=settings.weights.get(entry))
        weights_path, weights_sha = str(resolved.path), resolved.sha256
    hashed = {"feature": spec.name, "version": spec.version, "config": config,
              "weights": {"entry": entry, "sha256": weights_sha},
              "input": _input_description(spec, settings, faces_fp)}
    spec_json = {**hashed, "modality": spec.modality, "dim": spec.dim, "dtype": spec.dtype,
                 "frame_step": spec.frame_step, "extras": spec.extras, "description": spec.description}
    return FeatureJob(spec.name, spec.modality, fingerprint_of(hashed), config, spec_json, weights_path)


def feature_dir_of(store: FeatureStore, job: FeatureJob) -> FeatureDir:
    """The job's directory, read-only: nothing is created until a shard or an error is written."""
    return FeatureDir(store.root / job.name / job.fingerprint, job.name, job.fingerprint)


def make_plan(clips: list[Clip], settings: ExtractSettings, store: FeatureStore, save_cache: bool = True) -> Plan:
    """`save_cache=False` (dry runs) leaves the store untouched."""
    jobs, skipped, faces_fp = [], {}, None
    sources = {c.id: stat_source(c.path) for c in clips}
    for spec in requested_specs(settings):
        try:
            job = make_job(spec, settings, faces_fp)
        except (WeightsMissing, WeightsCorrupt) as exc:
            skipped[spec.name] = str(exc)
            continue
        if spec.input == "faces" and faces_fp is None:
            skipped[spec.name] = "needs the `faces` feature, which cannot be computed (see above)"
            continue
        if spec.name == "faces":
            faces_fp = job.fingerprint
        _fill_todo(job, clips, sources, store, settings.rerun_failed, save_cache)
        jobs.append(job)
    return Plan({c.id: c for c in clips}, jobs, skipped, sources)


def _fill_todo(job: FeatureJob, clips: list[Clip], sources: dict[str, SourceKey | None], store: FeatureStore,
               rerun_failed: bool, save_cache: bool) -> None:
    fd = feature_dir_of(store, job)
    index = fd.index()
    stored: dict[str, SourceKey] = {}
    if index:
        cache = SourceCache(store.root, fd)
        stored = cache.sources(index)
        if save_cache:
            cache.save()
    failed = fd.failed()
    for clip in clips:
        now = sources.get(clip.id)
        if clip.id in index:
            if is_current(stored.get(clip.id), now):
                job.cached += 1
                continue
            job.stale += 1
        elif clip.id in failed:
            record = failed[clip.id]
            then = (record["size"], record["mtime"]) if "size" in record and "mtime" in record else None
            if not rerun_failed and is_current(then, now):
                job.failed_before.append(clip.id)
                continue
            job.retried += 1
        job.todo.append(clip.id)
