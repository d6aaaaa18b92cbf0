"""Clip ids found by pipelines.dataset follow the store's canonical rule (feature_store/clip_ids.py):
a video `[00001].mp4` and a manifest id `[00002]` are clips `00001` and `00002`."""
from __future__ import annotations

from pathlib import Path

from pipelines.dataset import discover, discover_clips


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_scan_and_manifest_give_canonical_ids(tmp_path: Path) -> None:
    _touch(tmp_path / "videos" / "[00001].mp4")
    _touch(tmp_path / "videos" / "00002.mp4")
    _touch(tmp_path / "other" / "clip.mp4")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,path\n[00003],other/clip.mp4\n")
    clips = discover_clips([tmp_path / "videos", manifest])
    assert [c.id for c in clips] == ["00001", "00002", "00003"]
    assert clips[0].path.name == "[00001].mp4"


def test_two_spellings_of_one_clip_share_its_id(tmp_path: Path) -> None:
    _touch(tmp_path / "[00004].mp4")
    _touch(tmp_path / "sub" / "00004.mp4")
    found = discover(tmp_path)
    assert not found.clips and "2 files share the clip id '00004'" in found.failed["00004"].reason
