"""Depth heads of the student: plain metric head and AdaBins-style adaptive bins.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (framework predicts adaptive bins); AdaBins, arXiv
2011.14141, section 3 (bin widths from a global MLP, per-pixel bin probabilities, depth = expectation);
Depth-Anything-V2's metric head (sigmoid x max_depth) for the plain one.

    PlainHead:  d = max_depth * sigmoid(conv3x3(x))
    BinsHead:   w = normalise(ReLU(MLP(mean_p x)) + eps)                 K bin widths, sum 1
                c_k = min + (max - min) * (sum_{j<k} w_j + w_k / 2)        bin centres, metres, in [min, max]
                p_k(p) = softmax_k(conv1x1(x))(p)
                d(p) = sum_k p_k c_k,   std(p) = sqrt(sum_k p_k (c_k - d(p))^2)
Inputs x [B,C,h,w] (decoder output); outputs [B,1,h,w] in metres.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PlainHead(nn.Module):
    """``forward(x [B,C,h,w]) -> {'depth': [B,1,h,w]}`` metres in (0, max_depth)."""

    def __init__(self, in_channels: int, max_depth: float):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.max_depth = max_depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {'depth': torch.sigmoid(self.conv(x)) * self.max_depth}


class BinsHead(nn.Module):
    """``forward(x [B,C,h,w]) -> {'depth', 'depth_std'}`` each [B,1,h,w] metres; depth in [min, max].

    ``depth_std`` is the standard deviation of the per-pixel bin distribution (an uncertainty, metres).
    """

    def __init__(self, in_channels: int, min_depth: float, max_depth: float, *, num_bins: int = 64,
                 mlp_hidden: int = 128, min_width: float = 1e-3):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, mlp_hidden), nn.ReLU(inplace=True),
                                 nn.Linear(mlp_hidden, num_bins))
        self.logits = nn.Conv2d(in_channels, num_bins, 1)
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.min_width = min_width  # AdaBins' eps: no bin collapses to zero width

    def bin_centres(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,C,h,w] -> bin centres [B,K] metres, increasing, within [min_depth, max_depth]."""
        widths = torch.relu(self.mlp(x.mean(dim=(2, 3)))) + self.min_width  # (B, K)
        widths = widths / widths.sum(dim=1, keepdim=True)
        edges = torch.cumsum(widths, dim=1) - 0.5 * widths  # (B, K) in (0, 1)
        return self.min_depth + (self.max_depth - self.min_depth) * edges

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, height, width = x.shape
        centres = self.bin_centres(x)  # (B, K)
        # Variance is shift-invariant; centring on the mean bin limits float32 cancellation in E[c^2] - E[c]^2
        # (|c - shift| <= max_depth: std error below ~1 cm at 80 m).
        shift = centres.mean(dim=1, keepdim=True)  # (B, 1)
        rel = centres - shift
        moments = torch.stack([rel, rel * rel], dim=2)  # (B, K, 2)
        # Pixels-major with K last, so the softmax and both expectations run along contiguous memory in
        # ONNX Runtime: the 1x1 logits conv becomes a MatMul on the C-channel input transposed (C <= K moves
        # fewer floats than transposing the K logits), the two sums one MatMul with (K, 2). Measured at
        # 96x320, K 64, C 16, 2 threads: 1.4x faster than transposing the logits; the NCHW
        # broadcast-and-reduce form was ~10x slower (144 vs 17 ms).
        pixels = x.flatten(2).transpose(1, 2)  # (B, h*w, C)
        prob = F.linear(pixels, self.logits.weight.flatten(1), self.logits.bias).softmax(dim=-1)  # (B, h*w, K)
        expectations = torch.matmul(prob, moments)  # (B, h*w, 2): E[c - shift], E[(c - shift)^2]
        mean_rel, mean_sq = expectations[..., 0], expectations[..., 1]
        var = (mean_sq - mean_rel * mean_rel).clamp_min(1e-12)
        # (B, h*w) is (B, 1, h, w) in memory: a reshape, no transpose back
        return {'depth': (mean_rel + shift).reshape(b, 1, height, width),
                'depth_std': var.sqrt().reshape(b, 1, height, width)}


#: ``model.head`` -> constructor(in_channels, min_depth, max_depth, num_bins); the one list of head kinds
#: (disdepth.config validates ``model.head`` against its keys)
HEADS = {
    'bins': lambda in_channels, min_depth, max_depth, num_bins: BinsHead(in_channels, min_depth, max_depth,
                                                                         num_bins=num_bins),
    'plain': lambda in_channels, min_depth, max_depth, num_bins: PlainHead(in_channels, max_depth),
}


def build_head(kind: str, in_channels: int, min_depth: float, max_depth: float, num_bins: int) -> nn.Module:
    """The depth head ``kind`` over ``in_channels`` decoder channels, for depths in [min_depth, max_depth] metres.

    Raises:
        ValueError: an unknown ``kind`` (the message lists the valid ones).
    """
    if kind not in HEADS:
        raise ValueError(f'model.head={kind!r}; valid: {sorted(HEADS)}')
    return HEADS[kind](in_channels, min_depth, max_depth, num_bins)
