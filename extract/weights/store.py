"""Put a verified source file into the cache: convert it if the entry says so, write the manifest.

Shared by fetch (downloads, wheel members) and import (user files). The old manifest is removed
first and the new one written last, so an interrupted install never leaves a manifest that vouches
for half-written files.
"""
from __future__ import annotations

import importlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from extract.weights.manifest import MANIFEST, Manifest, sha256_dir, write_manifest
from extract.weights.paths import cache_dir
from extract.weights.registry import TORCH_CHECKPOINT, WeightsEntry

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
Converter = Callable[[Path], "dict[str, torch.Tensor]"]


@dataclass
class InstallResult:
    name: str
    path: Path
    sha256: str = ""
    pinned: bool = False
    dropped: list[str] = field(default_factory=list)
    pending: str = ""  # non-empty: source stored, conversion waits for the converter (reason)
    skipped: str = ""  # non-empty: nothing done (reason)


class ConverterUnavailable(Exception):
    pass


def load_converter(spec: str) -> Converter:
    """Import "module:function" lazily; ConverterUnavailable if the module or function is absent."""
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConverterUnavailable(f"converter module {module_name} is not installed yet") from exc
        raise
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConverterUnavailable(f"{module_name} has no function {func_name}")
    return func


def _place(src: Path, dest: Path, move: bool) -> None:
    if src.resolve() == dest.resolve():
        return
    tmp = dest.with_name(f".{dest.name}.part")
    if move:
        shutil.move(str(src), tmp)
    else:
        shutil.copyfile(src, tmp)
    tmp.replace(dest)


def _start(entry: WeightsEntry) -> Path:
    d = cache_dir(entry.name)
    d.mkdir(parents=True, exist_ok=True)
    (d / MANIFEST).unlink(missing_ok=True)
    return d


def install_file(entry: WeightsEntry, source: Path, origin: str, *, source_sha256: str, pinned: bool,
                 move: bool = False) -> InstallResult:
    """Store one source file for a file entry (converted to safetensors if the entry has a converter)."""
    tensors, dropped, pending = None, [], ""
    if entry.converter:  # convert before touching the cache: a failure leaves the old install intact
        try:
            if entry.converter == TORCH_CHECKPOINT:
                from extract.weights.importer import read_checkpoint

                split = read_checkpoint(source)
                tensors, dropped = split.tensors, split.dropped
            else:
                tensors = load_converter(entry.converter)(source)
        except ConverterUnavailable as exc:
            pending = str(exc)
    if tensors is not None and entry.layout_check:  # refuse another architecture before storing anything
        load_converter(entry.layout_check)(tensors, str(source))
    d = _start(entry)
    m = Manifest(entry.name, main=entry.filename, origin=origin, source_sha256=source_sha256,
                 pinned=pinned, converter=entry.converter, converted=not pending, pending_reason=pending)
    result = InstallResult(entry.name, d / (entry.source_name if pending else entry.filename),
                           pinned=pinned, dropped=dropped, pending=pending)
    if tensors is not None:
        from extract.weights.state_dict import save_safetensors

        save_safetensors(tensors, d / entry.filename)
        m.add_file(d, entry.filename)
        m.dropped = result.dropped
    if not entry.converter or entry.keep_source or not m.converted:
        _place(source, d / entry.source_name, move)
        m.add_file(d, entry.source_name)
    for stale in (entry.filename, entry.source_name):  # from an earlier install with other settings
        if stale not in m.files:
            (d / stale).unlink(missing_ok=True)
    write_manifest(d, m)
    result.sha256 = m.files[m.main]["sha256"] if m.main in m.files else ""
    log.info("weights %s stored in %s%s", entry.name, d, f" (conversion pending: {result.pending})"
             if result.pending else "")
    return result


def install_dir(entry: WeightsEntry, files: dict[str, Path], origin: str, *, move: bool = False,
                dropped: list[str] | None = None) -> InstallResult:
    """Store a Hugging Face directory checkpoint (files: name in the directory -> source path)."""
    d = _start(entry)
    for stale in d.iterdir():
        if stale.is_file() and stale.name not in files:
            stale.unlink()
    m = Manifest(entry.name, main=".", origin=origin, dropped=list(dropped or []))
    for name, src in files.items():
        _place(src, d / name, move)
        m.add_file(d, name)
    write_manifest(d, m)
    return InstallResult(entry.name, d, sha256_dir(d), dropped=m.dropped)
