"""Light U-Net decoder of the student: upsample x2, concatenate the skip, one conv block per step.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (a light decoder fuses the CNN's multi-scale features);
docs/design.md section 2. Per step i, from the coarsest map x (stride 32):

    x = block_i([up(x), skip_i])      skip_i = the next finer backbone map (16, 8, 4), then none
    block_i = ReLU(BN(conv3x3(.)))                                  dense (the paper-scale student)
            = ReLU(BN(conv1x1(ReLU(BN(depthwise3x3(.))))))          for i in ``separable_steps`` (MobileNetV1)
    up = bilinear, align_corners=False

With ``len(channels)`` = 4 and 4 backbone maps the output is at stride 2: [B, channels[-1], H/2, W/2];
with 3 steps at stride 4. The separable block costs about 1/9 of the dense 3x3 per pixel (the 1x1 dominates),
which matters beside a MobileNetV2 backbone: at 192x640 the dense decoder [64, 32, 32, 16] alone is 0.87
GFLOPs against the backbone's 1.37 (disdepth.models.complexity). Upsampling goes to the skip's exact size,
so inputs not divisible by 32 work too (static in ONNX).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Dense 3x3 conv + BN + ReLU, [B,C_in,h,w] -> [B,C_out,h,w]."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def separable_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU, then 1x1 + BN + ReLU (depthwise separable), [B,C_in,h,w] -> [B,C_out,h,w]."""
    return nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
                         nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Decoder(nn.Module):
    """Fuse backbone maps (finest first, as ``feature_info``) into one map.

    Args:
        feature_info: the backbone's ``[dict(num_chs, reduction, module)]``, finest first.
        channels: output channels per step; the first ``len(feature_info) - 1`` steps take a skip.
        separable_steps: indices of the steps (0 = the coarsest) whose block is depthwise separable.
    Raises:
        ValueError: fewer steps than skips, or a separable step that does not exist.
    """

    def __init__(self, feature_info: list[dict], channels: list[int], separable_steps: Sequence[int] = ()):
        super().__init__()
        skips = [info['num_chs'] for info in feature_info[:-1]][::-1]  # coarse -> fine
        if len(channels) < len(skips):
            raise ValueError(f'decoder needs at least {len(skips)} channel entries, got {channels}')
        if any(not 0 <= i < len(channels) for i in separable_steps):
            raise ValueError(f'decoder separable steps {list(separable_steps)} must index its {len(channels)} steps')
        in_ch = feature_info[-1]['num_chs']
        blocks = []
        for i, out_ch in enumerate(channels):
            skip_ch = skips[i] if i < len(skips) else 0
            make_block = separable_bn_relu if i in separable_steps else conv_bn_relu
            blocks.append(make_block(in_ch + skip_ch, out_ch))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.num_skips = len(skips)
        self.out_channels = channels[-1]
        self.reduction = feature_info[-1]['reduction'] // 2 ** len(channels)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """feats: backbone maps finest first -> [B, channels[-1], H/r, W/r] with r = ``self.reduction``."""
        x = feats[-1]
        skips = feats[:-1][::-1]
        for i, block in enumerate(self.blocks):
            if i < self.num_skips:
                x = F.interpolate(x, size=skips[i].shape[-2:], mode='bilinear', align_corners=False)
                x = torch.cat([x, skips[i]], dim=1)
            else:
                x = F.interpolate(x, scale_factor=2.0, mode='bilinear', align_corners=False)
            x = block(x)
        return x
