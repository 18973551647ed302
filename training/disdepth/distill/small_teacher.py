"""A small Transformer depth teacher (ViT encoder + DPT-style reassemble neck), trained from scratch.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (Transformer teacher); DPT (Ranftl et al. 2021) for
the reassemble neck. It stands in for Depth Anything / GLPN in the CPU demo and the tests.

    tokens = ViT( PatchEmbed_p(image) + pos )                  grid (H/p, W/p), width D
    F_l    = Resize_{p/s_l}( Conv1x1(tokens after block i_l) ) strides s_l = 4, 8, 16, 32
    depth  = min + (max - min) * sigmoid( Head( FPN(F_1..F_4) ) )   metres, upsampled to H x W
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDES = (4, 8, 16, 32)


def _resize_layer(channels: int, factor: float) -> nn.Module:
    """Token grid (stride p) -> stride p / factor: transposed conv up, identity, or strided conv down."""
    if factor > 1:
        return nn.ConvTranspose2d(channels, channels, kernel_size=int(factor), stride=int(factor))
    if factor == 1:
        return nn.Identity()
    return nn.Conv2d(channels, channels, kernel_size=3, stride=int(round(1 / factor)), padding=1)


class SmallDepthTransformer(nn.Module):
    """ViT + reassemble neck + FPN decoder + sigmoid depth head, random init.

    Args:
        patch_size: ViT patch (power of two, 4..32), pixels.
        hidden_size, num_layers (>= 4), num_heads: ViT width, depth and heads.
        neck_channels: reassembled channels are neck_channels * (1/2, 1, 2, 4) for strides 4..32.
        min_depth, max_depth: output range, metres.
    Raises:
        ValueError: a patch size that is not a power of two in 4..32, or fewer than 4 layers.
    """

    def __init__(self, *, patch_size: int = 8, hidden_size: int = 128, num_layers: int = 4,
                 num_heads: int = 4, neck_channels: int = 64, min_depth: float = 1e-3,
                 max_depth: float = 80.0):
        super().__init__()
        if patch_size not in (4, 8, 16, 32):
            raise ValueError(f'small teacher: patch_size {patch_size} must be 4, 8, 16 or 32')
        if num_layers < 4:
            raise ValueError(f'small teacher: num_layers {num_layers} < 4 (one block per output scale)')
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.patch_embed = nn.Conv2d(3, hidden_size, kernel_size=patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, hidden_size, 16, 16) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(hidden_size, num_heads, 4 * hidden_size, dropout=0.0,
                                       activation='gelu', batch_first=True, norm_first=True)
            for _ in range(num_layers))
        # evenly spaced blocks feed the 4 scales, as DPT taps layers (2, 5, 8, 11) of ViT-B
        self.taps = [round((i + 1) * num_layers / 4) - 1 for i in range(4)]
        chans = [max(8, neck_channels // 2), neck_channels, neck_channels * 2, neck_channels * 4]
        self.reassemble = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden_size, c, kernel_size=1), _resize_layer(c, patch_size / s))
            for c, s in zip(chans, STRIDES, strict=True))
        self.feature_info = [dict(num_chs=c, reduction=s, stride=float(s), module=f'reassemble.{i}')
                             for i, (c, s) in enumerate(zip(chans, STRIDES, strict=True))]
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck_channels, kernel_size=1) for c in chans)
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(neck_channels, neck_channels, 3, padding=1), nn.ReLU(inplace=True))
            for _ in chans)
        self.head = nn.Sequential(nn.Conv2d(neck_channels, neck_channels // 2, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(neck_channels // 2, 1, 1))

    def forward_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image [B,3,H,W] RGB 0..1 -> 4 maps [B,C_l,~H/s_l,~W/s_l], s_l = 4, 8, 16, 32."""
        x = self.patch_embed((image - self.mean) / self.std)  # (B, D, h, w)
        b, d, h, w = x.shape
        x = x + F.interpolate(self.pos_embed, size=(h, w), mode='bilinear', align_corners=False)
        tokens = x.flatten(2).transpose(1, 2)  # (B, h*w, D)
        taps = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in self.taps:
                taps.append(tokens.transpose(1, 2).reshape(b, d, h, w))
        return [layer(t) for layer, t in zip(self.reassemble, taps, strict=True)]

    def decode(self, feats: list[torch.Tensor], out_size: tuple[int, int]) -> torch.Tensor:
        """FPN top-down fusion + head: 4 maps -> depth [B,1,*out_size] metres."""
        x = self.smooth[3](self.lateral[3](feats[3]))
        for i in (2, 1, 0):
            lat = self.lateral[i](feats[i])
            x = F.interpolate(x, size=lat.shape[-2:], mode='bilinear', align_corners=False)
            x = self.smooth[i](x + lat)
        x = F.interpolate(self.head(x), size=tuple(out_size), mode='bilinear', align_corners=False)
        return self.min_depth + (self.max_depth - self.min_depth) * torch.sigmoid(x)

    def forward(self, image: torch.Tensor) -> dict:
        """image [B,3,H,W] 0..1 -> dict(depth [B,1,H,W] metres, features list of 4 maps)."""
        feats = self.forward_features(image)
        return {'depth': self.decode(feats, tuple(image.shape[-2:])), 'features': feats}
