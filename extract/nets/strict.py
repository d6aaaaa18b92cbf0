"""Strict checkpoint loading with a readable error.

`torch.nn.Module.load_state_dict(strict=True)` reports every mismatch in one long line; a user who
imported the wrong file wants to see which file, how many keys differ, and the first few of them.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

_SHOWN = 5


class CheckpointMismatch(ValueError):
    """The checkpoint's keys or shapes do not match the architecture."""


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load `state_dict` into `model` with strict=True, or raise CheckpointMismatch naming `source`.

    BatchNorm `num_batches_tracked` counters may be absent (checkpoints saved before torch 0.4.1,
    e.g. torchvision's ImageNet ResNet18); they never change eval outputs and are filled with 0.
    """
    expected = model.state_dict()
    state = dict(state_dict)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: {tuple(state[k].shape)} (need {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f" … (+{len(items) - _SHOWN})" if len(items) > _SHOWN else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:_SHOWN])}{more}")
    if problems:
        raise CheckpointMismatch(f"{source}: checkpoint does not fit {type(model).__name__} "
                                 f"({len(state)} tensors, need {len(expected)}); " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model
