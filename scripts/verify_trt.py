#!/usr/bin/env python3
"""On-device check of the TensorRT path: build/load the engine, run it and ONNX Runtime on the same images.

Prints, per output, the max and mean absolute difference (metres) and the mean relative difference of
TensorRT against ONNX Runtime (the fp32 reference), and the median latency of both. Images come from a
folder (resized to the model's input, as INT8 calibration sees them) or are synthetic smooth gradients.

    python3 scripts/verify_trt.py --onnx model.onnx --precision fp16 [--images DIR] [--cache-dir DIR]

Exit status 1 when the mean relative difference of ``depth`` exceeds --max-rel-diff (defaults per
precision: fp32 1e-3, fp16 2e-2, int8 1e-1, sanity bounds rather than accuracy claims); 2 with a one-line
error (no traceback) on bad input: a model, image folder or backend that cannot be used.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from depth_kd_ros.backends import DEVICES, PRECISIONS, BackendError, create_backend
from depth_kd_ros.backends.calibration_images import CalibrationDataError, calibration_files, load_image
from depth_kd_ros.model_file import ModelFileError, read_model_info

DEFAULT_MAX_REL_DIFF = {'fp32': 1e-3, 'fp16': 2e-2, 'int8': 1e-1}


def sample_images(folder: str | None, count: int, height: int, width: int) -> list[np.ndarray]:
    """``count`` float32 [1,3,H,W] RGB 0..1 inputs: the folder's first images, or seeded smooth gradients."""
    if folder:
        return [load_image(path, height, width)[None] for path in calibration_files(folder)[:count]]
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for _ in range(count):
        a, b, c = rng.uniform(-1, 1, size=(3, 3, 1, 1)).astype(np.float32)
        images.append((0.5 + 0.5 * np.tanh(a * ys / height + b * xs / width + c))[None].astype(np.float32))
    return images


def median_ms(backend, images: list[np.ndarray], warmup: int) -> float:
    for image in images[:warmup]:
        backend.infer(image)
    times = []
    for image in images:
        start = time.perf_counter()
        backend.infer(image)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--onnx', required=True)
    parser.add_argument('--precision', choices=PRECISIONS, default='fp16')
    parser.add_argument('--images', default=None, help='folder of sample images (default: synthetic)')
    parser.add_argument('--num-images', type=int, default=20)
    parser.add_argument('--calibration-dir', default=None, help='INT8 calibration images (default: --images)')
    parser.add_argument('--cache-dir', default=None)
    parser.add_argument('--ort-device', choices=DEVICES, default=DEVICES[0])
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--max-rel-diff', type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        info = read_model_info(args.onnx)
        images = sample_images(args.images, args.num_images, info.input_height, info.input_width)
        trt = create_backend('tensorrt', args.onnx, precision=args.precision, cache_dir=args.cache_dir,
                             calibration_dir=args.calibration_dir or args.images)
        ort = create_backend('onnxruntime', args.onnx, device=args.ort_device)
    except (BackendError, CalibrationDataError, ModelFileError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    source = args.images or 'synthetic gradients'
    print(f'{args.onnx}: {len(images)} images from {source}, input {info.input_width}x{info.input_height}, '
          f'TensorRT {args.precision} vs ONNX Runtime {args.ort_device}')
    depth_rel = 0.0
    for name in trt.output_names:
        diffs = [(trt.infer(img)[name], ort.infer(img)[name]) for img in images]
        abs_diff = np.concatenate([np.abs(a - b).ravel() for a, b in diffs])
        rel = np.concatenate([(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)).ravel() for a, b in diffs])
        print(f'  {name}: max abs diff {abs_diff.max():.5f} m, mean abs diff {abs_diff.mean():.5f} m, '
              f'mean rel diff {rel.mean():.5f}')
        depth_rel = float(rel.mean()) if name == 'depth' else depth_rel
    print(f'  median latency: TensorRT {median_ms(trt, images, args.warmup):.2f} ms, '
          f'ONNX Runtime ({args.ort_device}) {median_ms(ort, images, args.warmup):.2f} ms')
    limit = args.max_rel_diff if args.max_rel_diff is not None else DEFAULT_MAX_REL_DIFF[args.precision]
    if depth_rel > limit:
        print(f'FAIL: depth mean rel diff {depth_rel:.5f} > {limit}', file=sys.stderr)
        return 1
    print(f'OK: depth mean rel diff {depth_rel:.5f} <= {limit}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
