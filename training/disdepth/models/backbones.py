"""CNN backbones with features at strides 4, 8, 16, 32, built from Hugging Face ``transformers``.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (student = pretrained CNN encoder + light decoder).
Reference: timm's ``features_only`` contract (``feature_info`` + ``forward -> list[Tensor]``); no timm or
torchvision here (docs/design.md section 4), so the layers are the HF ``ResNetModel`` / ``MobileNetV2Model`` ones.

    feats = backbone(x)   # x [B,3,H,W] ImageNet-normalised -> 4 maps [B, C_i, ceil(H/s_i), ceil(W/s_i)], s_i = 4..32

Only the modules that produce the four maps are kept (no pooler, no MobileNetV2 1280-channel head conv), so
every parameter receives gradient. ``stage_blocks()`` tells ``lgconv.add_lgconv`` which blocks belong to
stage 1..4 (output stride 4..32); a stride-2 block belongs to the stage it outputs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import nn
from transformers import MobileNetV2Config, MobileNetV2Model, ResNetConfig, ResNetModel

from disdepth.hub import LOCAL_FOLDER, load_pretrained

# Standard ImageNet architectures (the configs of microsoft/resnet-* and google/mobilenet_v2_1.0_224).
RESNET_CONFIGS = {
    'resnet18': dict(layer_type='basic', depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512]),
    'resnet34': dict(layer_type='basic', depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 256, 512]),
    'resnet50': dict(layer_type='bottleneck', depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048]),
}
# MobileNetV2 inverted-residual block indices ending stride 4, 8, 16, 32 (timm's feature taps: 24/32/96/320 ch).
MOBILENET_V2_TAPS = (1, 4, 11, 15)
PRETRAINED_INSTEAD = f'{LOCAL_FOLDER}, or model.pretrained=null for random init'


class ResNetBackbone(nn.Module):
    """HF ResNet stem + 4 stages; ``feature_info`` from the config's ``hidden_sizes``."""

    def __init__(self, model: ResNetModel):
        super().__init__()
        self.embedder = model.embedder  # conv 7x7/2 + max-pool/2: stride 4
        self.stages = model.encoder.stages
        if model.config.downsample_in_first_stage:
            raise ValueError('ResNet configs with downsample_in_first_stage=True give strides 8..64, not 4..32')
        self.feature_info = [
            dict(num_chs=c, reduction=4 * 2**i, module=f'stages.{i}') for i, c in enumerate(model.config.hidden_sizes)
        ]

    def stage_blocks(self) -> list[tuple[int, nn.Module]]:
        return [(i + 1, stage) for i, stage in enumerate(self.stages)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.embedder(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class MobileNetV2Backbone(nn.Module):
    """HF MobileNetV2 stem + the 16 inverted residual blocks, tapped after blocks ``MOBILENET_V2_TAPS``."""

    def __init__(self, model: MobileNetV2Model):
        super().__init__()
        if model.config.output_stride != 32:
            raise ValueError(f'MobileNetV2 output_stride must be 32 (got {model.config.output_stride})')
        self.stem = model.conv_stem  # stride 2
        self.layers = nn.ModuleList(model.layer[: MOBILENET_V2_TAPS[-1] + 1])
        self.feature_info = [
            dict(num_chs=self.layers[i].reduce_1x1.convolution.out_channels, reduction=4 * 2**s, module=f'layers.{i}')
            for s, i in enumerate(MOBILENET_V2_TAPS)
        ]

    def stage_blocks(self) -> list[tuple[int, nn.Module]]:
        stage, blocks = 1, []
        for i, block in enumerate(self.layers):
            blocks.append((stage, block))
            if i in MOBILENET_V2_TAPS:
                stage += 1
        return blocks

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.layers):
            x = block(x)
            if i in MOBILENET_V2_TAPS:
                feats.append(x)
        return feats


def _resnet(name: str) -> Callable[[Optional[str]], nn.Module]:
    def build(pretrained: Optional[str] = None) -> nn.Module:
        if pretrained is None:
            model = ResNetModel(ResNetConfig(embedding_size=64, hidden_act='relu', **RESNET_CONFIGS[name]))
        else:
            model = load_pretrained(ResNetModel.from_pretrained, pretrained, 'model.pretrained', PRETRAINED_INSTEAD)
        return ResNetBackbone(model)

    return build


def _mobilenet_v2(pretrained: Optional[str] = None) -> nn.Module:
    if pretrained is None:
        model = MobileNetV2Model(MobileNetV2Config(depth_multiplier=1.0))
        # HF's N(0, 0.02) init makes activations vanish (~1e-20 at stride 32 with unit BN statistics); He
        # fan_in init (fan_in = 9 for the depthwise convs) keeps them O(1) for tests and training from scratch.
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_in')
    else:
        model = load_pretrained(MobileNetV2Model.from_pretrained, pretrained, 'model.pretrained',
                                PRETRAINED_INSTEAD)
    return MobileNetV2Backbone(model)


BACKBONES: dict[str, Callable[[Optional[str]], nn.Module]] = {
    'resnet18': _resnet('resnet18'),
    'resnet34': _resnet('resnet34'),
    'resnet50': _resnet('resnet50'),
    'mobilenet_v2': _mobilenet_v2,
}


def build_backbone(name: str, pretrained: Optional[str] = None) -> nn.Module:
    """Backbone ``name`` with ImageNet weights from ``pretrained`` (local folder or hub id), else random init.

    Raises:
        ValueError: ``name`` is not a key of ``BACKBONES`` (the message lists them).
        ModelSourceError: ``pretrained`` cannot be loaded (one line: no folder, no weights, hub unreachable).
    """
    if name not in BACKBONES:
        raise ValueError(f'unknown backbone {name!r}; choose one of {sorted(BACKBONES)}')
    return BACKBONES[name](pretrained)
