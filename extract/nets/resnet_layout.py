"""ResNet18's shapes, without torch (listing features and planning need them, not the network)."""
from __future__ import annotations

WIDTHS = (64, 128, 256, 512)
FEATURE_DIM = WIDTHS[-1]


def map_side(size: int, stage: int) -> int:
    """Side of the `layer{stage}` map for a size×size input (conv1 and maxpool halve it, and so does
    the first block of layers 2-4; each with its own padding, so the sizes round up)."""
    side = (size - 1) // 2 + 1  # conv1 7x7/2, padding 3
    side = (side - 1) // 2 + 1  # maxpool 3x3/2, padding 1
    for _ in range(2, stage + 1):
        side = (side - 1) // 2 + 1  # 3x3/2, padding 1
    return side
