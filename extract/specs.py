"""Feature specs: the one declaration of every feature the pipeline can extract.

A spec says what a feature is (name, modality, input it needs, version), which options it takes
(a config dataclass: its defaults are the default config, its `__post_init__` validates), what its
output looks like for a given config (`shape(config, weights) -> OutputShape`: row shape, frame
step, extras — so `--set mfcc.n_mfcc=40` changes the declared dim, as lhotse's extractors derive
`feature_dim()` from their config), which weights entries change its numbers (all of them go into
the fingerprint), how to make random-initialised checkpoints in those entries' layouts (so tests
and benchmarks can iterate the registry with no per-name branch), and how to build its extractor.

Input kinds: `audio` (16 kHz mono), `faces` (the cached crops of the `faces` feature) and `frames`
(decoded frames: the run's sampling, `--fps` etc., unless the config has a `sampling` property of
its own, as `pose` has; the pipeline decodes each clip once for every frames feature).

Pipelines read specs to plan work and fingerprint results; the CLI's choices come from here.
Modules that define a spec must keep heavy imports (torch, transformers, opensmile, mediapipe,
librosa) inside functions so that listing features stays fast.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol

import numpy as np

STORAGE_DTYPES = ("float32", "float16")
STORAGE_OPTION = "dtype"  # `--set NAME.dtype=float16`: understood for every float feature, not a config field
Modality = Literal["video", "audio"]
InputKind = Literal["frames", "faces", "audio"]


@dataclass
class FeatureOutput:
    """One clip's result: data (T, *row) (float32, or uint8 (T, S, S, 3) for `faces`),
    times (T,) in seconds, optional extra per-row arrays stored beside `data`
    (e.g. class probabilities) and per-clip QA values (stored as attributes)."""

    data: np.ndarray
    times: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    qa: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputShape:
    """What one clip's output looks like under a given config.

    row:        shape of one row: (dim,) for vectors, (N, D) for token sets, (S, S, 3) for images
    frame_step: seconds between rows; None = one row per sampled frame (or per clip, if clip_level)
    extras:     extra per-row arrays, name -> width
    dtype:      storage dtype of `data`
    """

    row: tuple[int, ...]
    frame_step: float | None = None
    extras: Mapping[str, int] = field(default_factory=dict)
    dtype: str = "float32"

    @property
    def dim(self) -> int:
        """Width of the last axis of a row (the vector width; D of a token set)."""
        return int(self.row[-1])

    def stored_as(self, dtype: str | None) -> "OutputShape":
        """This shape with another storage dtype for float data (`--set NAME.dtype=float16` halves the
        disk; readers widen float16 back to float32). ValueError for other dtypes or non-float data."""
        if dtype is None or dtype == self.dtype:
            return self
        if np.dtype(self.dtype).kind != "f" or dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage dtype {dtype!r}: float features can be stored as "
                             f"{' or '.join(STORAGE_DTYPES)}; this one is stored as {self.dtype}")
        return dataclasses.replace(self, dtype=dtype)

    def as_spec(self) -> dict[str, Any]:
        """The keys spec.json records (and the store's layout checks)."""
        return {"dim": self.dim, "item_shape": [int(s) for s in self.row], "frame_step": self.frame_step,
                "extras": dict(self.extras), "dtype": self.dtype}


@dataclass(frozen=True)
class BuildOptions:
    """What the pipeline hands a spec's factory."""

    config: dict[str, Any]
    device: str = "cpu"
    batch_size: int = 64
    weights_path: str | None = None  # the spec's first weights entry, resolved by extract.weights
    weights: Mapping[str, str] = field(default_factory=dict)  # every entry the config needs -> path


class VideoExtractor(Protocol):
    def run(self, crops: list[np.ndarray], times: list[np.ndarray]) -> list[FeatureOutput]:
        """crops[i]: uint8 (N_i, S, S, 3) RGB face crops of clip i; frames of all clips
        are batched together internally; output i has N_i rows and times[i]."""


class AudioExtractor(Protocol):
    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        """waves[i]: float32 mono samples of clip i at sample_rate (16 kHz)."""


@dataclass(frozen=True)
class NoOptions:
    """Config of a feature that takes no options."""


ShapeFn = Callable[[Any, Mapping[str, str]], OutputShape]
WeightsSpec = str | Callable[[Any], tuple[str, ...]] | None
RandomWeightsFn = Callable[[Path, Any], None]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    modality: Modality
    version: str
    input: InputKind
    build: Callable[[BuildOptions], Any]
    description: str
    shape: ShapeFn  # (config dataclass, {weights entry: path}) -> OutputShape
    config: type = NoOptions  # a dataclass: defaults = the default config, __post_init__ validates
    weights: WeightsSpec = None  # an entry name, or config -> the entries that change the numbers
    random_weights: RandomWeightsFn | None = None  # (root, config): random checkpoints in root/<entry>/
    clip_level: bool = False  # one row per clip (T = 1)
    examples: tuple[dict[str, Any], ...] = ()  # non-default configs worth testing (shape, step, weights)

    @property
    def requires(self) -> tuple[str, ...]:
        """Features this one reads from the store (a backbone on face crops reads `faces`)."""
        return ("faces",) if self.input == "faces" else ()

    def resolve_config(self, overrides: Mapping[str, Any] | Any | None = None) -> Any:
        """The config dataclass with `overrides` applied and validated (ValueError naming the feature)."""
        if dataclasses.is_dataclass(overrides) and not isinstance(overrides, type):
            return overrides
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {unknown}; known: {sorted(known) or 'none'}")
        hints = typing.get_type_hints(self.config)
        values = {k: _coerce(v, hints.get(k)) for k, v in (overrides or {}).items()}
        try:
            return self.config(**values)
        except (TypeError, ValueError) as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(self.name) else f"{self.name}: {message}") from None

    def config_with(self, overrides: Mapping[str, Any] | Any | None = None) -> dict[str, Any]:
        """The resolved config as a plain dict (what travels to workers and into fingerprints)."""
        return dataclasses.asdict(self.resolve_config(overrides))

    @property
    def default_config(self) -> dict[str, Any]:
        return self.config_with()

    def weights_entries(self, config: Mapping[str, Any] | Any | None = None) -> tuple[str, ...]:
        """Every weights entry this config needs, the main network's first."""
        if self.weights is None:
            return ()
        if isinstance(self.weights, str):
            return (self.weights,)
        return tuple(self.weights(self.resolve_config(config)))

    def output_shape(self, config: Mapping[str, Any] | Any | None = None,
                     weights: Mapping[str, str] | None = None) -> OutputShape:
        """What the output looks like under `config` (and, where the checkpoint decides a width,
        these resolved weights)."""
        return self.shape(self.resolve_config(config), dict(weights or {}))

    def make_random_weights(self, root: Path, config: Mapping[str, Any] | Any | None = None) -> None:
        """Write random-initialised checkpoints for every entry of `config` under root/<entry>/."""
        if self.random_weights is None:
            if self.weights_entries(config):
                raise NotImplementedError(f"{self.name}: no random-checkpoint maker")
            return
        self.random_weights(Path(root), self.resolve_config(config))


def _coerce(value: Any, hint: Any) -> Any:
    """YAML-parsed `--set` values to the field's type where that is lossless (1 -> 1.0 for floats),
    so that equal settings give equal fingerprints."""
    kinds = set(typing.get_args(hint)) or {hint}
    if isinstance(value, bool):
        return value
    if float in kinds and int not in kinds and isinstance(value, int):
        return float(value)
    if int in kinds and float not in kinds and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list) and (tuple in kinds or typing.get_origin(hint) is tuple):
        return tuple(value)
    return value


def fixed_shape(dim: int, frame_step: float | None = None, extras: Mapping[str, int] | None = None) -> ShapeFn:
    """A shape function for features whose output does not depend on their config."""
    shape = OutputShape((int(dim),), frame_step, dict(extras or {}))
    return lambda config, weights: shape


class SpecRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, FeatureSpec] = {}

    def register(self, spec: FeatureSpec) -> FeatureSpec:
        if spec.name in self._specs:
            raise ValueError(f"feature {spec.name!r} is registered twice")
        if not dataclasses.is_dataclass(spec.config):
            raise TypeError(f"feature {spec.name!r}: config must be a dataclass, got {spec.config!r}")
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
