"""Find an entry's weights: explicit path → $ERI_WEIGHTS_DIR/<name>/ → $ERI_CACHE_DIR/weights/<name>/.

Every first use in a process hashes the file (cached by path+size+mtime) and checks it against the
manifest written by fetch/import, or against the registry pin when the file is the pinned source
file itself. A checkpoint a user dropped into $ERI_WEIGHTS_DIR/<name>/ without a manifest is
accepted as "unpinned". Never downloads: that is `eri-weights fetch`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from extract.weights.errors import WeightsCorrupt, WeightsMissing
from extract.weights.manifest import Manifest, read_manifest, sha256_dir, sha256_file
from extract.weights.paths import WEIGHTS_ENV, cache_dir, user_weights_dir
from extract.weights.registry import CHECKPOINT_SUFFIXES, HF_WEIGHT_FILES, WeightsEntry, get_entry, sha256_matches

log = logging.getLogger(__name__)
State = Literal["found", "unpinned", "missing", "corrupt", "unconverted", "ambiguous"]


@dataclass(frozen=True)
class ResolvedWeights:
    name: str
    path: Path  # the main file, or the directory for Hugging Face checkpoints
    sha256: str  # of that file (directory: over its files' hashes); goes into feature fingerprints
    pinned: bool = False  # verified against a registry pin (else: manifest or nothing)
    where: str = ""  # which location it came from


@dataclass(frozen=True)
class Finding:
    state: State
    where: str = ""
    path: Path | None = None
    sha256: str = ""
    message: str = ""
    pinned: bool = False


def _loadable_suffixes(entry: WeightsEntry) -> set[str]:
    return set(CHECKPOINT_SUFFIXES) | {Path(entry.source_name).suffix}


def _check_file(entry: WeightsEntry, path: Path, where: str, record: dict | None = None) -> Finding:
    """Hash a candidate file; compare with its manifest record, or with the pin if it is the pinned file."""
    if record is not None:
        if path.stat().st_size != record.get("size", path.stat().st_size) or \
                sha256_file(path) != record["sha256"]:
            return Finding("corrupt", where, path, message=f"{path} changed since it was fetched/imported: "
                           f"sha256 {sha256_file(path)}, manifest says {record['sha256']}")
        return Finding("found", where, path, sha256_file(path))
    if entry.converter and path.name == entry.source_name and path.suffix not in CHECKPOINT_SUFFIXES:
        return Finding("unconverted", where, path, message=f"{path} is the unconverted source; run "
                       f"`eri-weights import {entry.name} {path}` to convert it")
    if path.name == entry.source_name and entry.sha256:
        if entry.size is not None and path.stat().st_size != entry.size:
            return Finding("corrupt", where, path, message=f"{path} has {path.stat().st_size} bytes, "
                           f"the pinned file has {entry.size}")
        digest = sha256_file(path)
        if not sha256_matches(digest, entry.sha256):
            return Finding("corrupt", where, path, digest, f"{path} has sha256 {digest}, "
                           f"expected {entry.pin_kind} {entry.sha256}")
        return Finding("found", where, path, digest, pinned=True)
    return Finding("unpinned", where, path, sha256_file(path))


def _check_manifest(entry: WeightsEntry, d: Path, m: Manifest, where: str) -> Finding:
    for fname, record in m.files.items():
        p = d / fname
        if not p.is_file():
            return Finding("corrupt", where, p, message=f"{p} is listed in {d / 'manifest.json'} but missing")
        bad = _check_file(entry, p, where, record)
        if bad.state == "corrupt":
            return bad
    if m.pinned and entry.sha256 and m.source_sha256 and not sha256_matches(m.source_sha256, entry.sha256):
        return Finding("corrupt", where, d, message=f"{d} was made from a file with sha256 {m.source_sha256}, "
                       f"but the registry now pins {entry.sha256} (a different version)")
    if not m.converted:
        return Finding("unconverted", where, d, message=f"{d} holds the source file but not the converted "
                       f"weights: {m.pending_reason or 'conversion pending'}. Once the converter "
                       f"{m.converter} is available, run `eri-weights fetch {entry.name}` (no download needed)")
    main = d if m.main == "." else d / m.main
    if m.main != "." and m.main not in m.files:
        return Finding("corrupt", where, main, message=f"{d / 'manifest.json'} does not record {m.main}")
    digest = sha256_dir(d) if main.is_dir() else m.files[m.main]["sha256"]
    return Finding("found" if m.pinned else "unpinned", where, main, digest, pinned=m.pinned)


def _check_hf_dir(d: Path, where: str) -> Finding:
    names = {p.name for p in d.iterdir() if not p.name.startswith(".")}
    if not names:
        return Finding("missing", where, d, message="empty")
    weights = set(HF_WEIGHT_FILES) | {"model.safetensors.index.json"}
    if "config.json" in names and names & weights:
        return Finding("unpinned", where, d, sha256_dir(d))
    return Finding("corrupt", where, d, message=f"{d} is not a Hugging Face model directory: it needs "
                   f"config.json and one of {', '.join(sorted(weights))} (has {', '.join(sorted(names))})")


def inspect_dir(entry: WeightsEntry, d: Path, where: str) -> Finding:
    if not d.is_dir():
        return Finding("missing", where, d, message="does not exist")
    try:
        manifest = read_manifest(d)
    except ValueError as exc:
        return Finding("corrupt", where, d, message=str(exc))
    if manifest is not None:
        return _check_manifest(entry, d, manifest, where)
    if entry.kind == "hf_dir":
        return _check_hf_dir(d, where)
    for name in (entry.filename, entry.source_name):
        if (d / name).is_file():
            return _check_file(entry, d / name, where)
    files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    candidates = [p for p in files if p.suffix in _loadable_suffixes(entry)]
    if len(candidates) == 1:
        return _check_file(entry, candidates[0], where)
    if len(candidates) > 1:
        return Finding("ambiguous", where, d, message=f"{d} holds several checkpoints "
                       f"({', '.join(p.name for p in candidates)}); keep one, or pass an explicit path")
    has = f"no checkpoint file (has: {', '.join(p.name for p in files)})" if files else "empty"
    return Finding("missing", where, d, message=has)


def inspect_entry(name: str | WeightsEntry, explicit: str | Path | None = None) -> tuple[Finding, list[str]]:
    """First location holding something for the entry, and the list of places looked at."""
    entry = get_entry(name)
    looked: list[str] = []
    if explicit is not None:
        p = Path(explicit).expanduser()
        if p.is_dir():
            f = inspect_dir(entry, p, "explicit")
        elif p.is_file() and entry.kind == "file":
            manifest = read_manifest(p.parent) if (p.parent / "manifest.json").is_file() else None
            f = _check_file(entry, p, "explicit", manifest.files.get(p.name) if manifest else None)
        else:
            f = Finding("missing", "explicit", p, message="does not exist" if not p.exists()
                        else "is a file, but this entry is a Hugging Face directory")
        return f, [f"{p} (explicit path): {f.message or f.state}"]
    user = user_weights_dir(entry.name)
    candidates = [(f"${WEIGHTS_ENV}", user), ("cache", cache_dir(entry.name))]
    for where, d in candidates:
        if d is None:
            looked.append(f"${WEIGHTS_ENV}/{entry.name}/ ({WEIGHTS_ENV} is not set)")
            continue
        f = inspect_dir(entry, d, where)
        if f.state != "missing":
            return f, looked + [str(d)]
        looked.append(f"{d}/ ({f.message})")
    return Finding("missing"), looked


def how_to_get(entry: WeightsEntry) -> str:
    user = f"${WEIGHTS_ENV}/{entry.name}/"
    if entry.has_auto_source:
        return (f"Fetch it:  eri-weights fetch {entry.name}   (from {entry.source_text()})\n"
                f"or import one you have:  eri-weights import {entry.name} PATH   (or put it in {user})"
                + (f"\n{entry.import_help}" if entry.import_help else ""))
    return (f"No automatic download exists. {entry.import_help}\n"
            f"Import it:  eri-weights import {entry.name} PATH   (or put it in {user})")


def missing_message(entry: WeightsEntry, looked: list[str], detail: str = "") -> str:
    lines = [f"weights '{entry.name}' ({entry.description}) not found{': ' + detail if detail else ''}.",
             "Looked in:"] + [f"  {i}. {place}" for i, place in enumerate(looked, 1)]
    return "\n".join(lines + [how_to_get(entry)])


def resolve(name: str | WeightsEntry, explicit: str | Path | None = None) -> ResolvedWeights:
    """Path and sha256 of an entry's weights; WeightsMissing / WeightsCorrupt with a full message."""
    entry = get_entry(name)
    finding, looked = inspect_entry(entry, explicit)
    if finding.state in ("found", "unpinned"):
        assert finding.path is not None
        log.debug("weights %s: %s (%s, sha256 %s)", entry.name, finding.path, finding.state, finding.sha256)
        return ResolvedWeights(entry.name, finding.path, finding.sha256, finding.pinned, finding.where)
    if finding.state in ("missing", "unconverted"):
        raise WeightsMissing(missing_message(entry, looked, finding.message))
    remedy = (f"Delete it and run `eri-weights fetch {entry.name}`" if entry.has_auto_source
              else f"Replace it with `eri-weights import {entry.name} PATH`")
    raise WeightsCorrupt(f"weights '{entry.name}': {finding.message}. {remedy}.")
