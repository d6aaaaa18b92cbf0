"""`eri-fit --resume`: training state on disk, one file per model, replaced atomically after
every epoch (a crash leaves the previous epoch's file whole), loaded with
`torch.load(weights_only=True)` (tensors, numbers, strings and containers only: nothing in
it can run code); and the run directory's record of what it was started with."""
from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feature_store.fsutil import atomic_write_bytes

RESUME_FILE = "resume.pt"


def save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable file gets the same clear message
        raise ValueError(f"{path}: cannot read the saved training state ({exc}); "
                         f"delete it to restart this model from scratch") from exc


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch global RNG states in weights_only-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)}}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class ResumeInputs:
    config: dict[str, Any]          # config.yaml, features pinned to their fingerprints
    store: Path
    labels: Path
    partition: Path | None
    threads: int


def read_resume_inputs(run_dir: Path, store: Path | None = None, labels: Path | None = None,
                       partition: Path | None = None) -> ResumeInputs:
    """What an interrupted run was started with; `store`/`labels`/`partition` override paths
    that have moved."""
    import yaml
    run_dir = Path(run_dir)
    needed = [run_dir / "config.yaml", run_dir / "features.json", run_dir / "inputs.json"]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir}: cannot resume, {', '.join(missing)} missing (the run stopped "
                                f"before training began, or this is not an eri-fit run directory); "
                                f"start it again without --resume")
    config = yaml.safe_load(needed[0].read_text()) or {}
    features = json.loads(needed[1].read_text())
    inputs = json.loads(needed[2].read_text())
    config["features"] = [f["ref"] for f in features.values()]  # the same fingerprints
    part = partition or (Path(inputs["partition"]) if inputs.get("partition") else None)
    return ResumeInputs(config, Path(store or inputs["store"]), Path(labels or inputs["labels"]), part,
                        int(inputs.get("threads") or 0))
