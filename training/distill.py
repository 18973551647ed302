"""Train a DisDepth model: the small teacher, a student baseline, or a distilled student.

Paper: DisDepth, arXiv 2404.16386 (Promoting CNNs with Cross-Architecture Knowledge Distillation for
Efficient Monocular Depth Estimation); method as implemented: docs/design.md section 2.

    python training/distill.py --config config/training/NAME.yaml [section.key=value ...] [--resume]
    torchrun --nproc_per_node=N training/distill.py --config ...          (DDP, one process per GPU)

Writes output_dir/config.yaml (resolved), metrics.jsonl, val.jsonl, tensorboard/, and
checkpoints/{last,best}.{pt,json}. ``--resume`` continues the run in output_dir from last.pt:
weights, optimiser, scheduler, scaler, step, sampler position and RNG states.
Everything but the loop lives in the ``disdepth`` library (nanoGPT's shape).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from disdepth.build import build_labeller, build_task
from disdepth.checkpoint import (
    CheckpointError,
    read_meta,
    restore_training_state,
    rng_state,
    save_checkpoint,
    training_state,
)
from disdepth.config import ConfigError, config_to_dict, load_config, save_config
from disdepth.data import check_same_data, data_identity
from disdepth.data.loader import batches_per_epoch, build_loaders, infinite_batches, resolve_camera, to_device
from disdepth.data.splits import DatasetError
from disdepth.distill.teacher import TeacherError
from disdepth.distributed import (
    NonFiniteLossError,
    Runtime,
    check_finite,
    mean_terms,
    seed_everything,
    setup_runtime,
    wrap_ddp,
)
from disdepth.evaluation import validate
from disdepth.hub import ModelSourceError
from disdepth.mixed_precision import amp_context, make_scaler
from disdepth.optim import build_optimizer, build_scheduler
from disdepth.run_log import RunLogger

AUGMENTATION_SEED_OFFSET = 1_000_003


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='YAML file under config/training/')
    parser.add_argument('--resume', action='store_true', help='continue from output_dir/checkpoints/last.pt')
    parser.add_argument('overrides', nargs='*', help='dotted section.key=value overrides')
    return parser.parse_args(argv)


def gather_rng(rt: Runtime) -> list:
    """Every rank's RNG state (collective: all ranks call it), so each rank resumes its own stream."""
    if not rt.distributed:
        return [rng_state()]
    states = [None] * rt.world_size
    dist.all_gather_object(states, rng_state())
    return states


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    rt = setup_runtime(cfg)
    out_dir, ckpt_dir = Path(cfg.output_dir), Path(cfg.output_dir) / 'checkpoints'
    if args.resume and not (ckpt_dir / 'last.pt').is_file():
        raise CheckpointError(f'--resume: no checkpoint at {ckpt_dir / "last.pt"}')
    identity = data_identity(cfg.data)  # recordings: content, topics and selection of each
    if args.resume:  # refused before anything is decoded or trained when the recordings changed
        check_same_data(read_meta(ckpt_dir / 'last.pt').get('data_identity'), identity)
    if rt.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / 'config.yaml')
    seed_everything(cfg.trainer.seed + rt.rank)

    task, model = build_task(cfg, rt.device)
    # re-seeded after the modules: the data's augmentation draws from torch's RNG, and must not depend on how
    # many numbers the configured modules' initialisation took, so ablation rows with one seed see the same
    # batches (offset: a stream apart from the initialisation's)
    seed_everything(cfg.trainer.seed + rt.rank + AUGMENTATION_SEED_OFFSET)
    optimizer = build_optimizer(task, cfg)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.trainer.max_steps)
    scaler = make_scaler(cfg, rt.device)
    loader, sampler, val_set = build_loaders(cfg, rt, build_labeller(cfg))
    if resolve_camera(cfg, loader.dataset) and rt.is_main:
        save_config(cfg, out_dir / 'config.yaml')  # with the recorded camera's focal length
    steps_per_epoch = cfg.trainer.steps_per_epoch or batches_per_epoch(sampler, cfg.data.batch_size)
    step, best = 0, math.inf
    if args.resume:
        step, best = restore_training_state(ckpt_dir / 'last.pt', task, model, optimizer=optimizer,
                                            scheduler=scheduler, scaler=scaler, rank=rt.rank, device=rt.device)
    # FAM/LAM get no gradient during the warm-up (KD off), so DDP must tolerate unused parameters
    ddp_task = wrap_ddp(task, rt, find_unused_parameters=cfg.task != 'teacher' and cfg.distill.enabled)
    log = RunLogger(out_dir, rt.is_main, step, cfg.trainer.max_steps, cfg.trainer.progress)
    meta = {'config': config_to_dict(cfg), 'task': cfg.task, 'data_identity': identity}

    def checkpoint(name: str, metrics: dict, rng: list) -> None:
        state = training_state(task, model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                               step=step, best=best, rng_states=rng)
        save_checkpoint(ckpt_dir, name, state, {**meta, 'step': step, 'epoch': step / steps_per_epoch,
                                                'metrics': metrics})

    data = infinite_batches(loader, sampler, step, cfg.trainer.seed + rt.rank)
    task.train()
    metrics: dict = {}
    t_last, step_last = time.perf_counter(), step
    while step < cfg.trainer.max_steps:
        batch = to_device(next(data), rt.device)
        epoch = step / steps_per_epoch
        # warm-up switch: the student learns alone for distill.warmup_epochs before the KD terms join
        kd_active = epoch >= cfg.distill.warmup_epochs
        logs = (step + 1) % cfg.trainer.log_every == 0 or step + 1 == cfg.trainer.max_steps
        previews = rt.is_main and (step + 1) % cfg.trainer.preview_every == 0
        with amp_context(cfg, rt.device):
            # diagnostics only on the steps that log them: they read tensors this step computes anyway
            out = ddp_task(batch, kd_active=kd_active, diagnose=logs, keep_attention=previews)
        # sync point: NaN on any rank stops every rank before the update, so last.pt stays good
        check_finite(out['loss'], step, rt)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out['loss']).backward()
        scaler.unscale_(optimizer)
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(task.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr = scheduler.get_last_lr()[-1]  # the lr this step used (before the schedule moves on)
        scheduler.step()
        step += 1
        log.step()

        if logs:
            terms = mean_terms(out, rt)  # collective: every rank logs the same steps
            diagnostics = mean_terms(out['diagnostics'], rt) if out.get('diagnostics') else {}
            now = time.perf_counter()
            log.log(step, {'epoch': round(epoch, 4), 'lr': lr, **terms,
                           'sec_per_step': (now - t_last) / (step - step_last)}, diagnostics)
            t_last, step_last = now, step
        if previews:
            log.preview(step, batch['image'], out['depth'], batch['depth'], cfg.model.max_depth)
            if 'attention' in out:
                log.preview_attention(step, batch['image'], out['attention'])
        is_last = step == cfg.trainer.max_steps
        validated = step % cfg.trainer.val_every == 0 or is_last
        if validated:
            if rt.is_main:
                metrics = validate(model, val_set, rt.device, cfg.data.batch_size)
                log.log_val(step, metrics)
            if rt.distributed:
                dist.barrier()  # other ranks wait for rank 0's validation
        if step % cfg.trainer.ckpt_every == 0 or validated:
            rng = gather_rng(rt)  # collective
            if rt.is_main:
                improved = validated and metrics['abs_rel'] < best
                best = metrics['abs_rel'] if improved else best
                checkpoint('last', metrics, rng)
                if improved:
                    checkpoint('best', metrics, rng)
    log.close()
    if rt.distributed:
        dist.barrier()  # no rank tears the group down while rank 0 is still writing its checkpoints
        dist.destroy_process_group()
    return 0


def cli(argv=None) -> int:
    """``main`` with bad input and diverged runs reported as one line on stderr (exit code 2)."""
    try:
        return main(argv)
    except (ConfigError, TeacherError, ModelSourceError, CheckpointError, DatasetError, NonFiniteLossError,
            FileNotFoundError) as exc:
        print(f'distill.py: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(cli())
