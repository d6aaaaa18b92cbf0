"""Where weights live: $ERI_WEIGHTS_DIR/<name>/ (user-managed) and $ERI_CACHE_DIR/weights/<name>/.

Environment variables are read at call time, so tests can point them at temporary directories.
"""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_ENV = "ERI_WEIGHTS_DIR"
CACHE_ENV = "ERI_CACHE_DIR"


def cache_root() -> Path:
    """$ERI_CACHE_DIR, default ~/.cache/eri."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "eri"


def cache_dir(name: str) -> Path:
    """Directory that `eri-weights fetch/import` fill for one entry."""
    return cache_root() / "weights" / name


def user_weights_dir(name: str) -> Path | None:
    """$ERI_WEIGHTS_DIR/<name>, or None when the variable is unset."""
    value = os.environ.get(WEIGHTS_ENV)
    return Path(value).expanduser() / name if value else None
