"""Downloads against a real HTTP server on 127.0.0.1, wheel members through the real pip (local
--find-links, no index), converters, and the real PyPI fetch of blazeface (network marker)."""
from __future__ import annotations

import hashlib
import os

import pytest
import torch

from extract.weights import ENTRIES, WeightsCorrupt, WeightsEntry, WeightsMissing, WheelMember, load_state_dict, resolve
from extract.weights.errors import WeightsFetchError
from extract.weights.fetch import download, extract_wheel_member, fetch
from extract.weights.importer import import_weights
from extract.weights.registry import TORCH_CHECKPOINT

BLOB = os.urandom(300_000)
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def test_download_good_file_with_progress(http_server, tmp_path) -> None:
    root, url, server = http_server
    (root / "blob.bin").write_bytes(BLOB)
    seen = []
    dest = tmp_path / "out" / "blob.bin"
    digest = download(f"{url}/blob.bin", dest, sha256=BLOB_SHA, size=len(BLOB),
                      progress=lambda done, total: seen.append((done, total)), timeout=10)
    assert digest == BLOB_SHA and dest.read_bytes() == BLOB
    assert seen[-1] == (len(BLOB), len(BLOB))
    assert server.requests == ["/blob.bin"]
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]  # no temporary left


def test_download_sha256_mismatch_leaves_nothing(http_server, tmp_path) -> None:
    root, url, _ = http_server
    (root / "blob.bin").write_bytes(BLOB)
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(WeightsCorrupt) as info:
        download(f"{url}/blob.bin", dest, sha256="0" * 64, timeout=10)
    assert "sha256 mismatch" in str(info.value) and BLOB_SHA in str(info.value) and "blob.bin" in str(info.value)
    assert not dest.exists() and not list(dest.parent.iterdir())
    with pytest.raises(WeightsCorrupt, match="prefix"):
        download(f"{url}/blob.bin", dest, sha256="deadbeef", timeout=10)
    assert download(f"{url}/blob.bin", dest, sha256=BLOB_SHA[:8], timeout=10) == BLOB_SHA


def test_download_http_error(http_server, tmp_path) -> None:
    _, url, _ = http_server
    with pytest.raises(WeightsFetchError, match="404"):
        download(f"{url}/missing.pth", tmp_path / "x.pth", timeout=10)
    assert not (tmp_path / "x.pth").exists()


def test_fetch_url_entry_end_to_end(http_server, dirs, register) -> None:
    root, url, server = http_server
    sd = {"module.features.0.weight": torch.randn(4, 1, 3, 3), "module.features.0.bias": torch.zeros(4)}
    torch.save({"state_dict": sd, "epoch": 1}, root / "tiny.pth")
    prefix = hashlib.sha256((root / "tiny.pth").read_bytes()).hexdigest()[:8]
    entry = register(WeightsEntry(name="tiny_url", description="t", license="MIT",
                                  source_name=f"tiny-{prefix}.pth", sha256=prefix, url=f"{url}/tiny.pth",
                                  converter=TORCH_CHECKPOINT))
    with pytest.raises(WeightsMissing, match="eri-weights fetch tiny_url"):
        resolve("tiny_url")
    result = fetch(entry, timeout=10)
    assert result.pinned and result.dropped == ["epoch: 1"]
    r = resolve("tiny_url")
    assert r.pinned and r.path == dirs["cache_weights"] / "tiny_url" / "tiny_url.safetensors"
    got = load_state_dict(r.path)
    assert set(got) == {"features.0.weight", "features.0.bias"}
    assert torch.equal(got["features.0.weight"], sd["module.features.0.weight"])
    assert fetch(entry, timeout=10).skipped and len(server.requests) == 1  # no second download
    # tamper: detected, and a plain fetch repairs it
    r.path.write_bytes(r.path.read_bytes()[:-1] + b"\x00")
    os.utime(r.path, ns=(1, 1))
    with pytest.raises(WeightsCorrupt, match="changed since it was fetched"):
        resolve("tiny_url")
    fetch(entry, timeout=10)
    assert resolve("tiny_url").sha256 == r.sha256


def test_fetch_mismatch_keeps_cache_clean(http_server, dirs, register) -> None:
    root, url, _ = http_server
    (root / "blob.bin").write_bytes(BLOB)
    entry = register(WeightsEntry(name="tiny_bad", description="t", license="MIT", source_name="blob.tflite",
                                  sha256="1" * 64, url=f"{url}/blob.bin"))
    with pytest.raises(WeightsCorrupt):
        fetch(entry, timeout=10)
    d = dirs["cache_weights"] / "tiny_bad"
    assert not [p for p in d.rglob("*") if p.is_file()]
    with pytest.raises(WeightsMissing):
        resolve("tiny_bad")


