"""`egemaps` / `egemaps_lld`: openSMILE eGeMAPSv02 features (opensmile Python package).

- `egemaps` (default): the 88 functionals over 1 s windows every 0.5 s. The low-level
  descriptors are computed once over the whole clip and openSMILE's own functionals run in
  `frameMode = fixed` on that stream (an include file passed as the `frameModeFunctionalsConf`
  option), so windows have no edge effects and a clip costs one openSMILE run. Window g
  summarises LLD frames g·hop/10 ms … (g·hop + window)/10 ms − 1. openSMILE emits LLD frame k
  once 50 ms + k·10 ms of audio exist, so a clip of d seconds gets 1 + ⌊(d − window − 0.04 s)/hop⌋
  rows. A clip too short for one window gets one row of functionals over the whole clip.
  Row time = window start.
  Cutting the audio into 1 s segments and running each alone gives different values
  (pitch and smoothing restart at every cut) and is ~2.5× slower.
- `egemaps_lld`: the 25 low-level descriptors every 10 ms (20/60 ms frames), 1 + ⌊(d − 0.05 s)/0.01⌋
  rows; row time = frame start.

A clip too short for openSMILE to produce finite values gives 0 rows.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extract.audio.windows import SAMPLE_RATE, check_waves
from extract.specs import BuildOptions, FeatureOutput, FeatureSpec, OutputShape, fixed_shape

log = logging.getLogger(__name__)
FUNCTIONALS_DIM, LLD_DIM, LLD_STEP = 88, 25, 0.01


@dataclass(frozen=True)
class FunctionalsConfig:
    window_seconds: float = 1.0
    hop_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError(f"egemaps: need 0 < hop_seconds ({self.hop_seconds}) <= "
                             f"window_seconds ({self.window_seconds})")


def frame_mode_include(window: float, hop: float) -> Path:
    """An openSMILE include that makes every cFunctionals component work on fixed windows."""
    path = Path(tempfile.gettempdir()) / "eri-opensmile" / f"frame_mode_fixed_{window:g}_{hop:g}.conf.inc"
    text = f"frameMode = fixed\nframeSize = {window:g}\nframeStep = {hop:g}\nframeCenterSpecial = left\n"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


def to_opensmile_range(wave: np.ndarray) -> np.ndarray:
    # opensmile converts with int16(x * 32768), which wraps around for |x| ≥ 1
    return np.clip(wave, -1.0, 32767 / 32768).astype(np.float32)


class EgemapsExtractor:
    def __init__(self, level: str, config: FunctionalsConfig | None = None) -> None:
        import opensmile

        self.level, self.config = level, config
        feature_set = opensmile.FeatureSet.eGeMAPSv02
        if level == "lld":
            self._smile = opensmile.Smile(feature_set, opensmile.FeatureLevel.LowLevelDescriptors)
            self._whole = None
        else:
            window, hop = float(config.window_seconds), float(config.hop_seconds)
            include = frame_mode_include(window, hop)
            self._smile = opensmile.Smile(feature_set, opensmile.FeatureLevel.Functionals,
                                          options={"frameModeFunctionalsConf": str(include)})
            self._whole = opensmile.Smile(feature_set, opensmile.FeatureLevel.Functionals)
        self.dim = len(self._smile.feature_names)

    def _process(self, smile, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Segment too short")
            frame = smile.process_signal(to_opensmile_range(wave), SAMPLE_RATE)
        data = frame.to_numpy(dtype=np.float32)
        times = frame.index.get_level_values("start").total_seconds().to_numpy(dtype=np.float64)
        return data, times

    def extract(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data, times = self._process(self._smile, wave)
        if self._whole is not None and not np.isfinite(data).all():
            data, times = self._process(self._whole, wave)  # shorter than one window
        if not np.isfinite(data).all():
            log.debug("egemaps: %d samples are too short for openSMILE", wave.size)
            return np.zeros((0, self.dim), np.float32), np.zeros(0)
        return data, times

    def run(self, waves: list[np.ndarray], sample_rate: int) -> list[FeatureOutput]:
        name = "egemaps_lld" if self.level == "lld" else "egemaps"
        outputs = []
        for wave in check_waves(waves, sample_rate, name):
            data, times = self.extract(wave) if wave.size else (np.zeros((0, self.dim), np.float32), np.zeros(0))
            outputs.append(FeatureOutput(data=data, times=times))
        return outputs


def build_functionals(options: BuildOptions) -> EgemapsExtractor:
    return EgemapsExtractor("functionals", SPEC_FUNCTIONALS.resolve_config(options.config))


def build_lld(options: BuildOptions) -> EgemapsExtractor:
    SPEC_LLD.resolve_config(options.config)  # rejects options: the LLD take none
    return EgemapsExtractor("lld")


SPEC_FUNCTIONALS = FeatureSpec(
    name="egemaps",
    modality="audio",
    version="1",
    input="audio",
    build=build_functionals,
    shape=lambda config, weights: OutputShape((FUNCTIONALS_DIM,), config.hop_seconds),
    config=FunctionalsConfig,
    examples=({"window_seconds": 0.5, "hop_seconds": 0.25},),
    description="openSMILE eGeMAPSv02 functionals (88-d) over 1 s windows every 0.5 s (window_seconds, hop_seconds)",
)

SPEC_LLD = FeatureSpec(
    name="egemaps_lld",
    modality="audio",
    version="1",
    input="audio",
    build=build_lld,
    shape=fixed_shape(LLD_DIM, LLD_STEP),
    description="openSMILE eGeMAPSv02 low-level descriptors (25-d) every 10 ms",
)

SPECS = (SPEC_FUNCTIONALS, SPEC_LLD)
