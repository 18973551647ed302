"""One training process and its group: device, torchrun process group, seeds, DDP, and the per-step collectives.

Launched by ``torchrun`` (env RANK, WORLD_SIZE, LOCAL_RANK), one process per device; gloo on CPU, nccl on CUDA.
``data.batch_size`` is per process. Alone (WORLD_SIZE unset or 1) every collective here is a no-op.

    seed(rank)   = trainer.seed + rank
    NaN check    = min over ranks of isfinite(loss)   (every rank stops together, before the update)
    logged terms = mean over ranks of each scalar loss term
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from disdepth.config import Config


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the message names the step. ``last.pt`` is left untouched."""


@dataclass
class Runtime:
    """This process's place in the group and its device."""

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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def wrap_ddp(task: nn.Module, rt: Runtime, find_unused_parameters: bool) -> nn.Module:
    """DDP over the trainable task only (the frozen teacher is not a submodule).

    ``find_unused_parameters``: some parameters may get no gradient in a step (DDP then checks every step which).
    """
    if not rt.distributed:
        return task
    return nn.parallel.DistributedDataParallel(
        task, device_ids=[rt.device.index] if rt.device.type == 'cuda' else None,
        find_unused_parameters=find_unused_parameters)


def check_finite(loss: torch.Tensor, step: int, rt: Runtime) -> None:
    """Raise NonFiniteLossError on every rank if any rank's loss is NaN/inf (a host sync per step).

    Raises:
        NonFiniteLossError: naming the step (1-based) and the last good checkpoint.
    """
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
