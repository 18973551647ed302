"""Distillation as a task object returning named loss terms (timm ``FeatureDistillationTask`` shape).

Paper: DisDepth, arXiv 2404.16386, section 3.4 (objective); docs/design.md section 2.

    F_s       = student.encode(I)                            4 maps, strides 4..32
    F_t       = FAM(teacher.forward_features(I))             resized to F_s's shapes
    A         = LAM(F_t)                                     [B,1,H_l,W_l], mean 1
    L         = SILog(student(I))
              + w_t    * SILog(GhostDecoder(A ⊙ F_t))        grads -> FAM, LAM (never the student decoder)
              + lambda * sum_l mean_p A_l ||F_s,l - F_t,l||^2  (A, F_t detached: grads -> student encoder)

Ablation switches (config keys): ``distill.enabled`` (False: student only), ``distill.ghost_decoder``
(False: plain feature KD, FAM trained by the KD term alone, no teacher SILog), ``distill.attention``
(lam | uniform). The KD terms run only when the caller says ``kd_active`` (after the warm-up).
With ``diagnose=True`` (the steps the trainer logs) the step also returns ``disdepth.distill.diagnostics``'
scalars of FAM, LAM and LGConv, from the tensors it computed anyway.

Only the trainable parts (student, FAM, LAM) are registered submodules, so DDP wraps and syncs just
those; a frozen teacher is held as a plain attribute and runs under ``no_grad``. With
``teacher.finetune_lr_scale > 0`` the teacher is registered too (it then needs DDP's gradient sync).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from disdepth.config import DistillConfig
from disdepth.distill.diagnostics import feature_cosine, lam_diagnostics, lgconv_activations, lgconv_parameters
from disdepth.distill.fam import FeatureAcclimation
from disdepth.distill.ghost_decoder import ghost_decode
from disdepth.distill.lam import build_attention
from disdepth.losses import attentive_kd, silog


class DistillationTask(nn.Module):
    """Student (+ FAM + LAM) and the DisDepth loss.

    Args:
        student: a ``DepthStudent``.
        teacher: a teacher from ``disdepth.build.build_teacher`` (ignored when ``cfg.enabled`` is False; may be
            None then).
        cfg: the ``distill`` config section.
        teacher_trainable: register the teacher so its encoder is fine-tuned (and DDP-synced).
    Raises:
        ValueError: ``attention='lam'`` without the ghost decoder (LAM would get no training signal),
            or distillation enabled without a teacher.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None, cfg: DistillConfig,
                 teacher_trainable: bool = False):
        super().__init__()
        self.cfg = cfg
        self.student = student
        if not cfg.enabled:
            return
        if teacher is None:
            raise ValueError('distill.enabled=true needs a teacher')
        if cfg.attention == 'lam' and not cfg.ghost_decoder:
            raise ValueError('distill.attention=lam needs distill.ghost_decoder=true: LAM is trained by the '
                             'teacher SILog through the ghost decoder; use distill.attention=uniform')
        if teacher_trainable:
            self.teacher = teacher
        else:
            # a plain attribute: not in parameters(), state_dict() or the DDP wrapper
            self.__dict__['teacher'] = teacher.requires_grad_(False).eval()
        self.teacher_trainable = teacher_trainable
        s_ch = [info['num_chs'] for info in student.feature_info]
        self.fam = FeatureAcclimation([info['num_chs'] for info in teacher.feature_info], s_ch)
        self.lam = build_attention(cfg.attention, s_ch, cfg.lam_dim)

    def teacher_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Teacher maps for image [B,3,H,W] 0..1; without autograd when the teacher is frozen."""
        if self.teacher_trainable:
            return self.teacher.forward_features(image)
        with torch.no_grad():
            return self.teacher.forward_features(image)

    def forward(self, batch: dict, kd_active: bool = True, diagnose: bool = False,
                keep_attention: bool = False) -> dict:
        """The DisDepth loss terms of one batch.

        Args:
            batch: image [B,3,H,W] 0..1, depth [B,1,H,W] metres, mask [B,1,H,W] bool.
            kd_active: add the distillation terms (after the warm-up).
            diagnose: also return the diagnostics (see ``disdepth.distill.diagnostics``).
            keep_attention: also return LAM's attention maps (for a preview image).
        Returns:
            dict(loss, silog_student, silog_teacher, kd (scalars), depth [B,1,H,W] metres); with
            ``diagnose``: diagnostics {name: scalar} (FAM and LAM ones only while the KD terms run); with
            ``keep_attention`` and LAM active: attention [A_l [B,1,H_l,W_l] detached, l = 1..4].
        """
        image, gt, mask = batch['image'], batch['depth'], batch['mask']
        with lgconv_activations(self.student) if diagnose else nullcontext({}) as lgconv_values:
            out = self.student(image)
        loss_s = silog(out['depth'], gt, mask)
        zero = loss_s.detach() * 0.0
        terms = {'silog_student': loss_s, 'silog_teacher': zero, 'kd': zero}
        result = {}
        if diagnose:
            result['diagnostics'] = {**lgconv_parameters(self.student), **lgconv_values}
        if self.cfg.enabled and kd_active:
            distill_terms, acclimated, attention = self._distill_terms(image, gt, mask, out['features'])
            terms.update(distill_terms)
            if diagnose:
                result['diagnostics'].update(self._diagnose(out['features'], acclimated, attention, gt, mask))
            if keep_attention and self.cfg.attention == 'lam':
                result['attention'] = [a.detach() for a in attention]
        loss = (terms['silog_student'] + self.cfg.teacher_silog_weight * terms['silog_teacher']
                + self.cfg.kd_weight * terms['kd'])
        return {'loss': loss, **terms, 'depth': out['depth'], **result}

    def _distill_terms(self, image, gt, mask, student_feats) -> tuple[dict, list, list]:
        """(loss terms, acclimated teacher features F_t,l, attention A_l)."""
        acclimated = self.fam(self.teacher_features(image), [f.shape[-2:] for f in student_feats])
        attention = [att(f) for att, f in zip(self.lam, acclimated, strict=True)]
        if not self.cfg.ghost_decoder:
            # plain feature KD: F_t keeps its graph, so FAM learns only from matching the student
            return {'kd': attentive_kd(student_feats, acclimated, attention)}, acclimated, attention
        weighted = [a * f for a, f in zip(attention, acclimated, strict=True)]
        ghost = ghost_decode(self.student, weighted, image.shape[-2:])
        return {'silog_teacher': silog(ghost['depth'], gt, mask),
                # detached: the KD term moves the student towards the teacher, never the reverse
                'kd': attentive_kd(student_feats, [f.detach() for f in acclimated],
                                   [a.detach() for a in attention])}, acclimated, attention

    @torch.no_grad()
    def _diagnose(self, student_feats, acclimated, attention, gt, mask) -> dict:
        """FAM cosine per scale and, with LAM, its attention statistics: {name: scalar}."""
        values = {f'fam_cosine_{level}': feature_cosine(s, t)
                  for level, (s, t) in enumerate(zip(student_feats, acclimated, strict=True), start=1)}
        if self.cfg.attention == 'lam':
            values.update(lam_diagnostics(attention, gt, mask))
        return values


class SupervisedTask(nn.Module):
    """``task=teacher``: train a depth model (the small teacher) with SILog alone.

    ``forward(batch, kd_active, diagnose, keep_attention)`` -> dict(loss, silog_teacher, depth); the flags are ignored
    (a supervised teacher has no distillation components to diagnose).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, kd_active: bool = False, diagnose: bool = False,
                keep_attention: bool = False) -> dict:
        out = self.model(batch['image'])
        loss = silog(out['depth'], batch['depth'], batch['mask'])
        return {'loss': loss, 'silog_teacher': loss, 'depth': out['depth']}

