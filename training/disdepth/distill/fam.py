"""Feature Acclimation Module (FAM): teacher features mapped into the student's feature space.

Paper: DisDepth, arXiv 2404.16386, section 3.3 ("teacher acclimation"); docs/design.md section 2.

    F_t,l = resize( Norm( Conv1x1(T_l) ), size of the student's scale-l feature )

One module per scale. The 1x1 conv maps the teacher's channels to the student's, BatchNorm puts
the result on the student's (post-BN) scale, and bilinear resizing absorbs stride differences
(e.g. a ViT-14 teacher's 3.5/7/14/28 strides against the CNN's 4/8/16/32). The conv runs before the
resize because teacher maps are usually no larger than the student's and have more channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureAcclimation(nn.Module):
    """Per-scale 1x1 conv + BatchNorm + bilinear resize.

    Args:
        teacher_channels: channels of the teacher's 4 maps (strides ~4, 8, 16, 32).
        student_channels: channels of the student's 4 maps (from its ``feature_info``).
    Raises:
        ValueError: the two lists differ in length.
    """

    def __init__(self, teacher_channels: list[int], student_channels: list[int]):
        super().__init__()
        if len(teacher_channels) != len(student_channels):
            raise ValueError(f'FAM: teacher has {len(teacher_channels)} scales, student '
                             f'{len(student_channels)}; they must match')
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ct, cs, kernel_size=1, bias=False), nn.BatchNorm2d(cs))
            for ct, cs in zip(teacher_channels, student_channels, strict=True))

    def forward(self, teacher_feats: list[torch.Tensor],
                sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """teacher_feats[l]: [B,Ct_l,h,w]; sizes[l]: (H_l, W_l) -> list of [B,Cs_l,H_l,W_l]."""
        out = []
        for layer, feat, size in zip(self.layers, teacher_feats, sizes, strict=True):
            x = layer(feat)
            if tuple(x.shape[-2:]) != tuple(size):
                x = F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)
            out.append(x)
        return out
