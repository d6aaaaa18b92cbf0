"""Shared by the benchmark scripts: random-initialised checkpoints in the official layouts.

Every spec writes its own (FeatureSpec.make_random_weights), so no script needs a per-feature branch.
"""
from __future__ import annotations

import os
from pathlib import Path

from extract.specs import FeatureSpec


def random_weights(root: Path, specs: list[FeatureSpec], config: dict | None = None) -> dict[str, Path]:
    """Random checkpoints for every weights entry of `specs` under root/<entry>/ -> {entry: path}.
    Specs without a random stand-in (real model files such as BlazeFace) are left to the resolver."""
    from extract.weights import resolve

    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    previous = os.environ.get("ERI_WEIGHTS_DIR")
    os.environ["ERI_WEIGHTS_DIR"] = str(root)
    try:
        for spec in specs:
            if spec.random_weights is None:
                continue
            entries = spec.weights_entries(config)
            if not all((root / e).is_dir() for e in entries):
                spec.make_random_weights(root, config)
            paths.update({e: Path(resolve(e).path) for e in entries})
    finally:
        if previous is None:
            os.environ.pop("ERI_WEIGHTS_DIR", None)
        else:
            os.environ["ERI_WEIGHTS_DIR"] = previous
    return paths
