"""Fusion heads, registered by name (one module each), and the named training recipes."""
from fusion.heads.registry import (FusionHead, HeadSpec, Recipe, StreamInfo, build_head, get_head,
                                   get_recipe, list_heads, list_recipes, register_head,
                                   register_recipe)
from fusion.heads import (av_interaction, conv_pool, cross_attention_rnn, lstm,  # noqa: F401
                          ridge, tcn_transformer, te)

__all__ = ["FusionHead", "HeadSpec", "Recipe", "StreamInfo", "build_head", "get_head", "get_recipe",
           "list_heads", "list_recipes", "register_head", "register_recipe"]
