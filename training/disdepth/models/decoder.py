"""Light U-Net decoder of the student: upsample x2, concatenate the skip, conv-BN-ReLU.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (a light decoder fuses the CNN's multi-scale features);
docs/design.md section 2. Per step i, from the coarsest map x (stride 32):

    x = ReLU(BN(conv3x3([up(x), skip_i])))      skip_i = the next finer backbone map (16, 8, 4), then none

With ``len(channels)`` = 4 and 4 backbone maps the output is at stride 2: [B, channels[-1], H/2, W/2].
One conv per step keeps the decoder a small share of the student's latency (the backbone dominates).
Upsampling is bilinear to the skip's exact size, so inputs not divisible by 32 work too (static in ONNX).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Decoder(nn.Module):
    """Fuse backbone maps (finest first, as ``feature_info``) into one map.

    Args:
        feature_info: the backbone's ``[dict(num_chs, reduction, module)]``, finest first.
        channels: output channels per step; the first ``len(feature_info) - 1`` steps take a skip.
    Raises:
        ValueError: fewer steps than skips.
    """

    def __init__(self, feature_info: list[dict], channels: list[int]):
        super().__init__()
        skips = [info['num_chs'] for info in feature_info[:-1]][::-1]  # coarse -> fine
        if len(channels) < len(skips):
            raise ValueError(f'decoder needs at least {len(skips)} channel entries, got {channels}')
        in_ch = feature_info[-1]['num_chs']
        blocks = []
        for i, out_ch in enumerate(channels):
            skip_ch = skips[i] if i < len(skips) else 0
            blocks.append(conv_bn_relu(in_ch + skip_ch, out_ch))
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
