"""LGConv: local-global convolution, a global branch beside each 3x3 conv of a pretrained CNN.

Paper: DisDepth, arXiv 2404.16386, section 3.2 ("Promoting CNNs with ... local-global convolution");
as read in docs/design.md section 2 (the paper's code is not public). For an input x [B,C,H,W], N heads, r:

    h     = ReLU(W_h x)                          1x1 conv, C -> C/r
    z     = [h, mean_p h]                        hidden feature, 2C/r channels (global average broadcast)
    A_n   = softmax_p(W_a z)_n                   N attention maps, softmax over all H*W pixels
    g_n   = sum_p A_n(p) (W_v x)_n(p)            one global vector (C/N channels) per head
    s_n   = sigmoid(W_s z)_n                     per pixel and head: how much of g_n to add back
    G(x)  = BN(W_o^{stride} (x + [s_n(p) g_n]_n))   1x1 conv with the 3x3 conv's stride, BN gamma ~ N(0, 1e-4)
                                                 (W_o grouped by heads beside a depthwise conv, config switch)
    y     = act(BN_3x3(conv_3x3(x)) + G(x))

Cost is linear in H*W: the softmax pools pixels into N vectors, no H*W x H*W matrix is formed. W_v is
applied after pooling (exact, as sum_p A_n(p) = 1), so the value costs C*N, not C*C, per pixel.
The branch output is added after the 3x3 conv's own BatchNorm and before its activation (RepVGG/ACNet
style: each branch normalised by its own BN). Adding before the pretrained BN would let the branch shift
that BN's batch statistics in training and rescale the branch by the pretrained gamma/sigma; after it, the
branch's BN alone sets its scale, and gamma ~ 0 makes the network at init the pretrained one.
Convs whose input channels are not divisible by ``heads`` (the RGB stem) are left plain.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # disdepth.config validates lgconv.depthwise_proj against DEPTHWISE_PROJ (imports this module)
    from disdepth.config import LGConvConfig

DEPTHWISE_PROJ = ('grouped', 'channelwise', 'dense')  # W_o beside a depthwise 3x3 conv, see LGConvConfig


class LGConv(nn.Module):
    """A conv layer (conv + its BN, e.g. a HF ``ResNetConvLayer`` with its activation moved out) plus the
    global branch.

    Args:
        local: module mapping x [B,C,H,W] -> [B,C_out,ceil(H/stride),ceil(W/stride)] (the 3x3 conv + its BN).
        in_channels, out_channels, stride: those of the 3x3 conv.
        heads: N, must divide ``in_channels``. reduction: r (hidden channels C/r, at least 1).
        proj_groups: groups of the 1x1 projection W_o (1: dense; ``heads`` beside a depthwise conv, where a
            dense C x C 1x1 would cost several times the depthwise conv itself).
        activation: applied after the sum (the local layer's own activation, moved here); None = identity.
    Raises:
        ValueError: ``in_channels`` not divisible by ``heads``, or channels not divisible by ``proj_groups``.
    """

    def __init__(self, local: nn.Module, in_channels: int, out_channels: int, stride: int = 1, *, heads: int = 8,
                 reduction: int = 4, bn_init_std: float = 1e-4, activation: nn.Module | None = None,
                 proj_groups: int = 1):
        super().__init__()
        if in_channels % heads:
            raise ValueError(f'LGConv: in_channels {in_channels} not divisible by heads {heads}')
        if in_channels % proj_groups or out_channels % proj_groups:
            raise ValueError(f'LGConv: channels {in_channels}->{out_channels} not divisible by '
                             f'proj_groups {proj_groups}')
        hidden = max(in_channels // reduction, 1)
        self.local = local
        self.heads = heads
        self.bn_init_std = bn_init_std
        self.reduce = nn.Conv2d(in_channels, hidden, 1)
        self.attn = nn.Conv2d(2 * hidden, heads, 1)
        self.gate = nn.Conv2d(2 * hidden, heads, 1)
        self.value = nn.Conv2d(in_channels, in_channels, 1)
        self.proj = nn.Conv2d(in_channels, out_channels, 1, stride=stride, groups=proj_groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = activation if activation is not None else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BN gamma ~ N(0, bn_init_std), beta = 0: the branch adds ~0 at init (timm ``zero_init_last``)."""
        nn.init.normal_(self.bn.weight, 0.0, self.bn_init_std)
        nn.init.zeros_(self.bn.bias)

    def global_branch(self, x: torch.Tensor) -> torch.Tensor:
        """G(x): x [B,C,H,W] -> [B,C_out,ceil(H/stride),ceil(W/stride)]."""
        b, c, height, width = x.shape
        h = F.relu(self.reduce(x))  # (B, C/r, H, W)
        z = torch.cat([h, h.mean(dim=(2, 3), keepdim=True).expand_as(h)], dim=1)  # (B, 2C/r, H, W)
        attn = self.attn(z).flatten(2).softmax(dim=-1)  # (B, heads, H*W)
        # Pool x first, then project: sum_p A(p) (W_v x(p) + b) = W_v (sum_p A(p) x(p)) + b since sum_p A = 1.
        # Same g_n, but C*heads instead of C*C multiply-adds per pixel.
        pooled_x = torch.matmul(attn, x.flatten(2).transpose(1, 2))  # (B, heads, C)
        # Head n's rows of W_v as one batched MatMul: ONNX Runtime's Einsum of the same product re-laid the
        # C x C weight out on every run (10 of 415 ms at 480x640 in bench_models.py's profile).
        w_v = self.value.weight.reshape(self.heads, c // self.heads, c).transpose(1, 2)  # (heads, C, C/heads)
        pooled = torch.matmul(pooled_x.unsqueeze(2), w_v).squeeze(2) + self.value.bias.reshape(self.heads, -1)
        # pooled: (B, heads, C/heads), one global vector per head
        gate = torch.sigmoid(self.gate(z))  # (B, heads, H, W)
        added = gate.unsqueeze(2) * pooled[..., None, None]  # (B, heads, C/heads, H, W)
        return self.bn(self.proj(x + added.reshape(b, c, height, width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.local(x) + self.global_branch(x))


def _eligible(module: nn.Module, heads: int) -> bool:
    conv = getattr(module, 'convolution', None)
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.dilation == (1, 1)
            and conv.in_channels % heads == 0 and hasattr(module, 'activation'))


def add_lgconv(backbone: nn.Module, cfg: LGConvConfig) -> int:
    """Wrap the eligible 3x3 conv layers of stages ``cfg.stages`` (1..4 = stride 4..32) with ``LGConv``: all of
    them, or the last ``cfg.per_stage`` of each stage (the deepest, in forward order) when it is positive.

    ``backbone`` must offer ``stage_blocks() -> [(stage, block)]`` (disdepth.models.backbones). Eligible: a
    HF conv layer (``.convolution`` 3x3 ``nn.Conv2d`` + ``.normalization`` + ``.activation``) whose input
    channels divide by ``cfg.heads``. Its activation moves into the wrapper so the branch joins before it.

    Returns:
        The number of convs wrapped (0 when ``cfg.enabled`` is False).
    Raises:
        ValueError: a stage outside 1..4, a negative ``per_stage`` or an unknown ``depthwise_proj``.
    """
    if not cfg.enabled:
        return 0
    bad = [s for s in cfg.stages if s not in (1, 2, 3, 4)]
    if bad:
        raise ValueError(f'lgconv.stages must be within 1..4 (strides 4..32), got {bad}')
    if cfg.per_stage < 0:
        raise ValueError(f'lgconv.per_stage must be >= 0 (0: every eligible conv), got {cfg.per_stage}')
    if cfg.depthwise_proj not in DEPTHWISE_PROJ:
        raise ValueError(f'lgconv.depthwise_proj must be one of {DEPTHWISE_PROJ}, got {cfg.depthwise_proj!r}')
    targets: dict[int, list[tuple[nn.Module, str, nn.Module]]] = {}  # stage -> [(block, name, layer)]
    for stage, block in backbone.stage_blocks():
        if stage in cfg.stages:
            targets.setdefault(stage, []).extend(
                (block, name, m) for name, m in block.named_modules() if name and _eligible(m, cfg.heads))
    count = 0
    for layers in targets.values():
        for block, name, layer in layers[-cfg.per_stage:] if cfg.per_stage else layers:
            conv = layer.convolution
            activation = layer.activation
            depthwise = conv.groups > 1 and conv.groups == conv.in_channels
            proj_groups = {'grouped': cfg.heads, 'channelwise': conv.in_channels, 'dense': 1}[cfg.depthwise_proj] \
                if depthwise else 1
            layer.activation = nn.Identity()  # HF ResNet calls it unconditionally; MobileNetV2 skips None only
            parent_name, _, child = name.rpartition('.')
            parent = block.get_submodule(parent_name) if parent_name else block
            setattr(parent, child, LGConv(layer, conv.in_channels, conv.out_channels, conv.stride[0], heads=cfg.heads,
                                          reduction=cfg.reduction, bn_init_std=cfg.bn_init_std,
                                          activation=activation, proj_groups=proj_groups))
            count += 1
    return count
