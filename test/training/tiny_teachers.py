"""Tiny random Hugging Face depth-model configs, written to folders, standing in for teacher weights.

Shipped configs name real teacher folders (GLPN, Depth Anything) the user downloads; tests point
``teacher.path`` at one of these folders with ``teacher.random_init=true`` (config.json only).
"""
from __future__ import annotations

from pathlib import Path


def _configs() -> dict:
    from transformers import DepthAnythingConfig, Dinov2Config, DPTConfig, GLPNConfig
    glpn = GLPNConfig(num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1],
                      hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 2, 2],
                      mlp_ratios=[2, 2, 2, 2], decoder_hidden_size=16, max_depth=10)
    dpt = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                    image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                    neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16, head_hidden_size=8)
    dino = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                        image_size=56, patch_size=14, out_features=['stage1', 'stage2', 'stage3', 'stage4'],
                        reshape_hidden_states=False)
    da = DepthAnythingConfig(backbone_config=dino, reassemble_hidden_size=32, patch_size=14,
                             neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16, head_hidden_size=8)
    return {'glpn': glpn, 'dpt': dpt, 'depth_anything': da}


TINY_KINDS = ('glpn', 'dpt', 'depth_anything')


def write_tiny_teacher(root: Path, kind: str) -> Path:
    """Write ``root/kind/config.json`` for a tiny random ``kind`` model; returns the folder."""
    folder = Path(root) / kind
    if not (folder / 'config.json').is_file():
        _configs()[kind].save_pretrained(folder)
    return folder
