"""Checkpoint files: atomic weights-only writes, clear errors, teacher reload, schedule restore."""
from __future__ import annotations

import pytest
import torch

from disdepth.build import build_teacher, load_model
from disdepth.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from disdepth.config import ModelConfig, TeacherConfig, config_to_dict
from disdepth.optim import build_scheduler


def _save_teacher(tmp_path, cfg):
    teacher = build_teacher(cfg.teacher, cfg.model)
    save_checkpoint(tmp_path, 'best', {'model': teacher.state_dict(), 'step': 3},
                    {'config': config_to_dict(cfg), 'task': 'teacher', 'step': 3, 'epoch': 0.1, 'metrics': {}})
    return teacher


def test_small_teacher_checkpoint_is_a_teacher_path(tmp_path, tiny_cfg):
    """A task=teacher checkpoint reloads as the distillation teacher with its own architecture and weights,
    whatever the student config's teacher fields say; a student cannot use it as a student."""
    tiny_cfg.task = 'teacher'
    teacher = _save_teacher(tmp_path, tiny_cfg)
    assert not list(tmp_path.glob('*.tmp'))  # the temporary files were renamed
    loaded = build_teacher(TeacherConfig(kind='small', path=str(tmp_path / 'best.pt'), hidden_size=999),
                           ModelConfig())
    image = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(loaded(image)['depth'], teacher.eval()(image)['depth'])
    with pytest.raises(CheckpointError, match="task='teacher' checkpoint, expected 'student'"):
        load_model(tmp_path / 'best.pt', expect_task='student')


def test_corrupt_or_missing_checkpoints_raise_checkpoint_error(tmp_path, tiny_cfg):
    """A truncated .pt, a missing file or a missing meta JSON is a CheckpointError, not a pickle trace."""
    tiny_cfg.task = 'teacher'
    _save_teacher(tmp_path, tiny_cfg)
    data = (tmp_path / 'best.pt').read_bytes()
    (tmp_path / 'best.pt').write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='corrupt'):
        load_checkpoint(tmp_path / 'best.pt')
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'nope.pt')
    with pytest.raises(CheckpointError, match='meta'):
        load_model(tmp_path / 'nope.pt')


def test_one_cycle_schedule_restores_its_position(tiny_cfg, tmp_path):
    """The OneCycleLR state saved at step k and loaded into a fresh scheduler gives the same next lrs."""
    def make():
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        return opt, build_scheduler(opt, tiny_cfg.optim, 10)
    opt, sched = make()
    for _ in range(4):
        opt.step()
        sched.step()
    save_checkpoint(tmp_path, 'last', {'model': {}, 'sched': sched.state_dict(), 'opt': opt.state_dict()}, {})
    state = load_checkpoint(tmp_path / 'last.pt')
    opt2, sched2 = make()
    opt2.load_state_dict(state['opt'])
    sched2.load_state_dict(state['sched'])
    for _ in range(5):
        assert sched2.get_last_lr() == sched.get_last_lr()
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()
