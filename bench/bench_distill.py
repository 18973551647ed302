"""DisDepth ablation and step-time benchmark on the embedded synthetic street scenes (CPU).

Paper: DisDepth, arXiv 2404.16386, section 4.3 (ablations: LGConv, KD, ghost decoder, LAM).

    1. train the small Transformer teacher (config/training/synthetic_teacher.yaml), or reuse --teacher
    2. for every row and seed, train the student from config/training/synthetic_demo.yaml with the
       row's switches, the same number of steps, and evaluate it on held-out scenes (standard metrics)
    3. time one distillation step against one student-only step plus one teacher forward

    python bench/bench_distill.py [--quick] [--seeds 0 1] [--teacher PATH]
    -> bench/results/ablation.json, bench/results/step_time.json

Each row's exact command is stored with its numbers. Students start from random weights (no
ImageNet weights offline), so absolute numbers are far from the paper's; compare rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import time
from pathlib import Path

import torch

from disdepth.config import load_config
from disdepth.metrics import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[1]

TEACHER_CFG = 'config/training/synthetic_teacher.yaml'
STUDENT_CFG = 'config/training/synthetic_demo.yaml'
# one switch per contribution (docs/design.md section 2, style item 7)
ROWS = {
    'student (no LGConv, no KD)': ['model.lgconv.enabled=false', 'distill.enabled=false'],
    '+ LGConv': ['distill.enabled=false'],
    '+ feature KD (plain, uniform)': ['distill.ghost_decoder=false', 'distill.attention=uniform'],
    '+ ghost decoder (uniform A)': ['distill.attention=uniform'],
    '+ LAM (DisDepth, full)': [],
}
SIZES = {  # (height, width, teacher steps, student steps, held-out images)
    'full': (48, 160, 800, 300, 32),
    'quick': (32, 96, 200, 60, 16),
}


def _distill_module():
    spec = importlib.util.spec_from_file_location('distill_script', ROOT / 'training' / 'distill.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def common_overrides(mode: str, steps: int) -> list[str]:
    h, w, _, _, num_test = SIZES[mode]
    # one epoch = the whole run (every training scene seen once); KD joins after 10 % of the steps
    return [f'data.height={h}', f'data.width={w}', f'data.eval_height={h}', f'data.eval_width={w}',
            f'data.num_train={8 * steps}', f'data.num_test={num_test}', 'data.batch_size=8',
            f'trainer.max_steps={steps}', f'trainer.val_every={steps}', f'trainer.ckpt_every={steps}',
            f'trainer.preview_every={steps}', 'trainer.log_every=10', 'trainer.progress=false',
            'trainer.device=cpu', 'distill.warmup_epochs=0.1']


def train(distill, config: str, overrides: list[str]) -> tuple[dict, float, str]:
    """Run distill.py in this process; returns (final held-out metrics, seconds, the command)."""
    start = time.perf_counter()
    code = distill.cli(['--config', config, *overrides])
    if code != 0:
        raise SystemExit(f'training failed: {config} {overrides}')
    out_dir = next(o.split('=', 1)[1] for o in overrides if o.startswith('output_dir='))
    last = json.loads((Path(out_dir) / 'val.jsonl').read_text().splitlines()[-1])
    command = 'python training/distill.py --config ' + config + ' ' + ' '.join(overrides)
    return {k: last[k] for k in METRIC_KEYS}, time.perf_counter() - start, command


def summarise(per_seed: list[dict]) -> dict:
    return {k: {'mean': statistics.fmean(m[k] for m in per_seed),
                'per_seed': [m[k] for m in per_seed]} for k in METRIC_KEYS}


def time_step(cfg_path: str, overrides: list[str], repeats: int) -> dict:
    """Median seconds of: a distillation step, a student-only step, a teacher feature forward."""
    from torch.utils.data import default_collate

    from disdepth.data import build_dataset
    from disdepth.distill.task import build_task
    from disdepth.optim import build_optimizer
    cfg = load_config(cfg_path, overrides)
    torch.manual_seed(0)
    task, _ = build_task(cfg, torch.device('cpu'))
    opt = build_optimizer(task, cfg)
    dataset = build_dataset(cfg.data, 'train')
    batch = default_collate([dataset[i] for i in range(cfg.data.batch_size)])

    def step(kd: bool):
        out = task(batch, kd_active=kd)
        opt.zero_grad(set_to_none=True)
        out['loss'].backward()
        opt.step()

    def teacher_forward():
        with torch.no_grad():
            task.teacher.forward_features(batch['image'])

    fns = {'distill_step_s': lambda: step(True), 'student_step_s': lambda: step(False),
           'teacher_forward_s': teacher_forward}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    # interleaved, so a change in the shared machine's load hits all three alike
    for i in range(repeats + 2):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if i >= 2:  # first calls allocate
                samples[name].append(time.perf_counter() - t)
    timings = {name: statistics.median(values) for name, values in samples.items()}
    timings['ratio'] = timings['distill_step_s'] / (timings['student_step_s'] + timings['teacher_forward_s'])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='small images, few steps (a few minutes)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--teacher', help='reuse a task=teacher checkpoint instead of training one')
    parser.add_argument('--work', default='runs/bench_distill', help='run folders')
    parser.add_argument('--results', default=str(ROOT / 'bench' / 'results'))
    # 1 thread: on the shared 2-core machines two threads per process spin against other jobs and
    # were measured 3-8x slower per step than one
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mode = 'quick' if args.quick else 'full'
    h, w, teacher_steps, student_steps, num_test = SIZES[mode]
    work, results = Path(args.work), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    distill = _distill_module()

    report = {'mode': mode, 'image_size': [h, w], 'student_steps': student_steps, 'batch_size': 8,
              'held_out_images': num_test, 'seeds': args.seeds,
              'student_lgconv': dataclasses.asdict(load_config(STUDENT_CFG).model.lgconv), 'rows': {}}
    teacher_path = args.teacher
    if teacher_path is None:
        metrics, seconds, cmd = train(distill, TEACHER_CFG, common_overrides(mode, teacher_steps)
                                      + [f'output_dir={work / "teacher"}'])
        teacher_path = str(work / 'teacher' / 'checkpoints' / 'last.pt')
        report['rows']['teacher (small Transformer)'] = {
            'metrics': summarise([metrics]), 'steps': teacher_steps, 'seconds': seconds, 'commands': [cmd]}
    for row, switches in ROWS.items():
        per_seed, commands, seconds = [], [], 0.0
        for seed in args.seeds:
            slug = row.split('(')[0].strip(' +').replace(' ', '_').lower() or 'full'
            overrides = common_overrides(mode, student_steps) + switches + [
                f'teacher.path={teacher_path}', f'trainer.seed={seed}', f'output_dir={work / f"{slug}_s{seed}"}']
            metrics, sec, cmd = train(distill, STUDENT_CFG, overrides)
            per_seed.append(metrics)
            commands.append(cmd)
            seconds += sec
            print(f'{row} seed {seed}: abs_rel={metrics["abs_rel"]:.4f} rmse={metrics["rmse"]:.3f} ({sec:.0f} s)',
                  flush=True)
        report['rows'][row] = {'metrics': summarise(per_seed), 'steps': student_steps, 'seconds': seconds,
                               'commands': commands}
    (results / 'ablation.json').write_text(json.dumps(report, indent=2))

    timing = time_step(STUDENT_CFG, common_overrides(mode, 10) + [f'teacher.path={teacher_path}'],
                       repeats=5 if args.quick else 15)
    timing.update({'image_size': [h, w], 'batch_size': 8, 'device': 'cpu', 'threads': torch.get_num_threads(),
                   'goal_ratio': 1.3, 'config': STUDENT_CFG})
    (results / 'step_time.json').write_text(json.dumps(timing, indent=2))
    print(json.dumps(timing, indent=2))


if __name__ == '__main__':
    main()
