"""Safe state-dict loading (`load_state_dict`) and the tensor/non-tensor split shared with import.

Only safetensors or `torch.load(weights_only=True)` at run time; checkpoints that pickle other
objects go through `eri-weights import` once (restricted unpickler) and are stored as safetensors.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from extract.weights.manifest import atomic_write
from extract.weights.registry import HF_WEIGHT_FILES
from extract.weights.safe_pickle import NumpyArray, Placeholder

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass
class TensorSplit:
    tensors: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)  # "key: what it was", wrappers' siblings included
    non_tensor_items: list[str] = field(default_factory=list)  # inside the state dict itself


def describe(value: Any) -> str:
    if isinstance(value, Placeholder):
        return f"{value.global_name} placeholder"
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, Mapping):
        return f"{type(value).__name__} with {len(value)} items"
    if isinstance(value, (list, tuple, set)):
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, NumpyArray) and value.array is not None:
        return torch.from_numpy(value.array)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return torch.from_numpy(np.ascontiguousarray(value))
    return None


def _module_state(obj: Placeholder) -> dict[str, Any] | None:
    """Parameters and buffers of a pickled whole nn.Module (its state was kept as inert data)."""
    state = obj._eri_state
    if not isinstance(state, Mapping) or "_parameters" not in state:
        return None
    out: dict[str, Any] = {}
    for group in ("_parameters", "_buffers"):
        members = state.get(group)
        for key, value in (members.items() if isinstance(members, Mapping) else ()):
            if value is not None:
                out[key] = value
    children = state.get("_modules")
    for child_name, child in (children.items() if isinstance(children, Mapping) else ()):
        sub = _module_state(child) if isinstance(child, Placeholder) else None
        for key, value in (sub or {}).items():
            out[f"{child_name}.{key}"] = value
    return out


def split_tensors(obj: Any) -> TensorSplit:
    """Unwrap {'state_dict'|'model_state_dict'|'model': ...}, keep tensors, strip a common 'module.'."""
    dropped: list[str] = []
    if isinstance(obj, Placeholder):
        obj = _module_state(obj) or obj
    while isinstance(obj, Mapping):
        key = next((k for k in WRAPPER_KEYS if isinstance(_unwrap_module(obj.get(k)), Mapping)), None)
        if key is None:
            break
        dropped += [f"{k}: {describe(v)}" for k, v in obj.items() if k != key]
        obj = _unwrap_module(obj[key])
    if not isinstance(obj, Mapping):
        return TensorSplit({}, dropped + [f"<top level>: {describe(obj)}"])
    tensors: dict[str, torch.Tensor] = {}
    non_tensor: list[str] = []
    for key, value in obj.items():
        tensor = _as_tensor(value)
        if tensor is None:
            non_tensor.append(f"{key}: {describe(value)}")
        else:
            tensors[str(key)] = tensor
    return TensorSplit(_strip_module(tensors), dropped + non_tensor, non_tensor)


def _strip_module(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DataParallel checkpoints prefix every key with 'module.'; strip it when all keys have it."""
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _unwrap_module(value: Any) -> Any:
    return (_module_state(value) or value) if isinstance(value, Placeholder) else value


def _weights_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    for name in HF_WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise ValueError(f"{path}: directory holds none of {', '.join(HF_WEIGHT_FILES)}")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint (safetensors, or torch.load(weights_only=True)); for a Hugging Face
    directory, its model.safetensors / pytorch_model.bin. Raises ValueError naming the file."""
    path = _weights_file(Path(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return _strip_module(load_file(str(path)))
        except Exception as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise ValueError(f"{path}: not a readable torch checkpoint ({exc})") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: torch.load(weights_only=True) refused it ({first}). It pickles objects other than "
            f"tensors; convert it once, safely, with `eri-weights import NAME {path}`") from exc
    except Exception as exc:
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    split = split_tensors(obj)
    if not split.tensors or split.non_tensor_items:
        bad = "; ".join(split.non_tensor_items[:5]) or describe(obj)
        raise ValueError(f"{path}: not a mapping of parameter names to tensors (found {bad})")
    return split.tensors


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: Path) -> Path:
    """Write tensors to `path` atomically (temp file + rename); shared storages are copied apart."""
    from safetensors.torch import save_file

    if not tensors:
        raise ValueError(f"{path}: refusing to write an empty checkpoint")
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(clean, tmp, metadata={"format": "pt"}))


def write_random_checkpoint(root: Path, entry: str, make_module: "Callable[[], torch.nn.Module]", seed: int = 0) -> Path:
    """root/<entry>/<entry>.safetensors holding a freshly initialised module's state (tests and
    benchmarks: the official layout with random numbers, found by the resolver via $ERI_WEIGHTS_DIR)."""
    torch.manual_seed(seed)
    (Path(root) / entry).mkdir(parents=True, exist_ok=True)
    return save_safetensors(make_module().state_dict(), Path(root) / entry / f"{entry}.safetensors")
