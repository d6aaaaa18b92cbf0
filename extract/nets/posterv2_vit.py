"""The small vision transformer that closes POSTER V2 (`VIT.*`).

Input: 147 tokens of width 768 (49 per scale). A learned class token is prepended, a learned
position embedding (148 positions) added, two pre-norm transformer blocks (8 heads, MLP ratio 4,
GELU, LayerNorm eps 1e-6) and a final LayerNorm follow. The class token then goes through an
SE gate, `x * sigmoid(W2 relu(W1 x))`, giving the 768-d embedding; `head.linear` maps it to the
7 or 8 class logits.

The official model also registers modules its forward never calls (`patch_embed`, `eca_block`,
`CON1`, `IRLinear1/2`, and a Conv1d `conv` in each block). They are kept, in the checkpoint's
registration order, only so that official checkpoints load with strict=True.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 768
TOKENS = 147
HEADS = 8
DEPTH = 2
LN_EPS = 1e-6


class SEGate(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.linear2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.linear2(F.relu(self.linear1(x))))


class Head(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class PointEmbed(nn.Module):
    """1x1 conv then flatten: (B, C, H, W) → (B, H*W, dim). Also used for the top-level `embed_v`."""

    def __init__(self, cin: int = 256, dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _UnusedECA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 5, padding=2, bias=False)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale (c/heads)^-0.5, as the original
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, tokens: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.conv = nn.Conv1d(tokens, tokens, 1)  # unused
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    def __init__(self, num_classes: int = 7, dim: int = EMBED_DIM, tokens: int = TOKENS,
                 depth: int = DEPTH, heads: int = HEADS) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.se_block = SEGate(dim)
        self.patch_embed = PointEmbed(256, dim)  # unused
        self.head = Head(dim, num_classes)
        self.eca_block = _UnusedECA()
        self.CON1 = nn.Conv2d(256, dim, 1, bias=False)  # unused
        self.IRLinear1 = nn.Linear(1024, dim)  # unused
        self.IRLinear2 = nn.Linear(dim, 512)  # unused
        self.blocks = nn.Sequential(*(Block(dim, tokens + 1, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 147, 768) tokens → (B, 768) SE-gated class token (the input of `head.linear`)."""
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = torch.cat((cls, tokens), dim=1) + self.pos_embed
        cls_out = self.norm(self.blocks(x))[:, 0]
        return self.se_block(cls_out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens))
