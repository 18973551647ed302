#!/usr/bin/env python3
"""Throughput of the embedded synthetic RGB-D generator on ONE CPU core (one process).

    python bench/bench_synthetic.py [--images 40] [--repeats 3]  -> bench/results/synthetic.json

``SyntheticScenes(preset, H, W).render(i)`` for distinct scenes i (ray casting + shading, the full cost
of an item before tensor conversion), at the demo/CI sizes (outdoor 96x320, indoor 120x160) and the
paper-protocol sizes (outdoor 352x704 = KITTI train crop, indoor 480x640 = NYU frame). The process is
pinned to one core and numeric libraries to one thread. Reported: median over repeats of images/s
(wall clock) and of images per CPU-second (process time: less sensitive to other jobs on a shared
machine), and the 1-minute load average at the end.
"""
from __future__ import annotations

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from disdepth.data.synthetic import SyntheticScenes  # noqa: E402 - after the thread variables

ROOT = Path(__file__).resolve().parents[1]
CASES = [('outdoor', 96, 320), ('indoor', 120, 160), ('outdoor', 352, 704), ('indoor', 480, 640)]


def measure(preset: str, height: int, width: int, images: int, repeats: int) -> dict:
    scenes = SyntheticScenes(preset, height, width, seed=0)
    scenes.render(10**6)  # warm-up: caches the pixel-ray grid
    rates, cpu_rates = [], []
    for r in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(images):
            scenes.render(r * images + i)
        rates.append(images / (time.perf_counter() - start))
        cpu_rates.append(images / (time.process_time() - cpu))
    median = statistics.median(rates)
    return dict(preset=preset, height=height, width=width, images_per_repeat=images, repeats=repeats,
                images_per_s=round(median, 2), ms_per_image=round(1000 / median, 2),
                images_per_cpu_s=round(statistics.median(cpu_rates), 2),
                images_per_s_all=[round(x, 2) for x in rates])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=40, help='images per repeat at the small sizes')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--output', default=str(ROOT / 'bench' / 'results' / 'synthetic.json'))
    args = parser.parse_args(argv)
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    results = []
    for preset, h, w in CASES:
        n = args.images if h * w <= 120 * 320 else max(args.images // 8, 3)  # large frames are ~10x slower
        results.append(measure(preset, h, w, n, args.repeats))
        r = results[-1]
        print(f'{preset:8s} {h:4d}x{w:<4d} {r["images_per_s"]:8.2f} images/s  ({r["ms_per_image"]:.1f} ms/image), '
              f'{r["images_per_cpu_s"]:.2f} images per CPU-second')
    out = dict(benchmark='synthetic generator throughput, one core', cases=results,
               load_average_1min=round(os.getloadavg()[0], 2), cpu=platform.processor() or platform.machine(),
               python=platform.python_version(), command='python bench/bench_synthetic.py')
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2) + '\n')
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
