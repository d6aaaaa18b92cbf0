"""Fusion heads, registered by name (one module each)."""
from fusion.heads.registry import (FusionHead, HeadSpec, StreamInfo, build_head, get_head,
                                   list_heads, register_head)
from fusion.heads import (av_interaction, cross_attention_rnn, lstm, tcn_transformer,  # noqa: F401
                          te)

__all__ = ["FusionHead", "HeadSpec", "StreamInfo", "build_head", "get_head", "list_heads",
           "register_head"]
