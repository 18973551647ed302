"""DisDepth student: CNN backbone (+ LGConv) -> light decoder -> depth head, metric depth in metres.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (student) and 3.2 (LGConv); docs/design.md section 2.

    F_1..F_4 = backbone((image - mean_ImageNet) / std_ImageNet)     strides 4, 8, 16, 32
    depth    = upsample_bilinear(head(decoder(F)), H x W)           metres

Normalisation lives inside the module so exported graphs take raw RGB in 0..1 (monodepth2, docs/design.md
section 3). ``encode`` and ``decode`` are split for distillation: the ghost decoder runs ``decode`` on
teacher features with the student's weights detached, via
``torch.func.functional_call(student, detached, (), {'features': f, 'out_size': (H, W)})``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from disdepth.config import ModelConfig
from disdepth.models.backbones import build_backbone
from disdepth.models.decoder import Decoder
from disdepth.models.heads import build_head
from disdepth.models.lgconv import add_lgconv

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DepthStudent(nn.Module):
    """Backbone + decoder + head. ``forward(image [B,3,H,W] RGB 0..1)`` ->
    ``{'depth': [B,1,H,W] metres, 'depth_std' (bins head only), 'features': [4 maps]}``."""

    def __init__(self, backbone: nn.Module, decoder: nn.Module, head: nn.Module, min_depth: float,
                 max_depth: float):
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.head = head
        self.feature_info = backbone.feature_info
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image [B,3,H,W] RGB 0..1 -> 4 backbone maps (``feature_info`` order, strides 4..32)."""
        return self.backbone((image - self.mean) / self.std)

    def decode(self, features: list[torch.Tensor], out_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """4 maps (student's or acclimated teacher's) -> {'depth'[, 'depth_std']} [B,1,*out_size] metres."""
        out = self.head(self.decoder(features))
        return {k: F.interpolate(v, size=tuple(out_size), mode='bilinear', align_corners=False)
                for k, v in out.items()}

    def forward(self, image: Optional[torch.Tensor] = None, *, features: Optional[list[torch.Tensor]] = None,
                out_size: Optional[tuple[int, int]] = None) -> dict:
        """``forward(image)`` runs the whole student; ``forward(features=..., out_size=...)`` only ``decode``
        (the entry point ``torch.func.functional_call`` needs for the ghost decoder).

        Raises:
            ValueError: neither an image nor features with out_size given.
        """
        if image is None:
            if features is None or out_size is None:
                raise ValueError('DepthStudent.forward needs an image, or features and out_size')
            return self.decode(features, out_size)
        feats = self.encode(image)
        out = self.decode(feats, image.shape[-2:])
        out['features'] = feats
        return out


def build_student(cfg: ModelConfig) -> DepthStudent:
    """Student from ``ModelConfig`` (backbone name/weights, LGConv, decoder widths, head, depth range).

    Raises:
        ValueError: unknown backbone or head, or min_depth/max_depth not 0 < min < max.
    """
    if not 0 < cfg.min_depth < cfg.max_depth:
        raise ValueError(f'model depth range must satisfy 0 < min_depth < max_depth, got '
                         f'{cfg.min_depth}..{cfg.max_depth}')
    backbone = build_backbone(cfg.backbone, cfg.pretrained)
    decoder = Decoder(backbone.feature_info, cfg.decoder_channels, cfg.decoder_separable_steps)
    head = build_head(cfg.head, decoder.out_channels, cfg.min_depth, cfg.max_depth, cfg.num_bins)
    # LGConv last (it keeps the channels, so feature_info holds): under one seed a student with and without it
    # then starts from the same backbone, decoder and head weights, and the ablation compares them seed by seed
    add_lgconv(backbone, cfg.lgconv)
    return DepthStudent(backbone, decoder, head, cfg.min_depth, cfg.max_depth)
