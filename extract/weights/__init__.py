"""Named pretrained weights: registry, resolver, safe loading, fetch and import (`eri-weights`).

    from extract.weights import resolve, load_state_dict
    r = resolve("blazeface")          # ResolvedWeights(name, path, sha256, pinned, where)
    sd = load_state_dict(r.path)      # dict[str, Tensor] (safetensors or torch.load(weights_only=True))

torch is imported only when load_state_dict is first used, so listing and resolving stay fast.
"""
from typing import Any

from extract.weights.errors import UnsafeCheckpoint, WeightsCorrupt, WeightsError, WeightsFetchError, WeightsMissing
from extract.weights.registry import ENTRIES, WeightsEntry, WheelMember, get_entry
from extract.weights.resolver import ResolvedWeights, resolve

__all__ = [
    "ENTRIES", "ResolvedWeights", "UnsafeCheckpoint", "WeightsCorrupt", "WeightsEntry", "WeightsError",
    "WeightsFetchError", "WeightsMissing", "WheelMember", "get_entry", "load_state_dict", "resolve",
]


def __getattr__(name: str) -> Any:
    if name == "load_state_dict":
        from extract.weights.state_dict import load_state_dict

        return load_state_dict
    raise AttributeError(f"module 'extract.weights' has no attribute {name!r}")
