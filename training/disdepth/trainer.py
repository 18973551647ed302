"""Training library behind ``training/distill.py``: runtime, models, optimiser, data, AMP, state.

Paper: DisDepth, arXiv 2404.16386, section 4.1 (AdamW 1e-4, one-cycle, 24 epochs); docs/design.md sections
2-3. One trainer serves ``task=teacher`` (supervised small teacher), the student baseline
(``distill.enabled=false``) and distillation.

    epoch(step)  = step / steps_per_epoch            (steps_per_epoch = len(loader) unless set)
    kd_active    = epoch(step) >= distill.warmup_epochs
    lr groups    = backbone: lr * backbone_lr_scale; decoder/head/FAM/LAM: lr; teacher: lr * finetune_lr_scale

Distributed: launched by ``torchrun`` (env RANK, WORLD_SIZE, LOCAL_RANK), one process per device;
gloo on CPU, nccl on CUDA. ``data.batch_size`` is per process.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from disdepth.config import Config
from disdepth.data.splits import DatasetError
from disdepth.distill.task import DistillationTask, SupervisedTask
from disdepth.distill.teacher import build_teacher
from disdepth.models.student import build_student


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the message names the step. ``last.pt`` is left untouched."""


@dataclass
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_runtime(cfg: Config) -> Runtime:
    """Device from ``trainer.device``; joins the torchrun process group when WORLD_SIZE > 1.

    Raises:
        RuntimeError: ``trainer.device=cuda`` without a CUDA device.
    """
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank, local_rank = int(os.environ.get('RANK', '0')), int(os.environ.get('LOCAL_RANK', '0'))
    want = cfg.trainer.device
    if want == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('trainer.device=cuda but torch sees no CUDA device')
    use_cuda = want == 'cuda' or (want == 'auto' and torch.cuda.is_available())
    device = torch.device('cuda', local_rank) if use_cuda else torch.device('cpu')
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo')
    return Runtime(rank, world, device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (each rank passes seed + rank)."""
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_task(cfg: Config, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(task module to train and wrap in DDP, the model whose weights are the checkpoint's 'model')."""
    if cfg.task == 'teacher':
        teacher = build_teacher(cfg.teacher, cfg.model).to(device)
        return SupervisedTask(teacher), teacher
    student = build_student(cfg.model).to(device)
    teacher = None
    if cfg.distill.enabled:
        teacher = build_teacher(cfg.teacher, cfg.model).to(device)
    task = DistillationTask(student, teacher, cfg.distill, teacher_trainable=cfg.teacher.finetune_lr_scale > 0)
    return task.to(device), student


def build_optimizer(task: nn.Module, cfg: Config) -> torch.optim.AdamW:
    """AdamW; groups by lr scale (backbone, teacher, rest) and decay (no decay on biases and norms)."""
    scales = {'backbone': cfg.optim.backbone_lr_scale, 'teacher': cfg.teacher.finetune_lr_scale, 'rest': 1.0}
    groups: dict[tuple[str, bool], list] = {}
    for name, p in task.named_parameters():
        if not p.requires_grad:
            continue
        part = ('teacher' if name.startswith('teacher.')
                else 'backbone' if name.startswith('student.backbone.') else 'rest')
        groups.setdefault((part, p.ndim > 1), []).append(p)
    param_groups = [{'params': ps, 'lr': cfg.optim.lr * scales[part],
                     'weight_decay': cfg.optim.weight_decay if decay else 0.0}
                    for (part, decay), ps in sorted(groups.items()) if scales[part] > 0]
    return torch.optim.AdamW(param_groups, lr=cfg.optim.lr)


def wrap_ddp(task: nn.Module, rt: Runtime) -> nn.Module:
    """DDP over the trainable task only (the frozen teacher is not a submodule)."""
    if not rt.distributed:
        return task
    # FAM/LAM get no gradient during the warm-up (KD off), so DDP must tolerate unused parameters
    return nn.parallel.DistributedDataParallel(
        task, device_ids=[rt.device.index] if rt.device.type == 'cuda' else None,
        find_unused_parameters=isinstance(task, DistillationTask) and task.cfg.enabled)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start mid-epoch (``set_start``), for exact ``--resume``."""

    def __init__(self, dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def build_loaders(cfg: Config, rt: Runtime) -> tuple[DataLoader, ResumableSampler, object]:
    """(train loader, its sampler, held-out test dataset). Raises the dataset's ``DatasetError``."""
    from disdepth.data import build_dataset
    train_set = build_dataset(cfg.data, 'train', teacher=cfg.teacher)
    val_set = build_dataset(cfg.data, 'test', teacher=cfg.teacher)
    sampler = ResumableSampler(train_set, rt.world_size, rt.rank, cfg.trainer.seed)
    if sampler.num_samples < cfg.data.batch_size:
        raise DatasetError(f'{sampler.num_samples} training images per process < data.batch_size '
                           f'{cfg.data.batch_size}')
    # a private generator: creating a loader iterator must not consume the global RNG, or a resumed
    # run (which creates its iterator at a different moment) would diverge from an uninterrupted one
    gen = torch.Generator()
    loader = DataLoader(train_set, batch_size=cfg.data.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.data.num_workers, generator=gen,
                        pin_memory=rt.device.type == 'cuda')
    return loader, sampler, val_set


def resolve_camera(cfg: Config, train_set) -> bool:
    """Recordings: set ``data.focal_length`` (null) to the recorded camera's at the export size
    (data.eval_width x eval_height), which export.py writes into the model. Returns whether it changed."""
    if cfg.data.dataset != 'recordings' or cfg.data.focal_length is not None:
        return False
    cfg.data.focal_length = train_set.focal_length(cfg.data.eval_width, cfg.data.eval_height)
    return True


def batches_per_epoch(sampler: ResumableSampler, batch_size: int) -> int:
    return sampler.num_samples // batch_size


def infinite_batches(loader: DataLoader, sampler: ResumableSampler, start_step: int, seed: int):
    """Yield batches forever from ``start_step`` (batches already consumed), epoch after epoch.

    Worker seeds are a function of (seed, epoch), so a resumed epoch gets the same workers' seeds.
    """
    per_epoch = batches_per_epoch(sampler, loader.batch_size)
    epoch, offset = divmod(start_step, per_epoch)
    while True:
        loader.generator.manual_seed(seed + 1009 * epoch)
        sampler.set_epoch(epoch)
        sampler.set_start(offset * loader.batch_size)
        yield from loader
        epoch, offset = epoch + 1, 0


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def amp_context(cfg: Config, device: torch.device):
    """Autocast on CUDA only (bf16 or fp16); CPU runs in float32."""
    if device.type != 'cuda' or not cfg.trainer.amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.trainer.amp_dtype == 'bf16' else torch.float16
    return torch.autocast('cuda', dtype=dtype)


def make_scaler(cfg: Config, device: torch.device) -> torch.amp.GradScaler:
    """GradScaler, enabled only for fp16 autocast on CUDA (bf16 needs none)."""
    on = device.type == 'cuda' and cfg.trainer.amp and cfg.trainer.amp_dtype == 'fp16'
    return torch.amp.GradScaler('cuda', enabled=on)


def check_finite(loss: torch.Tensor, step: int, rt: Runtime) -> None:
    """Raise NonFiniteLossError on every rank if any rank's loss is NaN/inf (a host sync per step)."""
    ok = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
    if rt.distributed:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    if not bool(ok.item()):
        raise NonFiniteLossError(f'loss is {loss.item()} at step {step + 1}; stopping. The last good '
                                 'checkpoint is checkpoints/last.pt (resume with --resume, e.g. with a '
                                 'lower optim.lr)')


def mean_terms(out: dict, rt: Runtime) -> dict[str, float]:
    """Scalar loss terms of ``out`` (all but 'depth'), averaged over ranks, as floats."""
    names = [k for k, v in out.items() if k != 'depth' and torch.is_tensor(v) and v.ndim == 0]
    values = torch.stack([out[k].detach().float() for k in names])
    if rt.distributed:
        dist.all_reduce(values)
        values /= rt.world_size
    return dict(zip(names, values.tolist(), strict=True))


def predictor(model: nn.Module, device: torch.device):
    """``predict_fn`` for ``disdepth.evaluation.evaluate``: image [B,3,H,W] 0..1 -> depth [B,1,H,W] m."""
    @torch.no_grad()
    def predict(image):
        return model(torch.as_tensor(image, dtype=torch.float32).to(device))['depth'].float().cpu()
    return predict


def validate(model: nn.Module, dataset, device: torch.device, batch_size: int = 1) -> dict:
    """Standard metrics (disdepth.metrics keys) of ``model`` on ``dataset``; restores train mode."""
    from disdepth.evaluation import evaluate
    was_training = model.training
    model.eval()
    try:
        return evaluate(predictor(model, device), dataset, batch_size=batch_size)
    finally:
        model.train(was_training)
