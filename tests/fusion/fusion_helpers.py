"""Helpers shared by the fusion tests (imported as `fusion_helpers`)."""
from __future__ import annotations

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


def tiny_config(refs: list[str], head: str = "te", **kw):
    from fusion.config import resolve_config
    base = {"features": refs, "head": head, "head_options": SMALL_HEADS[head], "epochs": 3,
            "batch_size": 16, "steps": 8, "threads": 1}
    base.update(kw)
    return resolve_config(None, base)
