"""VGGish (Hershey et al. 2017) with torchvggish's parameter names (shared/reference/vggish.keys.json).

Input: (N, 1, 96, 64) log-mel examples (frames × bands, from extract.audio.logmel.vggish_examples).
`features.{0,3,6,8,11,13}` are 3×3 convs (64-128-256-256-512-512) with 2×2 max-pools after
conv 0, 3, 8 and 13; the (N, 512, 6, 4) map is flattened in TF's NHWC order before
`embeddings.{0,2,4}` (12288→4096→4096→128), each followed by a ReLU — the final ReLU included.
The released weights come as two files: `vggish-10086976.pth` (features.*/embeddings.*, loaded
strictly into `VGGish`) and `vggish_pca_params-970ea276.pth` ({pca_eigen_vectors, pca_means},
held by `Postprocessor`; `VGGish(with_pca=True)` exposes both under torchvggish's `pproc.` names).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
_CONVS = ((0, 1, 64), (3, 64, 128), (6, 128, 256), (8, 256, 256), (11, 256, 512), (13, 512, 512))
_POOL_AFTER = {0, 3, 8, 13}


class Postprocessor(nn.Module):
    """PCA (+ optional 8-bit quantisation) of the YouTube-8M / AudioSet release format."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pca_eigen_vectors", torch.zeros(EMBEDDING_SIZE, EMBEDDING_SIZE))
        self.register_buffer("pca_means", torch.zeros(EMBEDDING_SIZE, 1))

    def load_pca(self, state: dict[str, torch.Tensor]) -> None:
        """Accepts the PCA file's dict, with or without a `pproc.` prefix; `pca_means` may be flat."""
        state = {k.removeprefix("pproc."): torch.as_tensor(v, dtype=torch.float32) for k, v in state.items()}
        missing = {"pca_eigen_vectors", "pca_means"} - set(state)
        if missing or len(state) != 2:
            raise KeyError(f"VGGish PCA parameters: expected keys pca_eigen_vectors and pca_means, got {sorted(state)}")
        self.load_state_dict({"pca_eigen_vectors": state["pca_eigen_vectors"],
                              "pca_means": state["pca_means"].reshape(-1, 1)}, strict=True)

    def forward(self, embeddings: torch.Tensor, quantize: bool = False) -> torch.Tensor:
        """(N, 128) -> (N, 128): E·(x − μ); quantised as round((clamp(·, −2, 2) + 2)·255/4) if asked."""
        projected = (embeddings - self.pca_means.reshape(1, -1)) @ self.pca_eigen_vectors.t()
        if not quantize:
            return projected
        clipped = projected.clamp(QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))


class VGGish(nn.Module):
    def __init__(self, with_pca: bool = False) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for index, cin, cout in _CONVS:
            layers[str(index)] = nn.Conv2d(cin, cout, 3, padding=1)
            layers[str(index + 1)] = nn.ReLU(inplace=True)
            if index in _POOL_AFTER:
                layers[str(index + 2)] = nn.MaxPool2d(2, 2)
        self.features = nn.Sequential(layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE), nn.ReLU(inplace=True),
        )
        self.pproc = Postprocessor() if with_pca else None

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """(N, 1, 96, 64) log-mel -> (N, 128) raw embeddings (after the final ReLU, before PCA)."""
        x = self.features(examples)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC flatten, as the TF original
        return self.embeddings(x)
