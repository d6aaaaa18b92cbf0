"""Running a .tflite model with the LiteRT interpreter (package `ai-edge-litert`).

mediapipe >= 1.0 ships no model files and no `solutions` graphs, and its Tasks API refuses the
0.10.21 landmark models (they lack the normalisation metadata the tasks require, and the pose /
face landmarker tasks want .task bundles), so the landmark extractors run the models themselves:
image → tensor (extract.roi) → this interpreter → our own decoding.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """LiteRT's C++ runtime writes INFO lines to fd 2 when the first interpreter of a process starts
    (no env var turns them off); hide them so progress bars and errors stay readable (-v shows them)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteModel:
    """One interpreter; `run(x)` feeds a float32 batch-of-1 tensor and returns every output by name.
    threads=None: the worker's share of the cores ($OMP_NUM_THREADS, which eri-extract sets for its
    workers), so that interpreters in several worker processes do not oversubscribe the machine."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ImportError("the landmark models need the LiteRT interpreter: pip install ai-edge-litert") from exc
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            with native_stderr_silenced():
                self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{path}: cannot be run by the LiteRT interpreter: {exc}") from exc
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()
        self.path = path

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._input["shape"])

    @property
    def output_names(self) -> list[str]:
        return [d["name"] for d in self._outputs]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(x, np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"{self.path.name}: input shape {x.shape}, expected {self.input_shape}")
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        return {d["name"]: self._interpreter.get_tensor(d["index"]).copy() for d in self._outputs}
