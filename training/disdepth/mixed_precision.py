"""Mixed precision on CUDA (``trainer.amp``, ``trainer.amp_dtype``); CPU runs in float32.

    forward   under torch.autocast('cuda', bf16 | fp16)
    backward  through a GradScaler only for fp16 (bf16 has float32's exponent range and needs none)
"""
from __future__ import annotations

import contextlib

import torch

from disdepth.config import Config


def amp_context(cfg: Config, device: torch.device):
    """Autocast on CUDA only (bf16 or fp16); a null context on CPU or with ``trainer.amp`` off."""
    if device.type != 'cuda' or not cfg.trainer.amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.trainer.amp_dtype == 'bf16' else torch.float16
    return torch.autocast('cuda', dtype=dtype)


def make_scaler(cfg: Config, device: torch.device) -> torch.amp.GradScaler:
    """GradScaler, enabled only for fp16 autocast on CUDA (bf16 needs none)."""
    on = device.type == 'cuda' and cfg.trainer.amp and cfg.trainer.amp_dtype == 'fp16'
    return torch.amp.GradScaler('cuda', enabled=on)
