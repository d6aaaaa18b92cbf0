"""Fixtures for the weights tests: isolated env dirs, fake registry entries, a local HTTP server."""
from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from extract.weights import ENTRIES, WeightsEntry


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """$ERI_WEIGHTS_DIR and $ERI_CACHE_DIR pointing at fresh temporary directories."""
    user, cache = tmp_path / "user_weights", tmp_path / "cache"
    monkeypatch.setenv("ERI_WEIGHTS_DIR", str(user))
    monkeypatch.setenv("ERI_CACHE_DIR", str(cache))
    return {"user": user, "cache": cache, "cache_weights": cache / "weights"}


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch):
    """Add (or replace) a registry entry for the duration of one test."""

    def add(entry: WeightsEntry) -> WeightsEntry:
        monkeypatch.setitem(ENTRIES, entry.name, entry)
        return entry

    return add


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def http_server(tmp_path: Path):
    """Real HTTP on 127.0.0.1 (random port) serving tmp_path/www; stopped at teardown."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    server.requests = []  # type: ignore[attr-defined]
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def build_wheel(directory: Path, dist: str, version: str, members: dict[str, bytes],
                tag: str = "py3-none-any") -> Path:
    """A minimal but valid wheel (METADATA, WHEEL, RECORD) that pip accepts from --find-links."""
    info = f"{dist}-{version}.dist-info"
    files = dict(members)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: eri-tests\nRoot-Is-Purelib: true\n"
                              f"Tag: {tag}\n").encode()
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files).encode() + f"{info}/RECORD,,\n".encode()
    path = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def wheel_builder():
    return build_wheel
