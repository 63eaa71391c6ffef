"""Vision-transformer blocks shared by the ``autoformer-ti`` and ``pit-ti`` spaces.

A pre-norm encoder block as in ViT/DeiT (Dosovitskiy et al., ICLR 2021; Touvron et al., ICML 2021):
``x + Attn(LN(x))`` then ``x + MLP(LN(x))``, multi-head self-attention with a bias on Q, K and V
(one ``dim -> 3 dim`` linear layer) and an output projection, an MLP ``dim -> hidden -> dim`` with
GELU. LayerNorm eps is 1e-6 (DeiT, PiT).

Parameters of one block of width ``C`` and MLP width ``h`` (:func:`block_params`)::

    2 LayerNorms 4C + qkv (3C^2 + 3C) + proj (C^2 + C) + fc1 (C h + h) + fc2 (h C + C)
    = 4 C^2 + 2 C h + 9 C + h
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._network import FeatureNetwork

__all__ = ["Attention", "ClassTokenNetwork", "EncoderBlock", "block_params", "resize_grid"]

LN_EPS = 1e-6


def block_params(width: int, hidden: int) -> int:
    """Trainable parameters of one :class:`EncoderBlock` (module docstring)."""
    return 4 * width * width + 2 * width * hidden + 9 * width + hidden


class Attention(nn.Module):
    """Multi-head self-attention: ``heads`` heads of ``dim // heads`` channels each.

    The products ``Q K^T`` and ``A V`` happen outside any Linear layer, so the module reports
    their FLOPs itself (:meth:`matmul_flops`, read by the FLOPs hooks of :mod:`diswot.proxies`).
    """

    def __init__(self, *, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not split width {dim} evenly")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, N, C)``."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        # a double backward (GraSP) needs SDPA's math backend: the proxy selects it (sdpa_kernel)
        out = F.scaled_dot_product_attention(q, k, v)
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(b, n, c))
        return projected

    @staticmethod
    def matmul_flops(x: torch.Tensor) -> int:
        """FLOPs of ``Q K^T`` and ``A V`` for input ``x`` of shape ``(B, N, C)``: ``4 B N^2 C``
        (two products, 2 FLOPs per multiply-add, as :mod:`torch.utils.flop_counter` counts them)."""
        b, n, c = x.shape
        return 4 * b * n * n * c


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: LN -> attention -> residual, LN -> MLP (GELU) -> residual."""

    def __init__(self, *, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim=dim, heads=heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C) -> (B, N, C)``."""
        x = x + self.attn(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


def resize_grid(pos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A ``(1, C, H, W)`` position embedding resized (bicubic) to ``size``; itself if it fits.

    The spaces are built for 224 px; another input size gives another patch grid, and the learned
    embedding is interpolated to it, as timm does for ViTs at a new resolution.
    """
    if tuple(pos.shape[-2:]) == size:
        return pos
    return F.interpolate(pos, size=size, mode="bicubic", align_corners=False)


class ClassTokenNetwork(FeatureNetwork):
    """A ViT student: ``forward_features`` gives the tokens after the final norm, class token first,
    and the head reads the class token (DisWOT's semantic term reads it too)."""

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The class token."""
        return features[:, 0]
