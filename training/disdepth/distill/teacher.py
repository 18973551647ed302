"""Transformer depth teachers with multi-scale features at strides ~4, 8, 16, 32.

Paper: DisDepth, arXiv 2404.16386, section 3.1 (a Transformer teacher's multi-scale features are
acclimated to a CNN student). Reference code: Hugging Face transformers GLPN / DPT / Depth Anything.

    features = [T_1, T_2, T_3, T_4]   T_l: [B, C_l, ~H/s_l, ~W/s_l], s_l = 4, 8, 16, 32
      GLPN:                 the hierarchical (SegFormer) encoder's four stage outputs
      DPT, Depth Anything:  the neck's reassembled maps (ViT tokens -> 4 resolutions), e.g. strides
                            3.5, 7, 14, 28 for patch 14; the FAM resizes them to the student's maps
    depth    = the model's own neck/head on the same features, upsampled to the input, [B,1,H,W]

Depth units: GLPN and metric Depth Anything give metres; DPT and relative Depth Anything give
relative inverse depth (only the features are used for distillation, so either is fine as a teacher).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForDepthEstimation

from disdepth.config import ModelConfig, TeacherConfig
from disdepth.distill.small_teacher import IMAGENET_MEAN, IMAGENET_STD, SmallDepthTransformer
from disdepth.hub import LOCAL_FOLDER, load_pretrained, preprocessor_config

SUPPORTED_HF = ('glpn', 'dpt', 'depth_anything')
# Normalisation used by each family's image processor when no preprocessor_config.json is found.
_DEFAULT_NORM = {'glpn': ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), 'dpt': ((0.5,) * 3, (0.5,) * 3),
                 'depth_anything': (IMAGENET_MEAN, IMAGENET_STD), 'zoedepth': ((0.5,) * 3, (0.5,) * 3)}


class TeacherError(ValueError):
    """The teacher path is not a supported depth model, or its feature strides cannot be matched."""


def image_normalisation(source: str | None, model_type: str) -> tuple[tuple, tuple]:
    """Mean/std (RGB, for images in 0..1) the model's image processor applies: from the preprocessor_config.json
    of ``source`` (folder or hub id), else the family's default (``model_type`` a key of ``_DEFAULT_NORM``)."""
    mean, std = _DEFAULT_NORM[model_type]
    pre = preprocessor_config(source) if source else None
    if pre is not None:
        if pre.get('do_normalize', True) and 'image_mean' in pre:
            mean, std = tuple(pre['image_mean']), tuple(pre['image_std'])
        elif not pre.get('do_normalize', True):
            mean, std = (0.0,) * 3, (1.0,) * 3
    return mean, std


