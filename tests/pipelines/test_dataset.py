"""pipelines.dataset.discover_clips: directories, manifests, and the errors users hit."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.dataset import Clip, DatasetError, discover, discover_clips


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


def test_files_sharing_an_id_fail_alone_naming_both_and_the_option(tmp_path):
    _touch(tmp_path / "a/clip.mp4")
    _touch(tmp_path / "b/clip.webm")
    _touch(tmp_path / "other.mp4")
    found = discover(tmp_path)
    assert [c.id for c in found.clips] == ["other"]
    reason = found.failed["clip"].reason
    assert "a/clip.mp4" in reason and "b/clip.webm" in reason and "--id-from relpath" in reason
    by_path = discover(tmp_path, id_from="relpath")
    assert [c.id for c in by_path.clips] == ["a/clip.mp4", "b/clip.webm", "other.mp4"] and not by_path.failed
    (tmp_path / "m.csv").write_text("id,path\nsame,a/clip.mp4\nsame,b/clip.webm\nok,other.mp4\n")
    found = discover(tmp_path / "m.csv")
    assert [c.id for c in found.clips] == ["ok"] and "same" in found.failed


def test_missing_files_are_failed_clips_not_a_refusal(tmp_path):
    _touch(tmp_path / "ok.mp4")
    (tmp_path / "m.csv").write_text("id,path\n1,ok.mp4\n2,gone.mp4\n3,also_gone.mp4\n")
    found = discover(tmp_path / "m.csv")
    assert [c.id for c in found.clips] == ["1"]
    assert set(found.failed) == {"2", "3"}
    assert "line 3: file not found" in found.failed["2"].reason and "gone.mp4" in found.failed["2"].reason


def test_every_file_not_taken_is_listed_with_the_reason(tmp_path):
    import numpy as np
    from PIL import Image

    _touch(tmp_path / "clip.mp4")
    _touch(tmp_path / "clip.wav")            # the video's sidecar audio, not a clip
    _touch(tmp_path / "speech.wav")          # an audio-only clip
    _touch(tmp_path / "notes.txt")
    (tmp_path / "blob.xyz").write_bytes(bytes(range(256)) * 8)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "still.jpeg.bin", format="PNG")
    (tmp_path / "broken.mp4").symlink_to(tmp_path / "nowhere.mp4")
    found = discover(tmp_path)
    assert [c.id for c in found.clips] == ["clip", "speech"]
    why = {p.name: reason for p, reason in found.skipped}
    assert why["broken.mp4"].startswith("dangling symlink")
    assert why["notes.txt"].startswith("non-media")
    assert why["blob.xyz"] == "file(s) PyAV cannot open as media"
    assert why["still.jpeg.bin"] == "still image(s)"
    assert "clip.wav" not in why
    assert any("dangling symlink" in line and "broken.mp4" in line for line in found.skipped_summary())


@pytest.mark.parametrize("content, message", [
    ("", "manifest is empty"),
    ("id,path\n", "lists no clips"),
    ("id,file\n1,a.mp4\n", "no 'path' column"),
])
def test_bad_manifests(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        discover_clips(tmp_path / "m.csv")


def test_empty_or_missing_inputs(tmp_path):
    _touch(tmp_path / "readme.txt")
    with pytest.raises(DatasetError, match="no media files"):
        discover_clips(tmp_path)
    with pytest.raises(DatasetError, match="no such file or directory"):
        discover_clips(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="no input given"):
        discover_clips([])


def test_sample_dataset_is_discoverable(sample_dataset):
    clips = discover_clips(sample_dataset.root)
    assert [c.id for c in clips] == sample_dataset.ids == [f"{i:05d}" for i in range(1, 25)]
    assert discover_clips(sample_dataset.video_dir) == clips
