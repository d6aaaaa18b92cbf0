"""Head registry: every head is a FusionHead subclass registered once by name.

A head is built from the streams it will see (name -> dim, steps, modality) and an
options dataclass; it maps ``{feature: (B, T, ...)}`` plus masks ``{feature: (B, T) bool}``
(True = a real step) to logits (B, 7); ``forward`` returns sigmoid(logits) in [0, 1].

Every stream first passes its *frontend* (``FusionHead.frontend[name]``), which maps the
stream's items to (B, T, D) vectors of width ``FusionHead.dims[name]``; heads build on
those widths and call ``self.inputs(x)``, never on the raw item shape. A vector stream's
frontend is the identity; a token-set stream (``StreamInfo.tokens`` > 0, items (K, D))
gets the head's ``token_frontend`` (fusion/heads/frontends.py: the spatial encoder, or the
mean over tokens) without any head changing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fusion.heads.frontends import token_frontend

N_OUT = 7


@dataclass(frozen=True)
class StreamInfo:
    dim: int
    steps: int
    modality: str = "video"   # "audio" or "video"
    tokens: int = 0           # K > 0: each step is a token set (K, dim); 0: a vector (dim,)


class FusionHead(nn.Module):
    # what a token-set stream goes through: "spatial" (learnt SpatialEncoder), "mean" (mean
    # over tokens), or None (the head refuses token sets)
    token_frontend: str | None = "spatial"

    def __init__(self, streams: dict[str, StreamInfo], cfg: Any) -> None:
        super().__init__()
        if not streams:
            raise ValueError("a head needs at least one feature stream")
        self.streams = dict(streams)
        self.names = list(streams)
        self.cfg = cfg
        built = {n: self.make_frontend(n, s) for n, s in streams.items()}
        self.frontend = nn.ModuleDict({n: m for n, (m, _) in built.items()})
        self.dims = {n: d for n, (_, d) in built.items()}

    def make_frontend(self, name: str, info: StreamInfo) -> tuple[nn.Module, int]:
        """The module that maps one stream's items to (B, T, D), and D."""
        if not info.tokens:
            return nn.Identity(), info.dim
        head = next((k for k, spec in _HEADS.items() if spec.cls is type(self)), type(self).__name__)
        return token_frontend(self.token_frontend, head, name, info.dim, info.tokens, self.cfg)

    def inputs(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each stream through its frontend: {name: (B, T, dims[name])}."""
        return {n: self.frontend[n](x[n]) for n in self.names}

    def logits(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def outputs(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(regression logits, class logits) for training; a head with a separate
        classification layer returns its own class logits, others the same logits twice."""
        logits = self.logits(x, masks)
        return logits, logits

    def forward(self, x: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.logits(x, masks))


@dataclass(frozen=True)
class HeadSpec:
    name: str
    cls: type[FusionHead]
    options: type                      # dataclass of architecture options with defaults
    summary: str                       # one line for `eri-fit --list-heads`
    # training settings (FitConfig fields) measured to suit this head; a paper's own
    # settings are a named Recipe instead
    train_defaults: dict[str, Any] = field(default_factory=dict)
    paper: str = ""                    # the publication the structure follows ("" = ours)
    closed_form: bool = False          # fitted by `fit_closed_form`, not by gradient steps
    # what `eri-fit --search` varies as "hidden size" and "dropout" for this head
    size_option: str = ""
    dropout_options: tuple[str, ...] = ()

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


# The training that suits the gradient-trained heads on CPU (AdamW, cosine decay after a
# one-epoch warm-up, batch 64; measured in benchmarks/bench_fusion_quality.py): each head's
# train_defaults start from it and set their own learning rate and epochs.
FAST_TRAINING: dict[str, Any] = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "schedule": "cosine",
                                 "warmup_epochs": 1, "batch_size": 64}


def measured_training(**changes: Any) -> dict[str, Any]:
    return {**FAST_TRAINING, **changes}


@dataclass(frozen=True)
class Recipe:
    """A named set of training settings (and head options), e.g. a paper's; applied with
    `eri-fit --recipe NAME` over the head's defaults and under --config and flags."""
    name: str
    head: str
    source: str                        # where the settings come from
    settings: dict[str, Any]           # FitConfig fields
    head_options: dict[str, Any] = field(default_factory=dict)
    notes: str = ""                    # what it does not reproduce, and why


_HEADS: dict[str, HeadSpec] = {}
_RECIPES: dict[str, Recipe] = {}


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


def register_recipe(recipe: Recipe) -> Recipe:
    if recipe.name in _RECIPES:
        raise ValueError(f"recipe {recipe.name!r} registered twice")
    get_head(recipe.head).make_options(recipe.head_options)  # fails early on a bad option
    _RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    if name not in _RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(_RECIPES))}")
    return _RECIPES[name]


def list_recipes(head: str | None = None) -> list[Recipe]:
    return [r for k, r in sorted(_RECIPES.items()) if head is None or r.head == head]


def build_head(name: str, streams: dict[str, StreamInfo],
               options: dict[str, Any] | None = None) -> FusionHead:
    spec = get_head(name)
    return spec.cls(streams, spec.make_options(options))