def test_extract_wheel_member(tmp_path, wheel_builder) -> None:
    wheel = wheel_builder(tmp_path, "eritestpkg", "1.0", {"eritestpkg/data/model.tflite": BLOB})
    dest = tmp_path / "out" / "model.tflite"
    assert extract_wheel_member(wheel, "eritestpkg/data/model.tflite", dest, sha256=BLOB_SHA) == BLOB_SHA
    assert dest.read_bytes() == BLOB
    with pytest.raises(WeightsFetchError, match="similar: eritestpkg/data/model.tflite"):
        extract_wheel_member(wheel, "eritestpkg/model.tflite", dest)
    with pytest.raises(WeightsCorrupt):
        extract_wheel_member(wheel, "eritestpkg/data/model.tflite", tmp_path / "x", sha256="2" * 64)
    assert not (tmp_path / "x").exists()


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only a local directory of wheels (its own config mechanism: PIP_* env vars)."""
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return wheels


def test_fetch_wheel_member_through_pip(local_index, dirs, register, wheel_builder) -> None:
    wheel_builder(local_index, "eritestpkg", "1.0", {"eritestpkg/data/model.tflite": BLOB})
    entry = register(WeightsEntry(name="tiny_wheel", description="t", license="MIT",
                                  source_name="model.tflite", sha256=BLOB_SHA, size=len(BLOB),
                                  wheel=WheelMember("eritestpkg==1.0", "eritestpkg/data/model.tflite")))
    result = fetch(entry)
    assert result.sha256 == BLOB_SHA
    r = resolve("tiny_wheel")
    assert r.pinned and r.path.read_bytes() == BLOB
    missing = register(WeightsEntry(name="tiny_wheel2", description="t", license="MIT",
                                    source_name="model.tflite",
                                    wheel=WheelMember("eritestpkg==9.9", "eritestpkg/data/model.tflite")))
    with pytest.raises(WeightsFetchError, match="pip could not download eritestpkg==9.9"):
        fetch(missing)


def test_wheel_for_another_platform_uses_fallback_args(local_index, dirs, register, wheel_builder,
                                                       monkeypatch) -> None:
    import extract.weights.fetch as fetch_module

    calls = []
    real = fetch_module.pip_download
    monkeypatch.setattr(fetch_module, "pip_download", lambda *a: calls.append(a) or real(*a))
    tag = "cp311-cp311-macosx_11_0_arm64"  # not installable here: the first pip call finds nothing
    wheel_builder(local_index, "eriplatpkg", "2.0", {"eriplatpkg/m.tflite": BLOB}, tag=tag)
    entry = register(WeightsEntry(
        name="tiny_plat", description="t", license="MIT", source_name="m.tflite", sha256=BLOB_SHA,
        wheel=WheelMember("eriplatpkg==2.0", "eriplatpkg/m.tflite",
                          ("--platform", "macosx_11_0_arm64", "--python-version", "3.11",
                           "--implementation", "cp", "--abi", "cp311"))))
    assert fetch(entry).sha256 == BLOB_SHA
    assert len(calls) == 2 and calls[0][2:] == () and "--platform" in calls[1][2]


def test_converter_pending_then_applied_without_download(http_server, dirs, register, tmp_path,
                                                         monkeypatch) -> None:
    root, url, server = http_server
    (root / "model.h5").write_bytes(BLOB)
    base = dict(name="tiny_conv", description="t", license="MIT", source_name="model.h5", sha256=BLOB_SHA,
                url=f"{url}/model.h5", keep_source=True)
    entry = register(WeightsEntry(**base, converter="eri_conv_not_written_yet:convert"))
    result = fetch(entry, timeout=10)
    assert "not installed yet" in result.pending
    with pytest.raises(WeightsMissing) as info:
        resolve("tiny_conv")
    assert "eri_conv_not_written_yet" in str(info.value) and "eri-weights fetch tiny_conv" in str(info.value)
    # the converter lands: fetch converts from the cached, verified source; no second download
    (tmp_path / "eri_conv_ok.py").write_text(
        "import torch\ndef convert(path):\n    return {'w': torch.tensor(list(open(path, 'rb').read(4)))}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = register(WeightsEntry(**base, converter="eri_conv_ok:convert"))
    result = fetch(entry, timeout=10)
    assert not result.pending and len(server.requests) == 1
    r = resolve("tiny_conv")
    assert r.pinned and r.path.name == "tiny_conv.safetensors"
    assert load_state_dict(r.path)["w"].tolist() == list(BLOB[:4])
    assert (r.path.parent / "model.h5").read_bytes() == BLOB  # source kept beside for comparisons


def test_import_checks_pins(tmp_path, dirs, wheel_builder, register) -> None:
    entry = register(WeightsEntry(name="tiny_imp", description="t", license="MIT", source_name="m.tflite",
                                  sha256=BLOB_SHA, wheel=WheelMember("eritestpkg==1.0", "pkg/m.tflite")))
    other = tmp_path / "other.tflite"
    other.write_bytes(b"other")
    with pytest.raises(WeightsCorrupt, match="--allow-unpinned"):
        import_weights(entry.name, other)
    assert not import_weights(entry.name, other, allow_unpinned=True).pinned
    assert not resolve(entry.name).pinned
    wheel = wheel_builder(tmp_path, "eritestpkg", "1.0", {"pkg/m.tflite": BLOB})
    assert import_weights(entry.name, wheel).pinned  # the wheel itself, downloaded by hand
    assert resolve(entry.name).sha256 == BLOB_SHA


def test_import_hf_directory_converts_bin(tmp_path, dirs) -> None:
    src = tmp_path / "w2v"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "preprocessor_config.json").write_text("{}")
    torch.save({"wav2vec2.masked_spec_embed": torch.ones(768)}, src / "pytorch_model.bin")
    result = import_weights("wav2vec2_base", src)
    names = sorted(p.name for p in result.path.iterdir())
    assert names == ["config.json", "manifest.json", "model.safetensors", "preprocessor_config.json"]
    r = resolve("wav2vec2_base")
    assert r.path == dirs["cache_weights"] / "wav2vec2_base" and r.sha256 == result.sha256
    assert set(load_state_dict(r.path)) == {"wav2vec2.masked_spec_embed"}


@pytest.mark.network
def test_real_blazeface_from_pypi(dirs) -> None:
    """Really downloads mediapipe==0.10.21 from PyPI (the user's pip config applies)."""
    result = fetch("blazeface", timeout=120)
    r = resolve("blazeface")
    assert r.pinned and r.sha256 == ENTRIES["blazeface"].sha256 == result.sha256
    assert r.path.stat().st_size == ENTRIES["blazeface"].size
    assert r.path.read_bytes()[4:8] == b"TFL3"  # TFLite flatbuffer identifier
