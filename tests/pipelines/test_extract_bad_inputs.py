"""One bad input never stops the batch: eri-extract on a folder a real user might have.

The folder holds good clips in several containers (.mp4, .ts, .m4a audio only), two files that
share a stem, a dangling symlink, a non-media file, a clip with a corrupt packet in the middle
and a clip with two audio streams. The batch finishes, every other clip is extracted, each
problem is one clear record; then stores that cannot be written (read-only, full) are refused
before any decoding or fail one feature without losing the others' shards; exit codes tell
"partial" from "nothing worked".
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_extract_helpers import cli, weights_args  # noqa: F401 (fixture)

from feature_store import FeatureStore
from feature_store.verify import verify_dirs
from pipelines.exit_codes import EXIT_NOTHING, EXIT_PARTIAL, EXIT_REFUSED
from pipelines.sample_data import make_clip

FEATURES = ("-f", "faces,mfcc", "--scheduler", "sync")


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messy") / "videos"
    make_clip(root / "00001.mp4", "face", seed=1, duration=2.0)
    make_clip(root / "00002.ts", "face", seed=2, duration=2.0)
    make_clip(root / "00003.m4a", "audio_only", seed=3, duration=2.0)
    make_clip(root / "00004.mp4", "corrupt_packet", seed=4, duration=2.0)
    make_clip(root / "00005.mkv", "two_audio", seed=5, duration=2.0)
    make_clip(root / "same.mkv", "face", seed=6, duration=2.0)
    make_clip(root / "same.mov", "face", seed=7, duration=2.0)
    (root / "gone.mp4").symlink_to(root / "deleted.mp4")
    (root / "notes.txt").write_text("recorded in the lab, session 3\n")
    return root


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_messy_folder_finishes_with_one_clear_record_per_problem(tmp_path, messy_folder, weights_args):
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    code, out = cli("-i", messy_folder, "-s", store, *FEATURES, "--summary-json", summary, "-v", *weights_args)
    assert code == EXIT_PARTIAL, out
    assert "gone.mp4" in out and "dangling symlink" in out and "notes.txt" in out  # what was not taken, and why
    fs = FeatureStore(store)
    faces, mfcc = fs.resolve("faces"), fs.resolve("mfcc")
    assert faces.completed() == {"00001", "00002", "00004", "00005"}  # the .m4a has no video: its failure below
    assert mfcc.completed() == {"00001", "00002", "00003", "00004", "00005"}
    for fd in (faces, mfcc):
        same = fd.failed()["same"]["reason"]
        assert "same.mkv" in same and "same.mov" in same and "--id-from relpath" in same
    assert "no video stream" in faces.failed()["00003"]["reason"]
    assert set(faces.failed()) == {"same", "00003"} and set(mfcc.failed()) == {"same"}

    with fs.reader("faces") as reader:  # the damaged clip kept what decoded, with a warning on its entry
        attrs = reader.attrs("00004")
        assert attrs["corrupt_packets"] == 1 and "corrupt packet" in attrs["decode_warning"]
        assert len(reader.get("00004")[1]) == 10 - attrs["frames_lost"]
    with fs.reader("mfcc") as reader:  # the first of two audio streams, recorded and reported
        assert (reader.attrs("00005")["audio_stream"], reader.attrs("00005")["audio_streams"]) == (0, 2)
        first = reader.get("00005")[0]
    assert "00005: 2 audio streams; used #0" in out
    assert verify_dirs(fs.feature_dirs()).ok

    code, out = cli("-i", messy_folder, "-s", tmp_path / "other", "-f", "mfcc", "--scheduler", "sync",
                    "--audio-stream", "1", "--id-from", "relpath")
    assert code == EXIT_PARTIAL, out  # only 00005.mkv has a second audio stream
    other = FeatureStore(tmp_path / "other").resolve("mfcc")
    assert other.completed() == {"00005.mkv"} and other.fingerprint != mfcc.fingerprint
    assert {"same.mkv", "same.mov"} <= set(other.failed())  # relpath ids tell the two files apart
    assert all("audio stream 1 asked for, the file has 1" in r["reason"] for r in other.failed().values())
    with FeatureStore(tmp_path / "other").reader("mfcc") as reader:
        assert reader.attrs("00005.mkv")["audio_stream"] == 1
        assert not np.allclose(reader.get("00005.mkv")[0], first)  # the other voice


def test_a_manifest_row_whose_file_is_missing_fails_alone(tmp_path, messy_folder):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"id,path\na,{messy_folder / '00001.mp4'}\nb,{tmp_path / 'nowhere.mp4'}\n")
    code, out = cli("-i", manifest, "-s", tmp_path / "store", "-f", "mfcc", "--scheduler", "sync")
    assert code == EXIT_PARTIAL, out
    fd = FeatureStore(tmp_path / "store").resolve("mfcc")
    assert fd.completed() == {"a"} and "file not found" in fd.failed()["b"]["reason"]
    before = fd.errors_path.read_text()
    cli("-i", manifest, "-s", tmp_path / "store", "-f", "mfcc", "--scheduler", "sync")
    assert fd.errors_path.read_text() == before  # an unchanged input failure is not recorded twice


def test_a_feature_that_produces_nothing_does_not_exit_0(tmp_path, messy_folder):
    code, out = cli("-i", messy_folder / "00003.m4a", "-s", tmp_path / "store", "-m", "audio", "-f", "mfcc",
                    "--scheduler", "sync", "--set", "mfcc.n_mfcc=200")
    assert code == EXIT_REFUSED and "mfcc: n_mfcc (200) must not exceed n_mels" in out  # caught at planning
    (tmp_path / "silent").mkdir()
    make_clip(tmp_path / "silent" / "x.mp4", "no_audio", seed=1, duration=1.0)
    code, out = cli("-i", tmp_path / "silent", "-s", tmp_path / "store", "-f", "mfcc", "--scheduler", "sync")
    assert code == EXIT_NOTHING and "mfcc produced no clip at all" in out, out


def test_a_backbone_that_cannot_load_fails_alone(tmp_path, messy_folder, weights_args, monkeypatch):
    broken = tmp_path / "weights" / "resnet18_affectnet"
    broken.mkdir(parents=True)
    (broken / "resnet18_affectnet.safetensors").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(tmp_path / "weights"))
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    code, out = cli("-i", messy_folder / "00001.mp4", "-s", store, "-f", "faces,resnet18_affectnet",
                    "--scheduler", "sync", "--summary-json", summary, *weights_args)
    assert code == EXIT_NOTHING, out
    features = _summary(summary)["features"]
    assert (features["faces"]["done"], features["faces"]["failed"]) == (1, 0)  # its shard was written
    assert (features["resnet18_affectnet"]["done"], features["resnet18_affectnet"]["failed"]) == (0, 1)
    assert "resnet18_affectnet: cannot load the model" in out and "faces 00001" not in out
    assert FeatureStore(store).resolve("faces").completed() == {"00001"}


@contextlib.contextmanager
def _mounted_tmpfs(path: Path, size: str, read_only: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_store_is_refused_before_any_decoding(tmp_path, messy_folder, monkeypatch):
    import extract.media

    def forbidden(*args, **kwargs):
        raise AssertionError("decoded although the store cannot be written")

    monkeypatch.setattr(extract.media, "decode_audio", forbidden)
    if os.geteuid() != 0:  # permissions hold for ordinary users
        store = tmp_path / "ro"
        store.mkdir()
        store.chmod(0o555)
        context = contextlib.nullcontext(store)
    else:  # root ignores permissions: a read-only mount it is
        context = _mounted_tmpfs(tmp_path / "ro", "4m", read_only=True)
    with context as store:
        code, out = cli("-i", messy_folder / "00001.mp4", "-s", store, "-f", "mfcc", "--scheduler", "sync")
    assert code == EXIT_REFUSED, out
    assert "cannot write to the store" in out and ("read-only" in out or "permission denied" in out)
    assert "Traceback" not in out and "errors.jsonl" not in out


def test_a_full_disk_is_refused_or_fails_one_feature_and_keeps_the_others(tmp_path, messy_folder, weights_args):
    with _mounted_tmpfs(tmp_path / "tiny", "512k") as store:
        code, out = cli("-i", messy_folder / "00001.mp4", "-s", store, "-f", "mfcc", "--scheduler", "sync")
        assert code == EXIT_REFUSED and "no space left on the device" in out, out
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("00001.mp4", "00002.ts", "00004.mp4", "00005.mkv"):
        shutil.copy(messy_folder / name, clips / name)
    with _mounted_tmpfs(tmp_path / "small", "3m") as store:  # room for some shards, not for all of them
        summary = tmp_path / "summary.json"
        code, out = cli("-i", clips, "-s", store, "-f", "faces,mfcc", "--scheduler", "sync", "--clips-per-task", "4",
                        "--summary-json", summary, *weights_args)
        assert code in (EXIT_PARTIAL, EXIT_NOTHING), out
        features = _summary(summary)["features"]
        assert all(f["done"] + f["failed"] == 4 for f in features.values()), features
        assert any(f["done"] for f in features.values()) and any(f["failed"] for f in features.values())
        reasons = {e["reason"] for e in _summary(summary)["errors"]}
        assert reasons == {"cannot write to the store: No space left on device"}, reasons
        assert "Traceback" not in out
        fs = FeatureStore(store)
        for name, tally in features.items():  # what finished before the disk filled is all there
            if tally["done"]:
                with fs.reader(name) as reader:
                    assert len(reader) == tally["done"] and all(reader.get(c)[0].size for c in reader.ids())
        assert verify_dirs(fs.feature_dirs()).ok
        assert not any(p.name.startswith(".tmp-shard") for p in Path(store).rglob("*"))  # nothing half-written
