"""Features for training: loaded once from the store, fixed length, normalised per batch.

Every requested feature (``name`` or ``name@fp``) is read with ``reader.load_all`` in chunks
of clips, written straight into one preallocated (N, T, D) tensor — or (N, T, K, D) for a
token-set feature (K tokens of width D per step, e.g. a CNN's feature map) — plus a mask;
batches are plain tensor indexing (no HDF5 reads during training). A feature stored as
float16 stays float16 in memory (half of float32: 16,000 clips of (32, 49, 256) take
12 GiB instead of 24) and is widened per batch in ``make_batch``. Standardisation
statistics (per channel D, over steps and tokens) are fitted on the training rows only
(``Normalizer.fit``, in chunks, never a float64 copy of the set) and applied per batch, so
folds share one copy of the data.

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
from fusion.lengths import POLICIES, fit_into

log = logging.getLogger(__name__)
MISSING_POLICIES = ("error", "drop", "zeros")
_AUDIO_HINTS = ("audio", "wav2vec", "vggish", "egemaps", "mfcc", "deepspectrum", "compare",
                "opensmile", "hubert", "whisper", "speech", "voice")
_AUDIO_TOKENS = frozenset({"ds", "w2v", "mel", "fbank", "synth_audio"})
MAX_LISTED = 20
READ_CHUNK = 64           # clips read from the store at a time while loading
STAT_CHUNK = 1 << 21      # float64 values converted at a time while fitting the normaliser


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
    data: torch.Tensor      # (N, T, D) or (N, T, K, D); float32, or float16 as stored (not standardised)
    mask: torch.Tensor      # (N, T) bool, True = real step
    present: torch.Tensor   # (N,) bool, False = zero-filled missing clip

    def __post_init__(self) -> None:
        # no padding and no zero-filled clip: batches need no masking pass
        self.complete = bool(self.mask.all()) and bool(self.present.all())

    @property
    def dim(self) -> int:
        return int(self.data.shape[-1])

    @property
    def tokens(self) -> int:
        """Tokens per step of a token-set feature; 0 for a vector per step."""
        return int(self.data.shape[2]) if self.data.ndim == 4 else 0

    def describe(self) -> dict:
        out = {"fingerprint": self.fingerprint, "ref": f"{self.name}@{self.fingerprint}",
               "dim": self.dim, "steps": self.steps, "length": self.length,
               "modality": self.modality}
        if self.tokens:
            out["tokens"] = self.tokens
        return out


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
        return {n: StreamInfo(b.dim, b.steps, b.modality, b.tokens) for n, b in self.blocks.items()}


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
        blocks[name] = _load_block(name, reader, ids, policy)
        reader.close()
        b = blocks[name]
        log.info("loaded %s@%s: %d clips, %d steps (%s), %s%d, %s, %s in memory", name, reader.fingerprint,
                 int(b.present.sum()), b.steps, b.length, f"{b.tokens} tokens x " if b.tokens else "dim ",
                 b.dim, b.modality, str(b.data.dtype).replace("torch.", ""))
    return FusionData(list(ids), blocks, dropped, zero_filled)


def _item_layout(name: str, reader, have: list[str]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(row shape, clip-level?, in-memory dtype) of a feature, from the stored items' metadata."""
    rows, lengths, dtypes = set(), set(), set()
    for cid in have:
        item = reader.item(cid)
        rows.add(item.shape[1:])
        lengths.add(item.shape[0])
        dtypes.add(np.dtype(item.dtype))
    if len(rows) != 1 or any(len(r) not in (1, 2) for r in rows):
        raise FusionDataError(f"{name}@{reader.fingerprint}: expected (T, dim) vectors or (T, tokens, dim) token "
                              f"sets of one shape per step, got per-step shapes {sorted(rows)}")
    keep = np.dtype(np.float16) if dtypes == {np.dtype(np.float16)} else np.dtype(np.float32)
    return rows.pop(), lengths == {1}, keep


def _load_block(name: str, reader, ids: list[str], policy: DataPolicy) -> FeatureBlock:
    """One feature for `ids` into a preallocated fixed-length array, READ_CHUNK clips at a time
    (peak memory = the array + one chunk, not a second copy of the whole set)."""
    pos = {c: i for i, c in enumerate(ids)}
    have = [c for c in ids if c in reader]
    row, clip_level, keep = _item_layout(name, reader, have)
    steps, length = policy.steps_for(name, clip_level), policy.length_for(name)
    data = np.zeros((len(ids), steps, *row), keep)
    mask = np.ones((len(ids), steps), bool)
    for start in range(0, len(have), READ_CHUNK):
        chunk = have[start:start + READ_CHUNK]
        for cid, x in zip(chunk, reader.load_all(chunk, dtype=keep)):
            fit_into(data[pos[cid]], mask[pos[cid]], x, length)
    present = np.zeros(len(ids), bool)
    present[[pos[c] for c in have]] = True
    return FeatureBlock(name, reader.fingerprint, guess_modality(name, reader.spec, policy.modalities),
                        length, steps, torch.from_numpy(data), torch.from_numpy(mask), torch.from_numpy(present))


@dataclass
class Normalizer:
    """Per-feature, per-channel mean/std (fitted on training rows, real steps only; for a token
    set over its steps and tokens alike: statistics of D)."""
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
            per_step = max(b.tokens, 1)
            axes = tuple(range(b.data.ndim - 1))
            for chunk in rows.split(max(1, STAT_CHUNK // (b.data[0].numel()))):
                w = (b.mask[chunk] & b.present[chunk, None]).to(torch.float64)
                w = w.view(*w.shape, *[1] * (b.data.ndim - 2))
                x = b.data[chunk].to(torch.float64)
                total += (x * w).sum(dim=axes)
                total_sq += (x * x * w).sum(dim=axes)
                count += int(w.sum()) * per_step
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
    """Standardised float32 features and masks of `rows`; padded steps and missing clips are 0.
    One gather (index_select; a float16 feature is widened here, batch by batch) and one fused
    in-place affine pass per feature: this is the whole per-batch data cost of training."""
    x, masks = {}, {}
    for name, b in data.blocks.items():
        m = torch.index_select(b.mask, 0, rows)
        v = torch.index_select(b.data, 0, rows)
        if v.dtype != torch.float32:
            v = v.float()
        inv = 1.0 / norm.std[name]
        torch.addcmul(-norm.mean[name] * inv, v, inv, out=v)
        if not b.complete:
            keep = m & b.present[rows, None]
            v.mul_(keep.view(*keep.shape, *[1] * (v.ndim - 2)))
        x[name] = v
        masks[name] = m
    return x, masks
