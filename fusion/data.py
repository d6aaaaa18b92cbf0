"""Features for training: loaded once from the store, fixed length, normalised per batch.

Every requested feature (``name`` or ``name@fp``) is read with ``reader.load_all`` for all
clips in one pass and held in memory as an (N, T, D) tensor plus a mask; batches are
plain tensor indexing (no HDF5 reads during training). Standardisation statistics are
fitted on the training rows only (``Normalizer.fit``) and applied per batch, so folds
share one copy of the data.

Clips missing a feature: ``missing="error"`` (default) raises listing them; ``"drop"``
removes them from every feature; ``"zeros"`` keeps them with the feature set to zero
after standardisation (= the training mean), full-length mask. Both are reported.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from feature_store import FeatureStore
from fusion.heads.registry import StreamInfo
from fusion.lengths import POLICIES, to_fixed_length

log = logging.getLogger(__name__)
MISSING_POLICIES = ("error", "drop", "zeros")
_AUDIO_HINTS = ("audio", "wav2vec", "vggish", "egemaps", "mfcc", "deepspectrum", "compare",
                "opensmile", "hubert", "whisper", "speech", "voice")
_AUDIO_TOKENS = frozenset({"ds", "w2v", "mel", "fbank", "synth_audio"})
MAX_LISTED = 20


class FusionDataError(ValueError):
    """Features cannot be assembled for training (missing clips, bad options)."""


@dataclass(frozen=True)
class DataPolicy:
    steps: int = 32
    steps_per_feature: dict[str, int] = field(default_factory=dict)
    length: str = "resample"
    length_per_feature: dict[str, str] = field(default_factory=dict)
    missing: str = "error"
    modalities: dict[str, str] = field(default_factory=dict)

    def steps_for(self, name: str, clip_level: bool) -> int:
        if name in self.steps_per_feature:
            return int(self.steps_per_feature[name])
        return 1 if clip_level else self.steps

    def length_for(self, name: str) -> str:
        return self.length_per_feature.get(name, self.length)


@dataclass
class FeatureBlock:
    name: str
    fingerprint: str
    modality: str
    length: str
    steps: int
    data: torch.Tensor      # (N, T, D) float32, as stored (not standardised)
    mask: torch.Tensor      # (N, T) bool, True = real step
    present: torch.Tensor   # (N,) bool, False = zero-filled missing clip

    def __post_init__(self) -> None:
        # no padding and no zero-filled clip: batches need no masking pass
        self.complete = bool(self.mask.all()) and bool(self.present.all())

    @property
    def dim(self) -> int:
        return int(self.data.shape[2])

    def describe(self) -> dict:
        return {"fingerprint": self.fingerprint, "ref": f"{self.name}@{self.fingerprint}",
                "dim": self.dim, "steps": self.steps, "length": self.length,
                "modality": self.modality}


@dataclass
class FusionData:
    ids: list[str]
    blocks: dict[str, FeatureBlock]
    dropped: dict[str, list[str]] = field(default_factory=dict)      # feature -> ids removed
    zero_filled: dict[str, list[str]] = field(default_factory=dict)  # feature -> ids zeroed

    def rows(self, ids: list[str]) -> torch.Tensor:
        pos = {cid: i for i, cid in enumerate(self.ids)}
        return torch.tensor([pos[c] for c in ids], dtype=torch.long)

    def streams(self) -> dict[str, StreamInfo]:
        return {n: StreamInfo(b.dim, b.steps, b.modality) for n, b in self.blocks.items()}


def guess_modality(name: str, spec: dict, overrides: dict[str, str]) -> str:
    if name in overrides:
        return overrides[name]
    mod = spec.get("modality")
    if mod in ("audio", "video"):
        return mod
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    audio = any(t in _AUDIO_TOKENS or t.startswith(_AUDIO_HINTS) for t in tokens)
    return "audio" if audio else "video"


def _check_policy(policy: DataPolicy, names: list[str]) -> None:
    if policy.missing not in MISSING_POLICIES:
        raise FusionDataError(f"--missing must be one of {MISSING_POLICIES}, got {policy.missing!r}")
    for name, value in [("*", policy.length), *policy.length_per_feature.items()]:
        if value not in POLICIES:
            raise FusionDataError(f"length policy for {name}: {value!r}; use one of {POLICIES}")
    for opt in (policy.steps_per_feature, policy.length_per_feature, policy.modalities):
        unknown = set(opt) - set(names)
        if unknown:
            raise FusionDataError(f"per-feature option for {sorted(unknown)}, which are not among "
                                  f"the features {names}")


def load_fusion_data(store: FeatureStore, refs: list[str], ids: list[str],
                     policy: DataPolicy) -> FusionData:
    """Load `refs` for `ids` (order kept) into memory under `policy`."""
    names = [r.partition("@")[0] for r in refs]
    if len(set(names)) != len(names):
        raise FusionDataError(f"a feature is named twice in {refs}")
    _check_policy(policy, names)
    readers = {n: store.reader(r) for n, r in zip(names, refs)}
    missing = {n: [c for c in ids if c not in rd] for n, rd in readers.items()}
    missing = {n: m for n, m in missing.items() if m}
    dropped: dict[str, list[str]] = {}
    zero_filled: dict[str, list[str]] = {}
    empty = [n for n, m in missing.items() if len(m) == len(ids)]
    if empty:  # no policy helps: the store, the feature or the ids are not the ones meant
        lines = [f"{n}@{readers[n].fingerprint} holds {len(readers[n])} clip(s), none of the {len(ids)} "
                 f"labelled ones (stored e.g. {readers[n].ids()[:3]}, labelled e.g. {list(ids)[:3]})"
                 for n in empty]
        raise FusionDataError(f"features without any labelled clip in store {store.root}:\n  " + "\n  ".join(lines)
                              + "\ncheck --store, the feature name/fingerprint and the labels' ids")
    if missing and policy.missing == "error":
        lines = [f"{n}@{readers[n].fingerprint}: {len(m)} clip(s) missing: "
                 + ", ".join(m[:MAX_LISTED]) + (" ..." if len(m) > MAX_LISTED else "")
                 for n, m in missing.items()]
        raise FusionDataError(f"features missing for labelled clips in store {store.root}:\n  "
                              + "\n  ".join(lines)
                              + "\nuse --missing drop (leave those clips out) or --missing zeros")
    if policy.missing == "drop":
        gone = set().union(*missing.values()) if missing else set()
        dropped = missing
        ids = [c for c in ids if c not in gone]
        if not ids:
            raise FusionDataError("no clip has every feature; nothing left after --missing drop")
    elif policy.missing == "zeros":
        zero_filled = missing
    blocks = {}
    for name, reader in readers.items():
        have = [c for c in ids if c in reader]
        arrays = dict(zip(have, reader.load_all(have)))
        seqs = [arrays.get(c) for c in ids]
        dims = {a.shape[1] for a in arrays.values() if a.ndim == 2}
        if len(dims) != 1 or any(a.ndim != 2 for a in arrays.values()):
            raise FusionDataError(f"{name}@{reader.fingerprint}: expected (T, dim) float data with one dim, "
                                  f"got dims {sorted(dims)}")
        clip_level = all(a.shape[0] == 1 for a in arrays.values())
        steps, length = policy.steps_for(name, clip_level), policy.length_for(name)
        data, mask = to_fixed_length(seqs, steps, length, dims.pop())
        present = np.array([s is not None for s in seqs])
        blocks[name] = FeatureBlock(name, reader.fingerprint,
                                    guess_modality(name, reader.spec, policy.modalities),
                                    length, steps, torch.from_numpy(data), torch.from_numpy(mask),
                                    torch.from_numpy(present))
        reader.close()
        log.info("loaded %s@%s: %d clips, %d steps (%s), dim %d, %s", name, reader.fingerprint,
                 len(have), steps, length, blocks[name].dim, blocks[name].modality)
    return FusionData(list(ids), blocks, dropped, zero_filled)


@dataclass
class Normalizer:
    """Per-feature, per-dimension mean/std (fitted on training rows, real steps only)."""
    mean: dict[str, torch.Tensor]
    std: dict[str, torch.Tensor]

    @classmethod
    def fit(cls, data: FusionData, rows: torch.Tensor, enabled: bool = True) -> "Normalizer":
        mean, std = {}, {}
        for name, b in data.blocks.items():
            if not enabled:
                mean[name], std[name] = torch.zeros(b.dim), torch.ones(b.dim)
                continue
            total = torch.zeros(b.dim, dtype=torch.float64)
            total_sq = torch.zeros(b.dim, dtype=torch.float64)
            count = 0
            for chunk in rows.split(2048):
                w = (b.mask[chunk] & b.present[chunk, None]).to(torch.float64).unsqueeze(-1)
                x = b.data[chunk].to(torch.float64)
                total += (x * w).sum(dim=(0, 1))
                total_sq += (x * x * w).sum(dim=(0, 1))
                count += int(w.sum())
            mu = total / max(count, 1)
            var = (total_sq / max(count, 1) - mu * mu).clamp_min(0.0)
            sd = var.sqrt()
            mean[name] = mu.float()
            std[name] = torch.where(sd > 1e-6, sd, torch.ones_like(sd)).float()
        return cls(mean, std)

    def state(self) -> dict[str, torch.Tensor]:
        return {**{f"{n}.mean": v for n, v in self.mean.items()},
                **{f"{n}.std": v for n, v in self.std.items()}}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "Normalizer":
        names = {k.rsplit(".", 1)[0] for k in state}
        return cls({n: state[f"{n}.mean"] for n in names}, {n: state[f"{n}.std"] for n in names})


def make_batch(data: FusionData, norm: Normalizer, rows: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Standardised features and masks of `rows`; padded steps and missing clips are 0.
    One gather (index_select) and one fused in-place affine pass per feature: this is
    the whole per-batch data cost of training."""
    x, masks = {}, {}
    for name, b in data.blocks.items():
        m = torch.index_select(b.mask, 0, rows)
        v = torch.index_select(b.data, 0, rows)
        inv = 1.0 / norm.std[name]
        torch.addcmul(-norm.mean[name] * inv, v, inv, out=v)
        if not b.complete:
            v.mul_((m & b.present[rows, None]).unsqueeze(-1))
        x[name] = v
        masks[name] = m
    return x, masks
