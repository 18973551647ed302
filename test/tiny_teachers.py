"""Tiny random Hugging Face depth-model configs, written to folders, standing in for teacher weights and for the
pretrained metric models a user downloads.

Shipped configs name real teacher folders (GLPN, Depth Anything) the user downloads; tests point
``teacher.path`` at one of these folders with ``teacher.random_init=true`` (config.json only), and
``export.py --hf`` at one written with its weights (``write_tiny_model``), as a locally saved model.
"""
from __future__ import annotations

from pathlib import Path


def _configs(initializer_range: float = 0.02) -> dict:
    from transformers import BeitConfig, DepthAnythingConfig, Dinov2Config, DPTConfig, GLPNConfig, ZoeDepthConfig
    init = dict(initializer_range=initializer_range)
    glpn = GLPNConfig(num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1],
                      hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 2, 2],
                      mlp_ratios=[2, 2, 2, 2], decoder_hidden_size=16, max_depth=10, **init)
    dpt = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                    image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                    neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16, head_hidden_size=8, **init)
    dino = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                        image_size=56, patch_size=14, out_features=['stage1', 'stage2', 'stage3', 'stage4'],
                        reshape_hidden_states=False, **init)
    da = dict(backbone_config=dino, reassemble_hidden_size=32, patch_size=14, neck_hidden_sizes=[8, 16, 32, 64],
              fusion_hidden_size=16, head_hidden_size=8, **init)
    beit = BeitConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                      intermediate_size=64, use_relative_position_bias=True, reshape_hidden_states=False,
                      out_features=['stage1', 'stage2', 'stage3', 'stage4'], **init)
    zoedepth = ZoeDepthConfig(backbone_config=beit, neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16,
                              bottleneck_features=16, num_relative_features=8, bin_embedding_dim=16,
                              bin_configurations=[{'n_bins': 16, 'min_depth': 1e-3, 'max_depth': 10.0}], **init)
    return {'glpn': glpn, 'dpt': dpt, 'depth_anything': DepthAnythingConfig(**da),
            'depth_anything_metric': DepthAnythingConfig(**da, depth_estimation_type='metric', max_depth=20),
            'zoedepth': zoedepth}


TINY_KINDS = ('glpn', 'dpt', 'depth_anything')  # the teacher families
METRIC_KINDS = ('depth_anything_metric', 'glpn', 'zoedepth')  # the families export.py --hf serves


def tiny_config(kind: str, initializer_range: float = 0.02, **changes):
    """The tiny transformers config of ``kind`` (a key of ``_configs``), with ``changes`` set on it."""
    config = _configs(initializer_range)[kind]
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def write_tiny_teacher(root: Path, kind: str) -> Path:
    """Write ``root/kind/config.json`` for a tiny random ``kind`` model; returns the folder."""
    folder = Path(root) / kind
    if not (folder / 'config.json').is_file():
        tiny_config(kind).save_pretrained(folder)
    return folder


def write_tiny_model(folder: Path, kind: str, **changes) -> Path:
    """Save a tiny random ``kind`` model with its weights to ``folder`` (config.json + model.safetensors), as a
    downloaded model would be; weights from torch seed 0, initialiser std 0.1 (HF's 0.02 gives a nearly constant
    depth at this size). Returns the folder."""
    import torch
    from transformers import AutoModelForDepthEstimation

    torch.manual_seed(0)
    AutoModelForDepthEstimation.from_config(tiny_config(kind, 0.1, **changes)).save_pretrained(folder)
    return Path(folder)
