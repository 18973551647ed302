"""Day one's pretrained model against the distilled student, in the node itself (ONNX Runtime CPU, 640x480).

Models, each exported by the code of the command a user runs:
    teacher: the Depth-Anything-V2-Metric-Indoor-Small architecture (24.8 M parameters) with random weights
        standing in for the download, saved as a local folder and exported by training/export.py --hf's
        export_pretrained, asked for 256x320 (252x322: multiples of its patch 14 at the aspect ratio);
    student: the deployed student (config/training/synthetic_demo.yaml's model, random init) exported by
        training/export.py's export_onnx at 256x320.
Measured: the export time (building or loading the model, export, contract and parity check on one image) and
file size of each; the node's per-stage times of each on the same 640x480 frame, interleaved frame by frame in
one process (bench_node.stage_samples, the node's Fast DDS profile), so machine load hits both alike; the
teacher/student ratio of each stage's p50 and the median of the per-frame end-to-end ratios; then each through
the real node process (camera publish -> depth received, camera at RATE_HZ: keep-latest drops what the teacher
cannot keep up with).

Usage: ``python bench/bench_teacher.py [--frames 100] [--output bench/results/teacher.json]``; then
``python bench/run_all.py --tables-only`` renders it into docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from bench_models import DEPLOYED_CONFIG, depth_anything_v2_small_config
from bench_node import (
    HEIGHT,
    MODEL_SIZE,
    ROOT,
    THREADS,
    WIDTH,
    in_transport,
    node_latency,
    stage_samples,
    stats,
)
from transformers import DepthAnythingForDepthEstimation

from disdepth.config import load_config
from disdepth.export import export_onnx
from disdepth.models.student import build_student
from disdepth.pretrained_export import export_pretrained

TEACHER_NAME = 'Depth-Anything-V2-Metric-Indoor-Small-random'  # named as the hub model: the Hypersim camera
RATE_HZ = 2.0  # camera rate for the node end to end of both models
NODE_FRAMES = 30


def export_models(directory: str) -> dict[str, dict]:
    """{'student', 'teacher'}: {'path', 'export_s', 'model', 'input', 'file_mb'} (module docstring)."""
    torch.set_num_threads(THREADS)
    models = {}
    path = os.path.join(directory, 'student.onnx')
    start = time.perf_counter()
    cfg = load_config(DEPLOYED_CONFIG, ['model.pretrained=null'])
    report = export_onnx(build_student(cfg.model).eval(), cfg, path, *MODEL_SIZE, check_images=1)
    models['student'] = {'path': path, 'export_s': round(time.perf_counter() - start, 2),
                         'model': f"deployed student {report.metadata['model_name']} "
                                  f'({DEPLOYED_CONFIG.relative_to(ROOT)}, random init)', 'input': list(MODEL_SIZE)}
    folder = Path(directory) / TEACHER_NAME
    torch.manual_seed(0)
    config = depth_anything_v2_small_config(depth_estimation_type='metric', max_depth=20)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    path = os.path.join(directory, 'teacher.onnx')
    done = export_pretrained(str(folder), path, *MODEL_SIZE, check_images=1)
    models['teacher'] = {'path': path, 'export_s': round(done.seconds, 2), 'input': list(done.size),
                         'model': 'Depth-Anything-V2-Metric-Indoor-Small architecture (24.8 M parameters, random '
                                  'weights), training/export.py --hf'}
    for entry in models.values():
        entry['file_mb'] = round(os.path.getsize(entry['path']) / 2**20, 2)
    return models


def summarise(models: dict[str, dict], samples: dict[str, dict[str, list[float]]], node: dict[str, dict],
              load_before: float) -> dict:
    """The JSON of the benchmark from what was measured: ``models`` (export_models, without paths), per-frame
    ``samples`` {model: {stage: [ms]}} (stage_samples), ``node`` {model: node_latency(...)} and the 1-min load
    average before the run (the one after is read now).

    Returns {'models', 'frames', 'stages': {model: {stage: stats}}, 'ratio_teacher_over_student': {stage: ratio
    of the p50s, 'end_to_end_per_frame_median', 'node_end_to_end_p50' (None when a model answered no frame)},
    'node_end_to_end', and how it was run}.
    """
    stages = {name: {key: stats(values) for key, values in by_stage.items()} for name, by_stage in samples.items()}
    per_frame = np.asarray(samples['teacher']['end_to_end']) / np.asarray(samples['student']['end_to_end'])
    ratios = {stage: round(stages['teacher'][stage]['p50_ms'] / stages['student'][stage]['p50_ms'], 2)
              for stage in stages['student']}
    answered = all('p50_ms' in node[name] for name in ('teacher', 'student'))
    ratios.update(end_to_end_per_frame_median=round(float(np.median(per_frame)), 2),
                  node_end_to_end_p50=round(node['teacher']['p50_ms'] / node['student']['p50_ms'], 2)
                  if answered else None)
    return {
        'benchmark': 'pretrained teacher (export.py --hf) against the deployed student in the node, 640x480 bgr8 '
                     'input, ONNX Runtime CPU',
        'models': models, 'frames': len(samples['student']['end_to_end']), 'stages': stages,
        'ratio_teacher_over_student': ratios, 'node_end_to_end': node, 'node_rate_hz': RATE_HZ,
        'image': [HEIGHT, WIDTH], 'transport': 'node_profile', 'ort_threads': THREADS, 'onnxruntime': ort.__version__,
        'load_average_1min_before': load_before, 'load_average_1min': os.getloadavg()[0],
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100, help='frames of the per-stage table, each model')
    parser.add_argument('--output', default=str(ROOT / 'bench' / 'results' / 'teacher.json'))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        models = export_models(directory)
        paths = {name: entry.pop('path') for name, entry in models.items()}
        samples = in_transport('node_profile', stage_samples, paths, args.frames)
        node = {name: node_latency(path, frames=NODE_FRAMES, rate_hz=RATE_HZ) for name, path in paths.items()}
    result = summarise(models, samples, node, load_before)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + '\n')
    for name, entry in result['models'].items():
        print(f"{name}: {entry['model']}, input {entry['input']}, export {entry['export_s']} s, {entry['file_mb']} MB")
    print(f"{'stage (p50 ms)':<16}{'student':>10}{'teacher':>10}{'ratio':>8}")
    for stage, ratio in result['ratio_teacher_over_student'].items():
        if stage in result['stages']['student']:
            print(f"{stage:<16}{result['stages']['student'][stage]['p50_ms']:>10.2f}"
                  f"{result['stages']['teacher'][stage]['p50_ms']:>10.2f}{ratio:>8.2f}")
    print('node end to end', json.dumps(result['node_end_to_end']))
    print('teacher / student', json.dumps(result['ratio_teacher_over_student']))
    print(f'wrote {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
