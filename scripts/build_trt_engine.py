#!/usr/bin/env python3
"""Build the TensorRT engine for an exported model ahead of time (a trtexec equivalent that fills the cache).

The node (backend:=tensorrt) builds on first use when no matching engine is cached; running this once at
deployment moves that minutes-long build out of the robot's start-up. The engine lands in the same cache
(depth_kd_ros.backends.engine_cache) under the same key, so the node then loads it directly:

    python3 scripts/build_trt_engine.py --onnx model.onnx --precision fp16 [--cache-dir DIR]
    python3 scripts/build_trt_engine.py --onnx model.onnx --precision int8 --calibration-dir images/

INT8: the calibration images (names and contents, hashed) are part of the engine key and name their own
calibration cache, so another folder, or changed images, rebuilds the engine on a fresh calibration (and the
log says so); the node, which has no calibration folder, then loads the engine calibrated here.

Exit status 0 on success, 2 with a one-line error (no traceback) when TensorRT is missing, the model is
unreadable, the calibration folder has no images, or the build fails.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from depth_kd_ros.backends import PRECISIONS, BackendError
from depth_kd_ros.backends.calibration_images import CalibrationDataError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--onnx', required=True, help='exported model (.onnx, docs/design.md section 3)')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp16')
    parser.add_argument('--calibration-dir', default=None,
                        help='images for INT8 calibration (default: those the cached INT8 engine was calibrated on)')
    parser.add_argument('--cache-dir', default=None,
                        help="engine cache folder (default: the model's folder if writable, else ~/.cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    start = time.perf_counter()
    try:
        from depth_kd_ros.backends.tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(args.onnx, precision=args.precision, cache_dir=args.cache_dir,
                                  calibration_dir=args.calibration_dir)
    except (BackendError, CalibrationDataError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'engine ready: {backend.engine_path} ({args.precision}, outputs {list(backend.output_names)}, '
          f'{time.perf_counter() - start:.1f} s)')
    backend.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
