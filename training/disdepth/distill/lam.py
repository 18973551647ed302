"""Loss Attention Module (LAM): where on the image the teacher's knowledge matters.

Paper: DisDepth, arXiv 2404.16386, section 3.3 ("attentive knowledge distillation"); docs/design.md section 2.

    q   = W_q · mean_p X(p)                      (B, d)     query from the global mean feature
    k   = W_k X(p)                               (B, d, P)  per-pixel keys (1x1 conv), P = H*W
    A   = P · softmax_p( q·k(p) / sqrt(d) )      (B, 1, H, W), mean 1 over pixels
    X'  = A ⊙ X                                  fed to the ghost decoder

The teacher-side SILog (through the ghost decoder) trains W_q, W_k: A grows where re-weighting
the acclimated teacher features lowers the depth error. The student's KD loss then uses A
(detached) as pixel weights. W_q starts at zero, so A = 1 everywhere at initialisation.
Cost is linear in pixels: one (B, d) x (B, d, P) product, never a P x P matrix.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LossAttention(nn.Module):
    """One scale's attention. ``channels``: C of the acclimated feature; ``dim``: d of q and k."""

    def __init__(self, channels: int, dim: int = 32):
        super().__init__()
        self.query = nn.Linear(channels, dim)
        self.key = nn.Conv2d(channels, dim, kernel_size=1)
        self.dim = dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero query: uniform attention (A = 1) at start, so the ghost decoder first sees plain F_t."""
        nn.init.zeros_(self.query.weight)
        nn.init.zeros_(self.query.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,C,H,W] -> A: [B,1,H,W], non-negative, mean 1 over the H*W pixels of each image."""
        b, _, h, w = x.shape
        q = self.query(x.mean(dim=(2, 3)))  # (B, d)
        k = self.key(x).flatten(2)  # (B, d, P)
        logits = torch.einsum('bd,bdp->bp', q, k) / math.sqrt(self.dim)  # (B, P)
        # softmax in float32: under bf16 autocast the P-way normalisation would lose the mean-1 scale
        attn = torch.softmax(logits.float(), dim=-1) * (h * w)
        return attn.view(b, 1, h, w).to(x.dtype)


class UniformAttention(nn.Module):
    """Ablation ``distill.attention=uniform``: A = 1 at every pixel (plain MSE feature KD)."""

    def __init__(self, channels: int = 0, dim: int = 0):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,C,H,W] -> ones [B,1,H,W]."""
        return x.new_ones((x.shape[0], 1, *x.shape[-2:]))


#: ``distill.attention`` -> module class; the one list of attention kinds (disdepth.config validates against it)
ATTENTIONS = {'lam': LossAttention, 'uniform': UniformAttention}


def build_attention(kind: str, channels: list[int], dim: int = 32) -> nn.ModuleList:
    """One attention module per scale.

    Raises:
        ValueError: an unknown ``kind`` (the message lists the valid ones).
    """
    if kind not in ATTENTIONS:
        raise ValueError(f'distill.attention={kind!r}; valid: {sorted(ATTENTIONS)}')
    return nn.ModuleList(ATTENTIONS[kind](c, dim) for c in channels)
