"""Checkpoints that load with ``weights_only=True`` and survive SIGKILL.

Layout from docs/design.md section 3.

    output_dir/checkpoints/{last,best}.pt    tensors and plain containers: {'model', 'step', ...}
    output_dir/checkpoints/{last,best}.json  meta: config (resolved dict), task, step, epoch, metrics

Every file is written atomically (``depth_kd_ros.io.atomic_file``: a temporary file beside it, fsync'ed, then
``os.replace``d over it), so a kill at any moment leaves the previous file whole. Nothing pickled: the config goes to
JSON beside the weights (nanochat's model_*.pt + meta_*.json), RNG states are stored as tensors.
This module is the file format alone: ``disdepth.build.load_model`` rebuilds a model from a checkpoint.
"""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from depth_kd_ros.io.atomic_file import atomic_write_bytes


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or holds a different task/architecture than expected."""


def save_checkpoint(ckpt_dir: str | Path, name: str, state: dict, meta: dict) -> Path:
    """Write ``ckpt_dir/name.pt`` (``state``: tensors/containers) and ``name.json`` (``meta``) atomically."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = ckpt_dir / f'{name}.pt'
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(ckpt_dir / f'{name}.json', json.dumps(meta, indent=2).encode())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = 'cpu') -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint.

    Raises:
        CheckpointError: the file is missing, unreadable, or has no 'model' entry.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for corrupt files
        raise CheckpointError(f'checkpoint {path} is corrupt or not a weights-only file: {exc}') from exc
    if not isinstance(state, dict) or 'model' not in state:
        raise CheckpointError(f'checkpoint {path} has no "model" entry')
    return state


def read_meta(path: str | Path) -> dict:
    """The JSON beside ``path`` (``last.pt`` -> ``last.json``).

    Raises:
        CheckpointError: the JSON is missing or unreadable.
    """
    meta_path = Path(path).with_suffix('.json')
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f'checkpoint meta {meta_path} is missing or not JSON: {exc}') from exc


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states as tensors/ints (``weights_only``-loadable)."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    return {'python': torch.tensor(mt, dtype=torch.int64), 'python_version': version,
            'python_gauss': gauss,
            'numpy': torch.from_numpy(np_state[1].astype(np.int64)), 'numpy_pos': int(np_state[2]),
            'numpy_gauss': (int(np_state[3]), float(np_state[4])),
            'torch': torch.get_rng_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate((state['python_version'], tuple(int(x) for x in state['python'].tolist()),
                     state['python_gauss']))
    has_gauss, cached = state['numpy_gauss']
    np.random.set_state(('MT19937', state['numpy'].numpy().astype(np.uint32), state['numpy_pos'],
                         has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _model_prefix(task: nn.Module, model: nn.Module) -> str:
    names = [name for name, child in task.named_children() if child is model]
    return names[0] + '.' if names else ''


def training_state(task: nn.Module, model: nn.Module, *, optimizer, scheduler, scaler, step: int,
                   best: float, rng_states: list) -> dict:
    """Everything ``--resume`` needs. 'model' is the trained model alone (what ``disdepth.build.load_model``
    reads); 'task_extra' the rest of the task (FAM, LAM, a fine-tuned teacher); 'rng' one state per rank."""
    prefix = _model_prefix(task, model)
    extra = {k: v for k, v in task.state_dict().items() if not (prefix and k.startswith(prefix))}
    return {'model': model.state_dict(), 'task_extra': extra, 'optimizer': optimizer.state_dict(),
            'scheduler': scheduler.state_dict(), 'scaler': scaler.state_dict(), 'step': step,
            'best': best, 'rng': rng_states}


def restore_training_state(path: str | Path, task: nn.Module, model: nn.Module, *, optimizer, scheduler,
                           scaler, rank: int, device: torch.device) -> tuple[int, float]:
    """Load ``path`` into the given objects and this rank's RNG; returns (step, best metric).

    Raises:
        CheckpointError: unreadable file, state that does not fit the current task, or a schedule length
            (``trainer.max_steps``) other than the checkpoint's run.
    """
    state = load_checkpoint(path, map_location=device)
    check_schedule_length(path, state, scheduler.total_steps)
    try:
        model.load_state_dict(state['model'])
        missing, unexpected = task.load_state_dict(state['task_extra'], strict=False)
        prefix = _model_prefix(task, model)
        if unexpected or any(not (prefix and k.startswith(prefix)) for k in missing):
            raise RuntimeError(f'missing {missing}, unexpected {unexpected}')
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        scaler.load_state_dict(state['scaler'])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f'{path} does not fit this run (change of config?): {exc}') from exc
    rng = state['rng']
    set_rng_state(_to_cpu(rng[rank] if rank < len(rng) else rng[0]))
    return int(state['step']), float(state['best'])


def check_schedule_length(path: str | Path, state: dict, total_steps: int) -> None:
    """Refuse to resume a one-cycle schedule (``disdepth.optim``) over another number of steps.

    The schedule's warm-up and annealing are laid out over the run's total steps, so the steps already taken
    were taken on the old curve: no one-cycle schedule over the new total reproduces them, and stepping the
    old one past its end is what raised "Tried to step 5 times" mid-run. A longer run is a new run.

    Raises:
        CheckpointError: the checkpoint's schedule spans another number of steps than ``total_steps``.
    """
    saved = state.get('scheduler', {}).get('total_steps')
    if saved is not None and int(saved) != total_steps:
        raise CheckpointError(
            f'--resume: {path} is a run of trainer.max_steps={saved} (its one-cycle learning-rate schedule spans '
            f'{saved} steps and cannot be stretched mid-run), but trainer.max_steps is now {total_steps}; resume '
            f'with trainer.max_steps={saved}, or train {total_steps} steps as a new run in another output_dir')


def _to_cpu(obj):
    """RNG states must be CPU ByteTensors even when the checkpoint was mapped to a GPU."""
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
