"""Helpers shared by the fusion tests (imported as `fusion_helpers`)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


from fusion.synthetic import SyntheticData, SyntheticSpec, write_synthetic

# Small heads that train in seconds on one core.
SMALL_HEADS = {
    "conv_pool": {"hidden": 16},
    "ridge": {},
    "lstm": {"d_model": 32, "d_fc": 32, "fc_dropout": 0.1},
    "te": {"d_model": 32, "layers": 1, "d_ff": 64},
    "tcn_transformer": {"d_model": 32, "layers": 1, "d_ff": 64, "tcn_layers": 3},
    "av_interaction": {"d_model": 16, "ff_mult": 1},
    "cross_attention_rnn": {"hidden": 32, "rnn_layers": 1},
}


@dataclass
class SynthStore:
    root: Path
    labels: Path
    refs: list[str]
    data: SyntheticData
    spec: SyntheticSpec


def make_synth(tmp: Path, spec: SyntheticSpec) -> SynthStore:
    data, refs = write_synthetic(tmp / "store", tmp / "labels.csv", spec)
    return SynthStore(tmp / "store", tmp / "labels.csv", refs, data, spec)


BIN = Path(sys.executable).parent


@dataclass
class MuseStore:
    root: Path
    store: Path
    labels: Path
    partition: Path
    features: list[str]
    spec: object

    def fit_args(self, out: Path, *extra: str) -> list[str]:
        """eri-fit arguments for this layout (small and quick unless `extra` says otherwise)."""
        return ["--store", str(self.store), "--labels", str(self.labels), "--partition", str(self.partition),
                "--features", ",".join(self.features), "--threads", "1", "--out", str(out), "-q",
                "--no-plots", *extra]


def run_cli(*args: str, cwd: Path | None = None) -> str:
    """Run an installed console script (bin/eri-...) and return its stdout; fail loudly."""
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def make_muse(tmp: Path, spec) -> MuseStore:
    from fusion.synthetic_events import write_muse_layout
    write_muse_layout(tmp, spec)
    run_cli("eri-store", "import-csv", str(tmp / "feats"), "--store", str(tmp / "store"))
    return MuseStore(tmp, tmp / "store", tmp / "labels.csv", tmp / "partition.csv",
                     [spec.audio.name, spec.video.name], spec)


def tiny_config(refs: list[str], head: str = "te", **kw):
    from fusion.config import resolve_config
    base = {"features": refs, "head": head, "head_options": SMALL_HEADS[head], "epochs": 3,
            "batch_size": 16, "steps": 8, "threads": 1}
    base.update(kw)
    return resolve_config(None, base)
