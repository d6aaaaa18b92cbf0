"""Feature specs: the one declaration of every feature the pipeline can extract.

A spec says what a feature is (name, modality, dim, frame step, input it needs,
weights entry, default config) and how to build its extractor. Pipelines read
specs to plan work and fingerprint results; the CLI's choices come from here.
Modules that define a spec must keep heavy imports (transformers, opensmile,
mediapipe, librosa) inside functions so that listing features stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import numpy as np

Modality = Literal["video", "audio"]
InputKind = Literal["frames", "faces", "audio"]


@dataclass
class FeatureOutput:
    """One clip's result: data (T, dim) float32 (uint8 (T,S,S,3) for `faces`),
    times (T,) in seconds, optional extra per-frame arrays stored beside `data`
    (e.g. class probabilities) and per-clip QA values (stored as attributes)."""

    data: np.ndarray
    times: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    qa: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildOptions:
    """What the pipeline hands a spec's factory."""

    config: dict[str, Any]
    device: str = "cpu"
    batch_size: int = 64
    weights_path: str | None = None  # resolved by extract.weights; None if spec.weights is None


class VideoExtractor(Protocol):
    def run(self, crops: list[np.ndarray], times: list[np.ndarray]) -> list[FeatureOutput]:
        """crops[i]: uint8 (N_i, S, S, 3) RGB face crops of clip i; frames of all clips
        are batched together internally; output i has N_i rows and times[i]."""


class AudioExtractor(Protocol):
    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        """waves[i]: float32 mono samples of clip i at sample_rate (16 kHz)."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    modality: Modality
    version: str
    dim: int
    frame_step: float | None  # seconds between rows; None = rows follow the sampled frames / one per clip
    input: InputKind
    build: Callable[[BuildOptions], Any]
    description: str
    weights: str | None = None
    default_config: dict[str, Any] = field(default_factory=dict)
    input_size: int | None = None  # face crop side the backbone consumes (it resizes the cached crops)
    dtype: str = "float32"
    extras: dict[str, int] = field(default_factory=dict)  # extra output name -> dim
    clip_level: bool = False  # one row per clip (T = 1)
    weights_selector: Callable[[dict[str, Any]], str | None] | None = None  # entry depends on config

    def weights_entry(self, config: dict[str, Any]) -> str | None:
        """The weights entry this config needs (e.g. the full-range face detector)."""
        return self.weights_selector(config) if self.weights_selector else self.weights

    def config_with(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        unknown = set(overrides or {}) - set(self.default_config)
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)}; "
                             f"known: {sorted(self.default_config)}")
        return {**self.default_config, **(overrides or {})}


class SpecRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, FeatureSpec] = {}

    def register(self, spec: FeatureSpec) -> FeatureSpec:
        if spec.name in self._specs:
            raise ValueError(f"feature {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> FeatureSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}; known: {', '.join(sorted(self._specs))}") from None

    def names(self, modality: str | None = None) -> list[str]:
        return [n for n, s in self._specs.items() if modality in (None, "all", s.modality)]

    def __iter__(self):
        return iter(self._specs.values())

    def __contains__(self, name: str) -> bool:
        return name in self._specs
