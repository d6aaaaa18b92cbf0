"""Head registry: every head is a FusionHead subclass registered once by name.

A head is built from the streams it will see (name -> dim, steps, modality) and an
options dataclass; it maps ``{feature: (B, T, D)}`` plus masks ``{feature: (B, T) bool}``
(True = a real step) to logits (B, 7); ``forward`` returns sigmoid(logits) in [0, 1].
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

N_OUT = 7


@dataclass(frozen=True)
class StreamInfo:
    dim: int
    steps: int
    modality: str = "video"   # "audio" or "video"


class FusionHead(nn.Module):
    def __init__(self, streams: dict[str, StreamInfo], cfg: Any) -> None:
        super().__init__()
        if not streams:
            raise ValueError("a head needs at least one feature stream")
        self.streams = dict(streams)
        self.names = list(streams)
        self.cfg = cfg

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.logits(x, masks))


@dataclass(frozen=True)
class HeadSpec:
    name: str
    cls: type[FusionHead]
    options: type                      # dataclass of architecture options with defaults
    summary: str                       # one line for `eri-fit --list-heads`
    train_defaults: dict[str, Any] = field(default_factory=dict)  # the paper's training recipe

    def make_options(self, overrides: dict[str, Any] | None = None) -> Any:
        known = {f.name: f for f in dataclasses.fields(self.options)}
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"head {self.name!r}: unknown option(s) {unknown}; known: {sorted(known)}")
        defaults = self.options()
        typed = {k: _coerce(v, type(getattr(defaults, k))) for k, v in overrides.items()}
        return dataclasses.replace(defaults, **typed)

    def defaults(self) -> dict[str, Any]:
        return dataclasses.asdict(self.options())


def _coerce(value: Any, kind: type) -> Any:
    """Options arrive as strings from the CLI (`--head-opt d_model=64`)."""
    if not isinstance(value, str) or kind is str:
        return value
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return kind(value)


_HEADS: dict[str, HeadSpec] = {}


def register_head(spec: HeadSpec) -> HeadSpec:
    if spec.name in _HEADS:
        raise ValueError(f"head {spec.name!r} registered twice")
    _HEADS[spec.name] = spec
    return spec


def get_head(name: str) -> HeadSpec:
    if name not in _HEADS:
        raise ValueError(f"unknown head {name!r}; known: {', '.join(sorted(_HEADS))}")
    return _HEADS[name]


def list_heads() -> list[HeadSpec]:
    return [_HEADS[k] for k in sorted(_HEADS)]


def build_head(name: str, streams: dict[str, StreamInfo],
               options: dict[str, Any] | None = None) -> FusionHead:
    spec = get_head(name)
    return spec.cls(streams, spec.make_options(options))
