"""pipelines.dataset.discover_clips: directories, manifests, and the errors users hit."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.dataset import Clip, DatasetError, discover_clips


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_directory_is_searched_recursively_sorted_by_id(tmp_path):
    for name in ("b.mp4", "a.MOV", "sub/c.webm", "sub/deeper/d.mkv", "e.avi", "notes.txt", "labels.csv",
                 ".hidden/f.mp4", ".g.mp4"):
        _touch(tmp_path / name)
    clips = discover_clips(tmp_path)
    assert [c.id for c in clips] == ["a", "b", "c", "d", "e"]
    assert all(isinstance(c, Clip) and c.path.is_absolute() and c.path.is_file() for c in clips)
    assert clips[3].path == (tmp_path / "sub/deeper/d.mkv").resolve()


def test_manifest_with_relative_paths_and_optional_ids(tmp_path):
    _touch(tmp_path / "media/x1.mp4")
    _touch(tmp_path / "media/x2.mp4")
    absolute = _touch(tmp_path / "elsewhere/x3.mp4")
    manifest = tmp_path / "lists/manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"id,path,comment\nclip_b,../media/x1.mp4,hi\n,../media/x2.mp4,\nclip_a,{absolute},\n\n")
    clips = discover_clips(manifest)
    assert [(c.id, c.path.name) for c in clips] == [("clip_a", "x3.mp4"), ("clip_b", "x1.mp4"), ("x2", "x2.mp4")]
    assert clips[1].path == (tmp_path / "media/x1.mp4").resolve()


def test_manifest_without_id_column_and_inputs_combined(tmp_path):
    _touch(tmp_path / "m/one.mp4")
    _touch(tmp_path / "dir/two.mp4")
    (tmp_path / "m/list.csv").write_text("path\none.mp4\n")
    clips = discover_clips([tmp_path / "m/list.csv", tmp_path / "dir"])
    assert [c.id for c in clips] == ["one", "two"]
    assert [c.id for c in discover_clips(str(tmp_path / "dir/two.mp4"))] == ["two"]  # one video given directly


def test_duplicate_ids_are_an_error_naming_both_files(tmp_path):
    _touch(tmp_path / "a/clip.mp4")
    _touch(tmp_path / "b/clip.webm")
    with pytest.raises(DatasetError, match=r"1 duplicate clip id\(s\): clip: .*a/clip.mp4.*b/clip.webm"):
        discover_clips(tmp_path)
    (tmp_path / "m.csv").write_text("id,path\nsame,a/clip.mp4\nsame,b/clip.webm\n")
    with pytest.raises(DatasetError, match="duplicate clip id.*same"):
        discover_clips(tmp_path / "m.csv")


def test_missing_files_are_listed(tmp_path):
    _touch(tmp_path / "ok.mp4")
    (tmp_path / "m.csv").write_text("id,path\n1,ok.mp4\n2,gone.mp4\n3,also_gone.mp4\n")
    with pytest.raises(DatasetError) as info:
        discover_clips(tmp_path / "m.csv")
    msg = str(info.value)
    assert "2 listed file(s) do not exist" in msg and "line 3:" in msg and "gone.mp4" in msg and "also_gone.mp4" in msg


@pytest.mark.parametrize("content, message", [
    ("", "manifest is empty"),
    ("id,path\n", "lists no clips"),
    ("id,file\n1,a.mp4\n", "no 'path' column"),
    ("id,path\n1,\n", "empty path on line(s) 2"),
])
def test_bad_manifests(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        discover_clips(tmp_path / "m.csv")


def test_empty_or_missing_inputs(tmp_path):
    _touch(tmp_path / "readme.txt")
    with pytest.raises(DatasetError, match="no video files"):
        discover_clips(tmp_path)
    with pytest.raises(DatasetError, match="no such file or directory"):
        discover_clips(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="no input given"):
        discover_clips([])


def test_sample_dataset_is_discoverable(sample_dataset):
    clips = discover_clips(sample_dataset.root)
    assert [c.id for c in clips] == sample_dataset.ids == [f"{i:05d}" for i in range(1, 25)]
    assert discover_clips(sample_dataset.video_dir) == clips