class HFDepthTeacher(nn.Module):
    """A transformers ``*ForDepthEstimation`` model exposing its multi-scale features.

    The input (RGB 0..1) is resized to a multiple of ``input_multiple`` (the patch size, or 32 for
    GLPN) and normalised as the model's image processor does.
    """

    def __init__(self, model: nn.Module, mean: tuple, std: tuple):
        super().__init__()
        self.model = model
        self.model_type = model.config.model_type
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        cfg = model.config
        if self.model_type == 'glpn':
            self.input_multiple = 32
        else:
            backbone_cfg = getattr(cfg, 'backbone_config', None)
            self.input_multiple = getattr(backbone_cfg, 'patch_size', None) or cfg.patch_size
        self.feature_info = _probe_feature_info(self)

    def _pixel_values(self, image: torch.Tensor) -> torch.Tensor:
        m = self.input_multiple
        h, w = image.shape[-2:]
        size = (max(m, round(h / m) * m), max(m, round(w / m) * m))
        if size != (h, w):
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
        return (image - self.mean) / self.std

    def _vit_states(self, pv: torch.Tensor) -> tuple[list, int | None, int | None]:
        """Backbone token states for DPT / Depth Anything, plus the patch grid (None for hybrids)."""
        model, cfg = self.model, self.model.config
        ph = pv.shape[-2] // self.input_multiple
        pw = pv.shape[-1] // self.input_multiple
        if getattr(model, 'backbone', None) is not None:
            states = model.backbone.forward_with_filtered_kwargs(pv).feature_maps
            return list(states), ph, pw
        out = model.dpt(pv, output_hidden_states=True)
        states = [s for i, s in enumerate(out.hidden_states[1:]) if i in cfg.backbone_out_indices]
        if cfg.is_hybrid:
            states = list(out.intermediate_activations) + states[2:]
            return states, None, None
        # transformers' DPTForDepthEstimation omits the patch grid for plain ViTs (square inputs only);
        # passing it makes non-square KITTI crops work.
        return states, ph, pw

    def forward_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image [B,3,H,W] RGB 0..1 -> 4 maps [B,C_l,h_l,w_l] (see ``feature_info``)."""
        return self._features(self._pixel_values(image))[0]

    def _features(self, pv: torch.Tensor) -> tuple[list[torch.Tensor], int | None, int | None]:
        if self.model_type == 'glpn':
            return list(self.model.glpn(pv, output_hidden_states=True).hidden_states), None, None
        states, ph, pw = self._vit_states(pv)
        stage = self.model.neck.reassemble_stage
        return (list(stage(states, ph, pw)) if stage is not None else states), ph, pw

    def forward(self, image: torch.Tensor) -> dict:
        """image [B,3,H,W] 0..1 -> dict(depth [B,1,H,W], features). Units: see the module docstring."""
        feats, ph, pw = self._features(self._pixel_values(image))
        model = self.model
        if self.model_type == 'glpn':
            pred = model.head(model.decoder(feats))
        else:
            fused = model.neck.fusion_stage([conv(f) for conv, f in zip(model.neck.convs, feats, strict=True)])
            pred = model.head(fused, ph, pw) if self.model_type == 'depth_anything' else model.head(fused)
        depth = F.interpolate(pred.unsqueeze(1), size=image.shape[-2:], mode='bilinear', align_corners=False)
        return {'depth': depth, 'features': feats}


@torch.no_grad()
def _probe_feature_info(teacher: HFDepthTeacher) -> list[dict]:
    """Measure channels and strides with one tiny forward.

    Raises:
        TeacherError: the feature strides cannot be matched to the student's 4, 8, 16, 32.
    """
    size = 4 * teacher.input_multiple
    was_training = teacher.training
    teacher.eval()
    feats = teacher._features(torch.zeros(1, 3, size, size, device=teacher.mean.device))[0]
    teacher.train(was_training)
    strides = [size / f.shape[-1] for f in feats]
    ok = len(feats) == 4 and 2.5 <= strides[0] <= 6 and all(
        1.5 <= b / a <= 2.5 for a, b in zip(strides, strides[1:], strict=False))
    if not ok:
        raise TeacherError(f'teacher {teacher.model_type}: feature strides {strides} cannot be matched to '
                           'the student strides 4, 8, 16, 32 (need 4 maps, each half the previous)')
    return [dict(num_chs=f.shape[1], reduction=r, stride=s, module=f'feature{i}')
            for i, (f, r, s) in enumerate(zip(feats, (4, 8, 16, 32), strides, strict=True))]


TEACHER_INSTEAD = f'{LOCAL_FOLDER}, or teacher.kind=small with a task=teacher checkpoint as teacher.path'


def _load_hf_config(cfg: TeacherConfig):
    """The transformers config at ``cfg.path``.

    Raises:
        TeacherError: no path, or not a supported depth model type.
        ModelSourceError: ``cfg.path`` cannot be loaded (one line).
    """
    if not cfg.path:
        raise TeacherError('teacher.kind=hf needs teacher.path (a local folder or hub id of a depth model)')
    hf_cfg = load_pretrained(AutoConfig.from_pretrained, cfg.path, 'teacher.path', TEACHER_INSTEAD)
    if hf_cfg.model_type not in SUPPORTED_HF:
        raise TeacherError(f'teacher.path={cfg.path!r} is a {hf_cfg.model_type!r} model; supported depth '
                           f'teachers: {SUPPORTED_HF}')
    return hf_cfg


def _load_hf_model(cfg: TeacherConfig) -> nn.Module:
    """``AutoModelForDepthEstimation`` from a local folder or hub id; weights skipped if ``random_init``."""
    hf_cfg = _load_hf_config(cfg)
    if cfg.random_init:
        return AutoModelForDepthEstimation.from_config(hf_cfg)
    return load_pretrained(AutoModelForDepthEstimation.from_pretrained, cfg.path, 'teacher.path', TEACHER_INSTEAD)


def build_hf_teacher(cfg: TeacherConfig) -> HFDepthTeacher:
    """``AutoModelForDepthEstimation`` at ``cfg.path`` (GLPN, DPT, Depth Anything V1/V2), as a teacher.

    Returns:
        An :class:`HFDepthTeacher` (``feature_info``, ``forward_features``, ``forward``; see its docstring).
    Raises:
        TeacherError: no path, unsupported model type, unmatched strides.
        ModelSourceError: ``cfg.path`` cannot be loaded (no folder, no weights, hub unreachable).
    """
    model = _load_hf_model(cfg)
    return HFDepthTeacher(model, *image_normalisation(cfg.path, model.config.model_type))


def build_small_teacher(cfg: TeacherConfig, model_cfg: ModelConfig) -> SmallDepthTransformer:
    """A new :class:`SmallDepthTransformer` from the ``cfg`` fields, with the student's depth range (metres).

    Its trained weights, a ``task=teacher`` checkpoint at ``cfg.path``, are loaded by
    ``disdepth.build.build_teacher``, which knows the checkpoint format.
    """
    return SmallDepthTransformer(patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
                                 num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                                 neck_channels=cfg.neck_channels, min_depth=model_cfg.min_depth,
                                 max_depth=model_cfg.max_depth)


def check_metric_teacher(cfg: TeacherConfig) -> None:
    """Raise TeacherError unless the teacher's depth is metric and trained, so it can be a training target.

    Metric: GLPN, Depth Anything with ``depth_estimation_type: metric`` (V2 Metric), a trained small
    teacher (SILog in metres). DPT and relative Depth Anything predict relative inverse depth; a small
    teacher without a checkpoint and ``random_init`` have no trained weights.
    """
    instead = 'give the recording\'s depth as ground truth (data.depth_topic) or use a metric teacher'
    if cfg.kind == 'small':
        if not cfg.path:
            raise TeacherError(f'teacher.kind=small without teacher.path is untrained and cannot give depth '
                               f'targets; {instead} (a task=teacher checkpoint, GLPN or Depth Anything V2 Metric)')
        return
    hf_cfg = _load_hf_config(cfg)
    if hf_cfg.model_type != 'glpn' and getattr(hf_cfg, 'depth_estimation_type', None) != 'metric':
        raise TeacherError(f'teacher.path={cfg.path!r} ({hf_cfg.model_type}) predicts relative depth, which '
                           f'cannot be a metric target; {instead} (GLPN or Depth Anything V2 Metric)')
    if cfg.random_init:
        raise TeacherError(f'teacher.random_init=true has no trained weights to give depth targets; {instead}')

