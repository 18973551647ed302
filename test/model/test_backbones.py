"""Backbone contract (timm's test_model_forward_features): channels and strides match feature_info."""
import pytest
import torch
from transformers import MobileNetV2Config, MobileNetV2Model, ResNetConfig, ResNetModel

from disdepth.models.backbones import BACKBONES, build_backbone


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_feature_info_matches_forward(name):
    """Decoder, FAM and LAM read channels from feature_info, so it must match the real maps."""
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 96))
    assert [info['reduction'] for info in backbone.feature_info] == [4, 8, 16, 32]
    assert len(feats) == 4
    for feat, info in zip(feats, backbone.feature_info, strict=True):
        assert feat.shape == (1, info['num_chs'], 64 // info['reduction'], 96 // info['reduction'])
        assert torch.isfinite(feat).all()
        backbone.get_submodule(info['module'])  # the named module exists


def test_required_backbones_registered():
    """The plan promises these four names to every config and helper."""
    assert {'resnet18', 'resnet34', 'resnet50', 'mobilenet_v2'} <= set(BACKBONES)


def test_unknown_backbone_lists_choices():
    """A typo in a config must say which names exist."""
    with pytest.raises(ValueError, match='resnet18'):
        build_backbone('resnet19')


@pytest.mark.parametrize('name,model', [
    ('resnet18', lambda: ResNetModel(ResNetConfig(layer_type='basic', depths=[1, 1, 1, 1],
                                                  hidden_sizes=[8, 16, 24, 32], embedding_size=8))),
    ('mobilenet_v2', lambda: MobileNetV2Model(MobileNetV2Config(depth_multiplier=0.35))),
])
def test_pretrained_loads_from_local_folder(tmp_path, name, model):
    """Robots and clusters have no internet: weights come from a local HF folder (docs/design.md section 4)."""
    reference = model().eval()
    reference.save_pretrained(tmp_path)
    backbone = build_backbone(name, str(tmp_path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = backbone(x)
        hidden = reference(x, output_hidden_states=True).hidden_states
    # The last backbone map equals the HF model's hidden state at the same depth, so weights were loaded.
    assert any(h.shape == feats[-1].shape and torch.allclose(h, feats[-1]) for h in hidden)
