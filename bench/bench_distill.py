"""DisDepth ablation and step-time benchmark on the embedded synthetic street scenes (CPU).

Paper: DisDepth, arXiv 2404.16386, section 4.3 (ablations: LGConv, KD, ghost decoder, LAM).

    1. train the small Transformer teacher (config/training/synthetic_teacher.yaml), or reuse --teacher
    2. for every row and seed, train the student from config/training/synthetic_demo.yaml with the
       row's switches, the same number of steps, and evaluate it on held-out scenes (standard metrics)
    3. per row: mean, standard deviation and 95 % t interval over seeds; adjacent rows compared paired by
       seed (training/disdepth/seed_statistics.py); the distillation diagnostics' first and final logged values
    4. time one distillation step against one student-only step plus one teacher forward

    python bench/bench_distill.py [--quick] [--seeds 0 1 ...] [--jobs 2] [--teacher PATH]
    -> bench/results/ablation.json, bench/results/step_time.json

Profiles: ``full`` (default) is sized so that the whole table (teacher once, 5 rows x 6 seeds) fits in under an
hour on a 2-core CPU with ``--jobs 2`` (two single-threaded runs at a time): 46 minutes measured, with a
``make demo`` beside it (ablation.json's wall_seconds); ``--quick`` (2 seeds, 60 steps at 32x96) is a
few-minute smoke test, far from converged. A seed fixes a run's data order, its augmentation (re-seeded after
the modules are built) and the student's initialisation (LGConv's branch is built last, so rows with and
without it share every other weight), so rows are compared seed by seed.
Each row's exact commands are stored with its numbers. Students start from random weights (no
ImageNet weights offline), so absolute numbers are far from the paper's; compare rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path

import torch

from disdepth.config import load_config
from disdepth.metrics import METRIC_KEYS
from disdepth.seed_statistics import interval, paired

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


@dataclasses.dataclass(frozen=True)
class Profile:
    height: int
    width: int
    teacher_steps: int
    student_steps: int
    held_out_images: int
    seeds: tuple[int, ...]


PROFILES = {
    # sized so that 0.005 abs_rel between adjacent rows is resolved: one full-row run at 48x160 measured 0.45 s/step
    # on an idle core (0.27 s without KD); the 5 rows together ~1.8 s per step and seed. 6 seeds x 320 steps ~ 3600
    # CPU-s, halved by --jobs 2, plus the teacher's ~230 s: ~35-45 min estimated (46 min measured beside a make
    # demo). Seeds rather than steps: the paired interval's width goes with t_{n-1} / sqrt(n) (n=2: 9.0, n=6: 1.05
    # times the spread of the differences).
    'full': Profile(48, 160, 800, 320, 64, (0, 1, 2, 3, 4, 5)),
    'quick': Profile(32, 96, 200, 60, 16, (0, 1)),
}
FINAL_LOGS = 5  # a run's final diagnostic value: the mean of its last 5 logged values (one batch each)


def _distill_module():
    spec = importlib.util.spec_from_file_location('distill_script', ROOT / 'training' / 'distill.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def common_overrides(profile: Profile, steps: int) -> list[str]:
    h, w = profile.height, profile.width
    # one epoch = the whole run (every training scene seen once); KD joins after 10 % of the steps
    return [f'data.height={h}', f'data.width={w}', f'data.eval_height={h}', f'data.eval_width={w}',
            f'data.num_train={8 * steps}', f'data.num_test={profile.held_out_images}', 'data.batch_size=8',
            f'trainer.max_steps={steps}', f'trainer.val_every={steps}', f'trainer.ckpt_every={steps}',
            f'trainer.preview_every={steps}', 'trainer.log_every=10', 'trainer.progress=false',
            'trainer.device=cpu', 'distill.warmup_epochs=0.1']


def train(config: str, overrides: list[str], threads: int = 1) -> dict:
    """Run distill.py in this process (``threads`` torch threads).

    Returns:
        dict(metrics: final held-out metrics, seconds, command, diagnostics: {name: {first, final}} from
        metrics.jsonl, with the ghost decoder's silog_teacher and the student's silog_student among them).
    Raises:
        SystemExit: the run failed.
    """
    torch.set_num_threads(threads)
    start = time.perf_counter()
    code = _distill_module().cli(['--config', config, *overrides])
    if code != 0:
        raise SystemExit(f'training failed: {config} {overrides}')
    out_dir = Path(next(o.split('=', 1)[1] for o in overrides if o.startswith('output_dir=')))
    last = json.loads((out_dir / 'val.jsonl').read_text().splitlines()[-1])
    command = 'python training/distill.py --config ' + config + ' ' + ' '.join(overrides)
    logs = [json.loads(line) for line in (out_dir / 'metrics.jsonl').read_text().splitlines()]
    series: dict[str, list[float]] = {}
    for record in logs:
        values = {**record.get('diagnostics', {}),
                  **{k: record[k] for k in ('silog_student', 'silog_teacher') if record.get(k)}}  # 0: KD off
        for name, value in values.items():
            series.setdefault(name, []).append(value)
    diagnostics = {name: {'first': v[0], 'final': statistics.fmean(v[-FINAL_LOGS:])} for name, v in series.items()}
    return {'metrics': {k: last[k] for k in METRIC_KEYS}, 'seconds': time.perf_counter() - start,
            'command': command, 'diagnostics': diagnostics}


def _train_student(job: tuple[list[str], int]) -> dict:
    """Pool worker: one student run (module level, so a spawned process can import it)."""
    overrides, threads = job
    return train(STUDENT_CFG, overrides, threads)


def summarise(per_seed: list[dict]) -> dict:
    """{metric: {mean, std, ci95 (half-width), n, per_seed}} over seeds."""
    return {k: {**interval([m[k] for m in per_seed]), 'per_seed': [m[k] for m in per_seed]} for k in METRIC_KEYS}


def summarise_diagnostics(runs: list[dict]) -> dict:
    """{name: {first, final}}, each the mean over seeds (names every seed logged)."""
    names = set.intersection(*(set(r['diagnostics']) for r in runs))
    return {name: {when: statistics.fmean(r['diagnostics'][name][when] for r in runs) for when in ('first', 'final')}
            for name in sorted(names)}


def compare_adjacent(rows: dict) -> list[dict]:
    """Paired comparison (disdepth.seed_statistics) of each ablation row with the row before it, per metric."""
    return [{'from': a, 'to': b, **{k: paired(rows[a]['metrics'][k]['per_seed'], rows[b]['metrics'][k]['per_seed'])
                                    for k in METRIC_KEYS}}
            for a, b in pairwise(ROWS)]


def time_step(cfg_path: str, overrides: list[str], repeats: int) -> dict:
    """Median seconds of: a distillation step, a student-only step, a teacher feature forward."""
    from torch.utils.data import default_collate

    from disdepth.build import build_task
    from disdepth.data import build_dataset
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
    parser.add_argument('--quick', action='store_true', help='small images, few steps, 2 seeds (a few minutes)')
    parser.add_argument('--seeds', type=int, nargs='+', help="seeds (default: the profile's)")
    parser.add_argument('--teacher', help='reuse a task=teacher checkpoint instead of training one')
    parser.add_argument('--work', default='runs/bench_distill', help='run folders')
    parser.add_argument('--results', default=str(ROOT / 'bench' / 'results'))
    # 1 thread per run: on the shared 2-core machines two threads per process spin against other jobs and
    # were measured 3-8x slower per step than one; --jobs runs that many single-threaded runs side by side
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--jobs', type=int, default=2, help='student runs at a time (one process each)')
    args = parser.parse_args()
    if args.jobs < 1 or args.threads < 1:
        parser.error('--jobs and --threads must be >= 1')
    torch.set_num_threads(args.threads)
    mode = 'quick' if args.quick else 'full'
    profile = PROFILES[mode]
    seeds = args.seeds or list(profile.seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        parser.error(f'--seeds: at least 2 distinct seeds for intervals, got {seeds}')
    work, results = Path(args.work), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    report = {'mode': mode, 'image_size': [profile.height, profile.width], 'student_steps': profile.student_steps,
              'batch_size': 8, 'held_out_images': profile.held_out_images, 'seeds': seeds, 'jobs': args.jobs,
              'student_lgconv': dataclasses.asdict(load_config(STUDENT_CFG).model.lgconv), 'rows': {}}
    teacher_path = args.teacher
    if teacher_path is None:
        run = train(TEACHER_CFG, common_overrides(profile, profile.teacher_steps)
                    + [f'output_dir={work / "teacher"}'], args.threads)
        teacher_path = str(work / 'teacher' / 'checkpoints' / 'last.pt')
        report['rows']['teacher (small Transformer)'] = {
            'metrics': summarise([run['metrics']]), 'steps': profile.teacher_steps, 'seconds': run['seconds'],
            'commands': [run['command']]}
    jobs = []
    for row, switches in ROWS.items():
        slug = row.split('(')[0].strip(' +').replace(' ', '_').lower() or 'full'
        jobs += [(common_overrides(profile, profile.student_steps) + switches + [
            f'teacher.path={teacher_path}', f'trainer.seed={seed}', f'output_dir={work / f"{slug}_s{seed}"}'],
            args.threads) for seed in seeds]
    if args.jobs == 1:
        runs = [_train_student(job) for job in jobs]
    else:  # spawned, not forked: a fork of a process that has run torch ops can hang in OpenMP
        with ProcessPoolExecutor(args.jobs, mp_context=get_context('spawn')) as pool:
            runs = list(pool.map(_train_student, jobs))
    for i, row in enumerate(ROWS):
        row_runs = runs[i * len(seeds):(i + 1) * len(seeds)]
        for seed, run in zip(seeds, row_runs, strict=True):
            print(f'{row} seed {seed}: abs_rel={run["metrics"]["abs_rel"]:.4f} ({run["seconds"]:.0f} s)', flush=True)
        report['rows'][row] = {'metrics': summarise([r['metrics'] for r in row_runs]), 'steps': profile.student_steps,
                               'seconds': sum(r['seconds'] for r in row_runs),
                               'diagnostics': summarise_diagnostics(row_runs),
                               'commands': [r['command'] for r in row_runs]}
    report['adjacent'] = compare_adjacent(report['rows'])
    report['wall_seconds'] = time.perf_counter() - started
    (results / 'ablation.json').write_text(json.dumps(report, indent=2))

    timing = time_step(STUDENT_CFG, common_overrides(profile, 10) + [f'teacher.path={teacher_path}'],
                       repeats=5 if args.quick else 15)
    timing.update({'image_size': [profile.height, profile.width], 'batch_size': 8, 'device': 'cpu',
                   'threads': torch.get_num_threads(), 'goal_ratio': 1.3, 'config': STUDENT_CFG})
    (results / 'step_time.json').write_text(json.dumps(timing, indent=2))
    print(json.dumps(timing, indent=2))


if __name__ == '__main__':
    main()
