#!/usr/bin/env python3
"""Recordings dataset throughput: the first pass (read the bag, decode, resize, write the cache) against
later epochs (the memory-mapped cache) and against the training step the frames feed (CPU, one process).

    python bench/bench_recordings.py [--frames 60] [--repeats 3] [--threads 1]  -> bench/results/recordings.json

Recordings from scripts/synthetic_recording.py, 640x480 at 10 Hz (a RealSense-class camera, rooms): sqlite3
with raw rgb8 colour and 16UC1 depth; MCAP with JPEG colour and compressedDepth (PNG). Model input, student
and batch: config/training/recordings.yaml with training/README.md's CPU overrides (96x128, batch 8); teacher: the
small Transformer of synthetic_teacher.yaml with random weights (its cost, not its accuracy, matters here).

    first pass frames/s   = kept frames / time to build the train and held-out caches from an empty cache
                            (the bag was just written, so it is in the OS page cache: a bag on disk adds its
                            read time, which later epochs do not pay either)
    later epochs frames/s = items / time to read every item (augmentation included) through the DataLoader
    teacher labels        = frames / time of the pseudo-label pass (data.depth_topic=null)
    training frames/s     = batch size / median distillation step (bench_distill.time_step)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_distill import time_step

from disdepth.build import build_labeller, build_teacher
from disdepth.checkpoint import save_checkpoint
from disdepth.config import config_to_dict, load_config
from disdepth.data import build_dataset


def _load_script(name: str):
    """A module of scripts/ (command-line tools, not a package) by its path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROOT = Path(__file__).resolve().parents[1]
RECORDING = _load_script('synthetic_recording')
DEPTH_TOPICS, write_recording = RECORDING.DEPTH_TOPICS, RECORDING.write_recording
CONFIG = 'config/training/recordings.yaml'
TEACHER_CONFIG = 'config/training/synthetic_teacher.yaml'
CPU = ['data.height=96', 'data.width=128', 'data.eval_height=96', 'data.eval_width=128', 'model.pretrained=null',
       'data.num_workers=0', 'trainer.device=cpu']
SIZE = (480, 640)
CASES = {
    'sqlite3, rgb8 + 16UC1': dict(storage='sqlite3', depth=('16UC1',), compressed_rgb=False,
                                  image_topic='/camera/color/image_raw', depth_topic=DEPTH_TOPICS['16UC1']),
    'MCAP, JPEG + compressedDepth': dict(storage='mcap', depth=('compressedDepth',), compressed_rgb=True,
                                         image_topic='/camera/color/image_raw/compressed',
                                         depth_topic=DEPTH_TOPICS['compressedDepth']),
}


def small_teacher(folder: Path) -> Path:
    """A small-teacher checkpoint (random weights, the synthetic_teacher.yaml architecture, 10 m)."""
    cfg = load_config(TEACHER_CONFIG, ['model.max_depth=10.0'])
    teacher = build_teacher(cfg.teacher, cfg.model)
    return save_checkpoint(folder, 'teacher', {'model': teacher.state_dict()},
                           {'config': config_to_dict(cfg), 'task': 'teacher'})


def overrides(bag: Path, case: dict, cache: Path, teacher: Path, depth_topic) -> list[str]:
    return [*CPU, f'data.recordings=[{bag}]', f'data.image_topic={case["image_topic"]}',
            f'data.depth_topic={depth_topic or "null"}', f'data.cache_dir={cache}', 'teacher.kind=small',
            f'teacher.path={teacher}']


def first_pass(cfg) -> tuple[float, int]:
    """Seconds to build both splits from an empty cache, and the frames cached."""
    shutil.rmtree(cfg.data.cache_dir, ignore_errors=True)
    start = time.perf_counter()
    sets = [build_dataset(cfg.data, split, labeller=build_labeller(cfg)) for split in ('train', 'test')]
    return time.perf_counter() - start, sum(len(s) for s in sets)


def cached_epoch(cfg) -> tuple[float, int]:
    """Seconds to open the cached datasets and read one epoch of training batches (augmented), and items."""
    start = time.perf_counter()
    dataset = build_dataset(cfg.data, 'train', labeller=build_labeller(cfg))
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=True)
    items = sum(len(batch['image']) for batch in loader)
    return time.perf_counter() - start, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--repeats', type=int, default=3, help='first passes and cached epochs per case (median)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (1: as bench_distill)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix='bench_recordings_'))
    report = {'frames': args.frames, 'size': f'{SIZE[1]}x{SIZE[0]}', 'rate_hz': 10.0, 'config': CONFIG,
              'overrides': CPU, 'threads': torch.get_num_threads(), 'cpu_count': os.cpu_count(),
              'load_avg_1m': os.getloadavg()[0], 'cases': {}}
    try:
        teacher = small_teacher(work / 'teacher')
        for name, case in CASES.items():
            bag = write_recording(work / case['storage'], frames=args.frames, height=SIZE[0], width=SIZE[1],
                                  storage=case['storage'], depth=case['depth'], compressed_rgb=case['compressed_rgb'])
            cfg = load_config(CONFIG, overrides(bag, case, work / 'cache', teacher, case['depth_topic']))
            passes = [first_pass(cfg) for _ in range(args.repeats)]
            epochs = [cached_epoch(cfg) for _ in range(args.repeats)]
            first_s, frames = statistics.median(p[0] for p in passes), passes[0][1]
            epoch_s, items = statistics.median(e[0] for e in epochs), epochs[0][1]
            report['cases'][name] = {'frames_cached': frames, 'first_pass_s': first_s,
                                     'first_pass_frames_per_s': frames / first_s, 'epoch_items': items,
                                     'epoch_s': epoch_s, 'epoch_frames_per_s': items / epoch_s}
            print(name, json.dumps(report['cases'][name]), flush=True)
        case = CASES['sqlite3, rgb8 + 16UC1']
        labels = load_config(CONFIG, overrides(work / 'sqlite3', case, work / 'cache', teacher, None))
        seconds, frames = first_pass(labels)  # decode again plus the teacher on every frame
        decode_s = report['cases']['sqlite3, rgb8 + 16UC1']['first_pass_s']
        report['teacher_labels'] = {'frames': frames, 'seconds': seconds - decode_s,
                                    'frames_per_s': frames / max(seconds - decode_s, 1e-9)}
        step = time_step(CONFIG, overrides(work / 'sqlite3', case, work / 'cache', teacher, case['depth_topic']),
                         repeats=args.repeats * 3)
        batch = load_config(CONFIG).data.batch_size
        report['training'] = {'batch_size': batch, 'distill_step_s': step['distill_step_s'],
                              'frames_per_s': batch / step['distill_step_s'], 'image_size': [96, 128]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / 'bench' / 'results' / 'recordings.json'
    out.write_text(json.dumps(report, indent=2) + '\n')
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
