"""Fixtures for the fusion tests: synthetic stores (two streams + labels with a split),
built once per session through the store API, and a MuSe-Reaction-layout folder of transient
events imported through the `eri-store import-csv` CLI; torch on one thread (faster and
deterministic on a shared machine)."""
from __future__ import annotations

import pytest
import torch
from fusion_helpers import MuseStore, SynthStore, make_muse, make_synth

from fusion.synthetic import SyntheticSpec

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> SynthStore:
    """120 clips (84 train / 18 val / 18 test), dims 6 and 5: for plumbing tests."""
    spec = SyntheticSpec(n_clips=120, audio_dim=6, video_dim=5, audio_steps=(10, 20), video_steps=(6, 12))
    return make_synth(tmp_path_factory.mktemp("synth_small"), spec)


@pytest.fixture(scope="session")
def synth_quality(tmp_path_factory: pytest.TempPathFactory) -> SynthStore:
    """800 clips (560 / 120 / 120), dims 16 and 16: for the quality checks."""
    spec = SyntheticSpec(n_clips=800, audio_dim=16, video_dim=16)
    return make_synth(tmp_path_factory.mktemp("synth_quality"), spec)




@pytest.fixture(scope="session")
def muse_events(tmp_path_factory: pytest.TempPathFactory) -> MuseStore:
    """MuSe layout (feats/<Feature>/<id>.csv with [00001] ids, labels.csv, partition.csv) of
    the transient-event generator, 240 train / 60 devel / 30 test clips, imported with
    `eri-store import-csv feats/`."""
    from fusion.synthetic_events import EventSpec, StreamSpec
    spec = EventSpec(n_train=240, n_devel=60, n_test=30, duration_s=(6.0, 8.0),
                     audio=StreamSpec("eGeMAPS", 8, 0.1), video=StreamSpec("VGGFace2", 10, 0.25))
    return make_muse(tmp_path_factory.mktemp("muse_events"), spec)
