"""Gradient routing of the DisDepth loss, checked numerically on a tiny student and teacher."""
from __future__ import annotations

import copy

import pytest
import torch

from disdepth.build import build_teacher
from disdepth.distill.ghost_decoder import ghost_decode
from disdepth.distill.task import DistillationTask
from disdepth.models.student import build_student


def _task(cfg, **distill):
    for key, value in distill.items():
        setattr(cfg.distill, key, value)
    torch.manual_seed(0)
    student = build_student(cfg.model)
    teacher = build_teacher(cfg.teacher, cfg.model)
    return DistillationTask(student, teacher, cfg.distill)


def _batch():
    g = torch.Generator().manual_seed(1)
    depth = torch.rand(2, 1, 32, 64, generator=g) * 40 + 1
    return {'image': torch.rand(2, 3, 32, 64, generator=g), 'depth': depth, 'mask': depth > 5}


def _grad_norms(module, prefix):
    """{name: |grad|} for parameters under ``prefix``; None where no gradient arrived."""
    return {n: (None if p.grad is None else p.grad.abs().sum().item())
            for n, p in module.named_parameters() if n.startswith(prefix)}


def _backward(task, term, kd_active=True):
    task.zero_grad(set_to_none=True)
    out = task(_batch(), kd_active=kd_active)
    out[term].backward()
    return out


def _reached(norms):
    return any(v for v in norms.values())


def test_teacher_silog_trains_fam_and_lam_but_not_the_student(tiny_cfg):
    """SILog(teacher via ghost) changes FAM and LAM; the student decoder/head/encoder get nothing."""
    task = _task(tiny_cfg)
    torch.nn.init.normal_(task.lam[0].query.weight)  # past init, so LAM keys get gradient too
    _backward(task, 'silog_teacher')
    assert all(v for v in _grad_norms(task, 'fam.').values())
    assert _reached(_grad_norms(task, 'lam.0.key.')) and _reached(_grad_norms(task, 'lam.0.query.'))
    assert not _reached(_grad_norms(task, 'student.'))


def test_kd_reaches_the_student_encoder_only(tiny_cfg):
    """L_kd moves the student encoder; FAM, LAM (teacher side) and the student decoder get no gradient."""
    task = _task(tiny_cfg)
    _backward(task, 'kd')
    assert _reached(_grad_norms(task, 'student.backbone.'))
    assert not _reached(_grad_norms(task, 'student.decoder.')) and not _reached(_grad_norms(task, 'student.head.'))
    assert not _reached(_grad_norms(task, 'fam.')) and not _reached(_grad_norms(task, 'lam.'))


def test_full_loss_gives_every_trainable_parameter_a_gradient(tiny_cfg):
    """timm-style backward test: with KD active every trainable parameter receives a gradient."""
    task = _task(tiny_cfg)
    _backward(task, 'loss')
    missing = [n for n, p in task.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert not any(n.startswith('teacher') for n, _ in task.named_parameters())  # frozen: outside the module


def test_warmup_and_plain_kd_switches(tiny_cfg):
    """Warm-up: only the student SILog; plain KD (no ghost decoder): FAM learns from KD, no teacher SILog."""
    task = _task(tiny_cfg)
    out = _backward(task, 'loss', kd_active=False)
    assert out['kd'].item() == 0 and out['silog_teacher'].item() == 0
    assert not _reached(_grad_norms(task, 'fam.'))
    plain = _task(copy.deepcopy(tiny_cfg), ghost_decoder=False, attention='uniform')
    out = _backward(plain, 'loss')
    assert out['silog_teacher'].item() == 0 and out['kd'].item() > 0
    assert _reached(_grad_norms(plain, 'fam.'))
    with pytest.raises(ValueError, match='needs distill.ghost_decoder=true'):
        _task(copy.deepcopy(tiny_cfg), ghost_decoder=False, attention='lam')


def test_ghost_decoder_tracks_the_student_decoder_after_optimiser_steps(tiny_cfg):
    """The ghost decoder is the student decoder with its current weights, and leaves BN statistics alone."""
    task = _task(tiny_cfg)
    student = task.student
    feats = [f.detach() for f in student.encode(torch.rand(2, 3, 32, 64))]
    opt = torch.optim.SGD(task.parameters(), lr=0.1)
    previous = None
    for _ in range(2):
        _backward(task, 'loss')
        opt.step()
        running = {n: b.clone() for n, b in student.named_buffers()}
        ghost_decode(student, feats, (32, 64))  # train mode: BN uses batch statistics ...
        assert all(torch.equal(b, running[n]) for n, b in student.named_buffers())  # ... on private copies
        student.eval()  # eval mode so the reference call does not move the statistics either
        ghost = ghost_decode(student, feats, (32, 64))['depth']
        assert torch.allclose(ghost, student.decode(feats, (32, 64))['depth'])
        assert previous is None or not torch.allclose(ghost, previous)  # it followed the update
        previous = ghost
        student.train()
