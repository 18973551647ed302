"""Teachers: HF GLPN / DPT / Depth Anything from tiny random configs, the small teacher, bad paths."""
from __future__ import annotations

import pytest
import torch
from tiny_teachers import TINY_KINDS, write_tiny_teacher

from disdepth.build import build_teacher
from disdepth.config import ModelConfig, TeacherConfig
from disdepth.distill.teacher import TeacherError
from disdepth.hub import ModelSourceError


@pytest.mark.parametrize('kind', TINY_KINDS)
def test_hf_teacher_features_have_strides_4_to_32(tmp_path, kind):
    """Each HF family exposes 4 maps at strides ~4, 8, 16, 32 (ViT-14: 3.5..28), channels as declared."""
    folder = write_tiny_teacher(tmp_path, kind)
    teacher = build_teacher(TeacherConfig(kind='hf', path=str(folder), random_init=True), ModelConfig()).eval()
    assert [i['reduction'] for i in teacher.feature_info] == [4, 8, 16, 32]
    strides = [i['stride'] for i in teacher.feature_info]
    assert all(b == pytest.approx(2 * a) for a, b in zip(strides, strides[1:], strict=False))
    with torch.no_grad():
        out = teacher(torch.rand(2, 3, 64, 128))
    assert out['depth'].shape == (2, 1, 64, 128)
    assert [f.shape[1] for f in out['features']] == [i['num_chs'] for i in teacher.feature_info]
    # a non-square input works for every family (transformers' own DPT forward only takes squares)
    widths = [f.shape[-1] for f in out['features']]
    assert all(a == pytest.approx(2 * b, abs=1) for a, b in zip(widths, widths[1:], strict=False))


def test_small_teacher_features_and_depth_range():
    """The small teacher gives exact strides 4..32 and depth in (min, max] metres."""
    teacher = build_teacher(TeacherConfig(hidden_size=32, num_heads=2, neck_channels=16),
                            ModelConfig(max_depth=10.0))
    out = teacher(torch.rand(1, 3, 64, 128))
    assert [tuple(f.shape[-2:]) for f in out['features']] == [(16, 32), (8, 16), (4, 8), (2, 4)]
    assert out['depth'].shape == (1, 1, 64, 128)
    assert 0 < out['depth'].min() and out['depth'].max() <= 10.0


def test_teacher_path_that_is_not_a_depth_model_is_rejected(tmp_path):
    """A classification model (ViT) is refused with the supported list; a missing folder too."""
    from transformers import ViTConfig
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(
        tmp_path / 'vit')
    with pytest.raises(TeacherError, match="'vit' model; supported"):
        build_teacher(TeacherConfig(kind='hf', path=str(tmp_path / 'vit'), random_init=True), ModelConfig())
    with pytest.raises(ModelSourceError, match="teacher.path='.*missing' cannot be loaded: no such folder; give"):
        build_teacher(TeacherConfig(kind='hf', path=str(tmp_path / 'missing')), ModelConfig())


def test_teacher_whose_strides_cannot_be_matched_is_rejected(tmp_path):
    """A DPT neck reassembling every scale at the same resolution cannot feed strides 4..32."""
    from transformers import DPTConfig
    DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=64,
              patch_size=16, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 64],
              reassemble_factors=[1, 1, 1, 1], fusion_hidden_size=16, head_hidden_size=8).save_pretrained(
        tmp_path / 'flat')
    with pytest.raises(TeacherError, match='cannot be matched'):
        build_teacher(TeacherConfig(kind='hf', path=str(tmp_path / 'flat'), random_init=True), ModelConfig())
