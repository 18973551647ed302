"""Assembly: the teacher, the model of a checkpoint, the training task and the pseudo-label teacher of a config.

The one module that knows how the parts fit, so that the parts need not import each other:

    build_teacher(cfg.teacher, cfg.model)   a Hugging Face depth model, a new small teacher, or a small teacher
                                            trained here (a task=teacher checkpoint at teacher.path)
    load_model(path)                        the student or teacher of a checkpoint (its meta config + weights)
    build_task(cfg, device)                 what distill.py trains: DistillationTask or SupervisedTask
    build_labeller(cfg)                     the frozen teacher whose depth is the target of recordings
                                            without a depth topic (or None)

``checkpoint`` is the file format alone, ``distill.teacher`` the teacher architectures and ``data`` the datasets
(given their labeller); a small teacher is a checkpoint, so only this module needs both.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from disdepth.checkpoint import CheckpointError, load_checkpoint, read_meta
from disdepth.config import Config, ConfigError, ModelConfig, TeacherConfig, config_from_dict
from disdepth.distill.labels import LabelTeacher
from disdepth.distill.task import DistillationTask, SupervisedTask
from disdepth.distill.teacher import TeacherError, build_hf_teacher, build_small_teacher
from disdepth.models.student import build_student


def build_teacher(cfg: TeacherConfig, model_cfg: ModelConfig) -> nn.Module:
    """Build the teacher named by ``cfg`` (docs/design.md section 2).

    kind='hf': ``AutoModelForDepthEstimation`` at ``cfg.path`` (GLPN, DPT, Depth Anything V1/V2).
    kind='small': :class:`SmallDepthTransformer` from the ``cfg`` fields; if ``cfg.path`` is set it is
    a checkpoint of a ``task=teacher`` run and its own architecture and weights are loaded.

    Returns:
        A module with ``feature_info`` (4 dicts: num_chs, reduction 4/8/16/32, measured stride),
        ``forward_features(image [B,3,H,W] 0..1) -> list of 4 maps`` and ``forward -> dict(depth, features)``.
    Raises:
        TeacherError: unsupported model type, unmatched strides.
        ModelSourceError: ``kind='hf'`` path that cannot be loaded (no folder, no weights, hub unreachable).
        CheckpointError: ``kind='small'`` checkpoint that is corrupt or not a teacher.
    """
    if cfg.kind == 'hf':
        return build_hf_teacher(cfg)
    if cfg.kind != 'small':
        raise TeacherError(f'teacher.kind={cfg.kind!r}; valid: small, hf')
    if cfg.path:
        teacher, _ = load_model(cfg.path, expect_task='teacher')
        return teacher
    return build_small_teacher(cfg, model_cfg)


def load_model(checkpoint_path: str | Path, device: str | torch.device = 'cpu',
               expect_task: str | None = None) -> tuple[nn.Module, Config]:
    """Rebuild the trained model (student or teacher) from ``checkpoint_path`` and its meta JSON.

    Returns:
        (model in eval mode on ``device``, its Config); ``model(image [B,3,H,W] 0..1)`` returns a dict with
        'depth' [B,1,H,W] metres.
    Raises:
        CheckpointError: missing/corrupt files, a task other than ``expect_task``, or weights that do
            not fit the architecture in the meta config.
    """
    meta = read_meta(checkpoint_path)
    try:
        cfg = config_from_dict(meta['config'])
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f'{checkpoint_path}: meta has no valid config: {exc}') from exc
    task = meta.get('task', cfg.task)
    if expect_task is not None and task != expect_task:
        raise CheckpointError(f'{checkpoint_path} is a task={task!r} checkpoint, expected {expect_task!r}')
    state = load_checkpoint(checkpoint_path)
    # pretrained/teacher weight paths are not needed (the checkpoint has the weights) and may not exist here
    cfg.model.pretrained = None
    if task == 'teacher':
        cfg.teacher = teacher_without_path(cfg.teacher)
        model = build_teacher(cfg.teacher, cfg.model)
    else:
        model = build_student(cfg.model)
    try:
        model.load_state_dict(state['model'])
    except RuntimeError as exc:
        raise CheckpointError(f'{checkpoint_path}: weights do not match the {task} architecture: {exc}') from exc
    return model.to(device).eval(), cfg


def teacher_without_path(cfg: TeacherConfig) -> TeacherConfig:
    """The same teacher architecture without loading weights (the checkpoint being restored has them).

    small: no checkpoint path; hf: config.json only (the folder is still needed for the architecture).
    """
    return replace(cfg, path=None) if cfg.kind == 'small' else replace(cfg, random_init=True)


def build_task(cfg: Config, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(task module to train and wrap in DDP, the model whose weights are the checkpoint's 'model').

    ``task=teacher``: SupervisedTask over a teacher; otherwise DistillationTask over a student (and, with
    ``distill.enabled``, a teacher; trainable when ``teacher.finetune_lr_scale > 0``).
    Raises:
        TeacherError: the teacher cannot be built (see ``build_teacher``).
    """
    if cfg.task == 'teacher':
        teacher = build_teacher(cfg.teacher, cfg.model).to(device)
        return SupervisedTask(teacher), teacher
    student = build_student(cfg.model).to(device)
    teacher = None
    if cfg.distill.enabled:
        teacher = build_teacher(cfg.teacher, cfg.model).to(device)
    task = DistillationTask(student, teacher, cfg.distill, teacher_trainable=cfg.teacher.finetune_lr_scale > 0)
    return task.to(device), student


def build_labeller(cfg: Config) -> LabelTeacher | None:
    """The pseudo-label teacher for ``build_dataset(cfg.data, split, labeller=)``: a ``LabelTeacher`` of
    ``cfg.teacher`` for recordings without a depth topic, None for every other dataset (they have depth).

    Raises:
        TeacherError: the teacher's depth is not metric or not trained (before any frame is decoded).
    """
    if cfg.data.dataset != 'recordings' or cfg.data.depth_topic is not None:
        return None
    return LabelTeacher(cfg.teacher, partial(build_teacher, cfg.teacher, cfg.model))
