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
from extract.specs import STORAGE_OPTION, FeatureSpec
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
    weights: dict[str, str] = field(default_factory=dict)  # every weights entry -> path
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
    """The requested features plus what they read (a backbone reads the cached `faces`), each after
    the features it depends on, whatever order the user typed them in."""
    registry = catalog()
    names = settings.features or tuple(registry.names(settings.modality))
    specs = [registry.get(n) for n in names]
    wrong = [s.name for s in specs if settings.modality not in ("all", s.modality)]
    if wrong:
        raise ValueError(f"feature(s) {', '.join(wrong)} are not {settings.modality} features")
    ordered: list[FeatureSpec] = []

    def visit(spec: FeatureSpec) -> None:
        if spec in ordered:
            return
        for dependency in spec.requires:
            visit(registry.get(dependency))
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


def _input_description(spec: FeatureSpec, settings: ExtractSettings, upstream: dict[str, str],
                       config: dict[str, Any]) -> dict[str, Any]:
    if spec.input == "frames":  # a feature with its own sampling (pose) does not change with --fps
        own = getattr(spec.resolve_config(config), "sampling", None)
        return {"sampling": own.describe() if own is not None else settings.sampling.as_dict()}
    if spec.input == "faces":
        return {"faces": upstream["faces"]}
    described = {"sample_rate": AUDIO_SAMPLE_RATE, "missing_audio": settings.missing_audio}
    if settings.audio_stream:  # only then, so that the first stream's fingerprints stay what they were
        described["audio_stream"] = settings.audio_stream
    return described


def _resolve_weights(spec: FeatureSpec, config: dict[str, Any], settings: ExtractSettings) -> list[tuple[str, str, str]]:
    """(entry, path, sha256) of every weights entry the config needs; WeightsMissing/Corrupt if any is."""
    out = []
    for entry in spec.weights_entries(config):
        resolved = resolve(entry, explicit=settings.weights.get(entry))
        out.append((entry, str(resolved.path), resolved.sha256))
    return out


def make_job(spec: FeatureSpec, settings: ExtractSettings, upstream: dict[str, str] | str | None = None) -> FeatureJob:
    """The job for `spec` under today's settings; `upstream` = fingerprints of the features it reads."""
    if not isinstance(upstream, dict):
        upstream = {"faces": upstream} if upstream else {}
    overrides = dict(settings.overrides.get(spec.name, {}))
    storage = overrides.pop(STORAGE_OPTION, None)
    config = spec.config_with(overrides)
    weights = _resolve_weights(spec, config, settings)
    first = weights[0] if weights else (None, None, None)
    hashed = {"feature": spec.name, "version": spec.version, "config": config,
              "weights": {"entry": first[0], "sha256": first[2]},
              "input": _input_description(spec, settings, upstream, config)}
    if len(weights) > 1:  # only then, so that single-entry fingerprints stay what they were
        hashed["more_weights"] = [{"entry": e, "sha256": sha} for e, _, sha in weights[1:]]
    paths = {e: path for e, path, _ in weights}
    shape = spec.output_shape(config, paths)
    try:
        stored = shape.stored_as(storage)
    except ValueError as exc:
        raise ValueError(f"{spec.name}: {exc}") from None
    if stored.dtype != shape.dtype:  # only then, so that default-dtype fingerprints stay what they were
        hashed["storage_dtype"] = stored.dtype
    shape = stored
    spec_json = {**hashed, "modality": spec.modality, **shape.as_spec(), "description": spec.description}
    return FeatureJob(spec.name, spec.modality, fingerprint_of(hashed), config, spec_json, first[1], paths)


def feature_dir_of(store: FeatureStore, job: FeatureJob) -> FeatureDir:
    """The job's directory, read-only: nothing is created until a shard or an error is written."""
    return FeatureDir(store.root / job.name / job.fingerprint, job.name, job.fingerprint)


def make_plan(clips: list[Clip], settings: ExtractSettings, store: FeatureStore, save_cache: bool = True) -> Plan:
    """`save_cache=False` (dry runs) leaves the store untouched."""
    jobs, skipped, fingerprints = [], {}, {}
    sources = {c.id: stat_source(c.path) for c in clips}
    for spec in requested_specs(settings):
        try:
            job = make_job(spec, settings, {d: fingerprints.get(d, "?") for d in spec.requires})
        except (WeightsMissing, WeightsCorrupt) as exc:
            skipped[spec.name] = str(exc)
            continue
        lacking = [d for d in spec.requires if d not in fingerprints]
        if lacking:
            skipped[spec.name] = (f"needs the `{'`, `'.join(lacking)}` feature, which cannot be computed "
                                  "(see above)")
            continue
        fingerprints[spec.name] = job.fingerprint
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
