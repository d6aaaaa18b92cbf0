"""Layout checks for weights entries: does a checkpoint fit the architecture it is imported for?

`eri-weights import` and `fetch` run the entry's check (registry `layout_check`) on the tensors
before anything is stored, so a checkpoint of another architecture is refused at once, naming the
mismatching keys, instead of failing later at extraction. Each check loads strictly into our
definition of the network (extract.nets) and raises CheckpointMismatch.
"""
from __future__ import annotations

from typing import Mapping

import torch

from extract.nets.strict import CheckpointMismatch, load_strict


def check_resnet18(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.resnet import resnet18_from_state_dict

    resnet18_from_state_dict(tensors, source)


def check_posterv2(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.posterv2 import posterv2_from_state_dict

    posterv2_from_state_dict(tensors, source)


def check_densenet121(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.densenet import densenet121, load_densenet_state

    load_densenet_state(densenet121(), dict(tensors), source)


def check_vggish(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.vggish import VGGish

    network = {k: v for k, v in tensors.items() if not k.startswith("pproc.")}  # a full torchvggish dict has PCA too
    load_strict(VGGish(with_pca=False), network, source)


def check_vggish_pca(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.vggish import Postprocessor

    try:
        Postprocessor().load_pca(dict(tensors))
    except (KeyError, RuntimeError) as exc:
        raise CheckpointMismatch(f"{source}: not VGGish PCA parameters: {exc}") from None


def check_minixception(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    from extract.nets.minixception import MiniXception

    load_strict(MiniXception(), tensors, source)
