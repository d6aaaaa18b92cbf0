"""How many CPU threads torch uses for a fit (`--threads`; 0 = automatic)."""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def apply_threads(requested: int) -> int:
    """Set torch's intra-op threads; returns the number in use."""
    if requested > 0:
        torch.set_num_threads(requested)
    return torch.get_num_threads()
