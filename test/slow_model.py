"""A synthetic model whose frame lasts a chosen time on this machine, measured when the test runs.

Tests that need a frame in progress (a signal, a lifecycle transition or a flood of frames arriving while the
worker infers) take their slow model from here, through the ``slow_model`` fixture (test/conftest.py), never with
a fixed number of steps: a fixed count lasted 1 s on one machine and 0.5 s on another, and tests failed on the
faster one. The frame time is chosen per test as several times the wait the test relies on; pytest's
``--slow-frame-scale`` multiplies it (1/3 and 3 check that the tests hold for a frame 3x shorter or longer).

    per_step = median seconds of one run of a probe model / its steps     (one ONNX Runtime thread, as the tests)
    steps    = ceil(frame_seconds * scale / per_step)
"""
from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from depth_kd_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

#: size of the [N,N] MatMuls that make the frame slow: about 20 ms a step on one core of the dev machine
SLOW_SIZE = 1024
#: a probe run at least this long (seconds) is timed well above the clock's and the scheduler's noise
PROBE_MIN_S = 0.05


def seconds_per_step(height: int, width: int) -> float:
    """Median seconds of one SLOW_SIZE MatMul step of the synthetic model, on one ONNX Runtime thread, now."""
    image = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    steps = 4
    with tempfile.TemporaryDirectory() as directory:
        while True:
            path = build_synthetic_onnx(str(Path(directory) / f'probe_{steps}.onnx'), height, width,
                                        slow_steps=steps, slow_size=SLOW_SIZE)
            backend = OnnxRuntimeBackend(path, num_threads=1)
            backend.infer(image)  # the first run allocates
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                backend.infer(image)
                runs.append(time.perf_counter() - start)
            seconds = statistics.median(runs)
            if seconds >= PROBE_MIN_S or steps >= 64:
                return seconds / steps
            steps *= 4


def build_slow_model(path: Path, frame_seconds: float, height: int = 48, width: int = 64, **model_kwargs) -> str:
    """Write a synthetic model (depth_kd_ros.testing.synthetic_model) whose frame takes about ``frame_seconds`` on one
    ONNX Runtime thread on this machine at its present load; returns the path. ``model_kwargs`` go to
    build_synthetic_onnx."""
    steps = max(1, math.ceil(frame_seconds / seconds_per_step(height, width)))
    return build_synthetic_onnx(str(path), height, width, slow_steps=steps, slow_size=SLOW_SIZE, **model_kwargs)
