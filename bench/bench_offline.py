#!/usr/bin/env python3
"""Offline tool throughput next to the model's own frame rate (ONNX Runtime CPU, one process); the goal: at least
0.9x the model's frame rate in bag and image-folder modes.

    python bench/bench_offline.py [--frames 40] [--repeats 3] [--model student.onnx] [--num-threads N]
                                                              -> bench/results/offline.json

Input: 640x480 frames (the real NYU frames of ../shared/data/real, cycled; a synthetic pattern when absent),
as a CompressedImage (JPEG) MCAP bag, a raw Image sqlite3 bag, and a JPEG folder. Model: ``--model``, else
the project's default student (training defaults: MobileNetV2 + LGConv + bins head, random weights: the
same graph and cost as a trained one) exported by disdepth.export at 192x256 (4:3), else, without torch,
the runtime's synthetic contract graph. The JSON says which.

    model frames/s = frames / time of backend.infer on the same frames, preprocessed, back to back (nothing else)
    tool frames/s  = frames / the command's processing time after start-up (model load, bag index)
    ratio          = tool frames/s / model frames/s        (goal: at least 0.9; 1.0 = the tool runs at the model's pace)

Each repeat measures the model alone right before each command, so load from other processes on a shared machine
hits both sides of a ratio alike; the JSON keeps medians over repeats and the 1-min load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.io.bagio import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, TYPESTORE, BagWriter
from depth_kd_ros.messages import fill_image
from depth_kd_ros.offline import bag as offline_bag
from depth_kd_ros.offline import images as offline_images
from depth_kd_ros.offline.cli import build_parser
from depth_kd_ros.offline.overlapped import Sequential
from depth_kd_ros.offline.run import default_params_file
from depth_kd_ros.params import load_params_file
from depth_kd_ros.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parents[1]

REAL_NYU = ROOT.parent / 'shared' / 'data' / 'real' / 'nyu' / 'rgb'
NYU_K = (518.8579, 0.0, 325.58245, 0.0, 519.46961, 253.73617, 0.0, 0.0, 1.0)
MODEL_SIZE = (192, 256)
T = TYPESTORE.types


def frames_640x480(count: int) -> tuple[list[np.ndarray], str]:
    """``count`` uint8 [480,640,3] RGB frames and where they come from."""
    paths = sorted(REAL_NYU.glob('*.jpg'))
    if paths:
        images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
        return [images[i % len(images)] for i in range(count)], f'real NYU frames ({len(images)}, cycled)'
    v, u = np.mgrid[0:480, 0:640]
    return [np.stack([u * 255 // 640, v * 255 // 480, np.full_like(u, 7 * i % 255)], -1).astype(np.uint8)
            for i in range(count)], 'synthetic pattern'


def student_model(folder: Path) -> tuple[Path, str]:
    """Export the default student, or fall back to the synthetic contract graph without torch."""
    try:
        from disdepth.config import Config
        from disdepth.export import export_onnx
        from disdepth.models.student import build_student
    except ImportError as exc:
        from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

        path = build_synthetic_onnx(str(folder / 'synthetic.onnx'), *MODEL_SIZE, std_ratio=0.1)
        return Path(path), f'synthetic contract graph (onnx.helper; student export unavailable: {exc})'
    cfg = Config()
    model = build_student(cfg.model)
    report = export_onnx(model, cfg, folder / 'student.onnx', *MODEL_SIZE, check_images=1)
    return report.path, f'default student exported by disdepth.export ({report.metadata["model_name"]}, random init)'


def header(index: int):
    stamp = 1_700_000_000_000_000_000 + index * 33_000_000
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
        sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id='camera_optical_frame'), stamp


def write_inputs(folder: Path, frames: list[np.ndarray]) -> None:
    """folder/{compressed_mcap, raw_sqlite3} bags and folder/jpg/ with the same frames."""
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    (folder / 'jpg').mkdir()
    for name, storage in (('compressed_mcap', StoragePlugin.MCAP), ('raw_sqlite3', StoragePlugin.SQLITE3)):
        writer = BagWriter(folder / name, storage)
        for i, rgb in enumerate(frames):
            hdr, stamp = header(i)
            info = T[CAMERA_INFO](header=hdr, height=480, width=640, distortion_model='plumb_bob', d=np.zeros(5),
                                  k=np.array(NYU_K), r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0,
                                  binning_y=0, roi=roi)
            writer.write('/camera/camera_info', info, stamp)
            if storage == StoragePlugin.MCAP:
                jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].reshape(-1)
                writer.write('/camera/image_raw/compressed', T[COMPRESSED_IMAGE](header=hdr, format='jpeg',
                                                                                 data=jpeg), stamp)
                (folder / 'jpg' / f'{i:05d}.jpg').write_bytes(jpeg.tobytes())
            else:
                empty = T[IMAGE](header=hdr, height=0, width=0, encoding='', is_bigendian=0, step=0,
                                 data=np.empty(0, np.uint8))
                writer.write('/camera/image_raw', fill_image(empty, rgb, 'rgb8'), stamp)
        writer.close()
    fx, _, cx, _, fy, cy = NYU_K[:6]
    (folder / 'camera.yaml').write_text(
        'image_width: 640\nimage_height: 480\ndistortion_model: plumb_bob\n'
        f'camera_matrix: {{rows: 3, cols: 3, data: [{fx}, 0, {cx}, 0, {fy}, {cy}, 0, 0, 1]}}\n'
        'distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n'
        'rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n'
        f'projection_matrix: {{rows: 3, cols: 4, data: [{fx}, 0, {cx}, 0, 0, {fy}, {cy}, 0, 0, 0, 1, 0]}}\n')


GOAL_RATIO = 0.9


def model_frames_per_s(pipeline, blobs: list[np.ndarray]) -> float:
    """Frames/s of ``backend.infer`` alone on ``blobs`` (preprocessed frames), one after another."""
    start = time.perf_counter()
    for blob in blobs:
        pipeline.backend.infer(blob)
    return len(blobs) / (time.perf_counter() - start)


def timed(argv: list[str], output: Path, sequential: bool = False) -> tuple[float, float]:
    """(wall seconds, processing seconds after start-up) of one ``mono_depth_offline argv OUTPUT`` run from
    scratch; ``sequential`` runs its stages one after another (``overlapped.Sequential``, as before they overlapped)."""
    shutil.rmtree(output, ignore_errors=True)
    args = build_parser().parse_args([*argv, str(output), '--quiet'])
    with ExitStack() as stack:
        if sequential:
            for module in (offline_bag, offline_images):
                stack.enter_context(mock.patch.object(module, 'Overlapped', Sequential))
        start = time.perf_counter()
        summary = offline_bag.run_bag(args) if args.command == 'bag' else offline_images.run_images(args)
        return time.perf_counter() - start, summary.processing_seconds


def run(args) -> dict:
    frames, frames_source = frames_640x480(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, model_source = (Path(args.model), 'given with --model') if args.model else student_model(folder)
        write_inputs(folder, frames)
        params_file = default_params_file()
        if args.num_threads is not None:  # the model's threads for both sides (default: the package's params)
            params_file = folder / 'params.yaml'
            text = default_params_file().read_text()
            params_file.write_text(re.sub(r'(?m)^(\s*num_threads:) *\d+', rf'\g<1> {args.num_threads}', text))
        params = load_params_file(str(params_file)).replace(model_path=str(model))
        pipeline = load_pipeline(params)
        camera = CameraModel.from_k(NYU_K, 640, 480)
        blobs = [pipeline.preprocess(rgb) for rgb in frames]
        model_frames_per_s(pipeline, blobs[:3])  # warm-up
        per_frame = []
        for rgb in frames:
            start = time.perf_counter()
            pipeline.process(rgb, camera)
            per_frame.append(time.perf_counter() - start)
        common = ['--model', str(model), '--params-file', str(params_file)]
        modes = {
            'bag_compressed_mcap': ['bag', str(folder / 'compressed_mcap'), *common],
            'bag_raw_sqlite3': ['bag', str(folder / 'raw_sqlite3'), *common],
            'images_jpeg': ['images', str(folder / 'jpg'), *common, '--camera-info', str(folder / 'camera.yaml')],
            'images_jpeg_ply': ['images', str(folder / 'jpg'), *common, '--camera-info',
                                str(folder / 'camera.yaml'), '--ply'],
        }
        # the machine may be shared: each command runs right after the model alone on the same frames, and the
        # ratio is taken within that pair, so load from others hits both sides alike
        runs: dict[str, list] = {name: [] for name in modes}
        loads = []
        for _ in range(args.repeats):
            for name, argv in modes.items():
                model_rate = model_frames_per_s(pipeline, blobs)
                wall, processing = timed(argv, folder / f'out_{name}')
                _, sequential = timed(argv, folder / f'out_{name}', sequential=True)
                runs[name].append((model_rate, len(frames) / processing, len(frames) / wall,
                                   len(frames) / sequential))
                loads.append(os.getloadavg()[0])
        results = {}
        for name, samples in runs.items():
            ratio = statistics.median(tool / model for model, tool, _, _ in samples)
            results[name] = {'model_frames_per_s': round(statistics.median(m for m, _, _, _ in samples), 2),
                             'frames_per_s': round(statistics.median(t for _, t, _, _ in samples), 2),
                             'frames_per_s_with_startup': round(statistics.median(w for _, _, w, _ in samples), 2),
                             'ratio_vs_model': round(ratio, 3),
                             'goal_met': ratio >= GOAL_RATIO,
                             'sequential_frames_per_s': round(statistics.median(q for _, _, _, q in samples), 2),
                             'sequential_ratio_vs_model': round(statistics.median(q / m for m, _, _, q in samples),
                                                                3)}
        model_ms = 1e3 / statistics.median(r['model_frames_per_s'] for r in results.values())
        info = pipeline.info
    return {
        'what': 'mono_depth_offline frames/s on 640x480 input vs the model latency, ONNX Runtime CPU',
        'model': {'source': model_source, 'name': info.model_name, 'input': f'{info.input_width}x{info.input_height}',
                  'outputs': list(info.outputs)},
        'frames': {'count': len(frames), 'size': '640x480', 'source': frames_source},
        'backend': {'name': params.backend, 'device': params.device,
                    'num_threads': params.num_threads or 'ORT default'},
        'model_latency_ms_median': round(model_ms, 2),
        'pipeline_process_ms_median': round(statistics.median(per_frame) * 1e3, 2),
        'goal_ratio_vs_model': GOAL_RATIO,
        'modes': results,
        'repeats_per_mode': args.repeats,
        'load_average_1min': {'min': round(min(loads), 2), 'median': round(statistics.median(loads), 2),
                              'max': round(max(loads), 2)},
        'note': 'model_frames_per_s: backend.infer alone on the same preprocessed frames, back to back, in the '
                'same process with the same params, right before each command; frames_per_s: the command after '
                'start-up (reading, decoding, resizing, inference, cloud, encoding and writing, overlapped on '
                'threads: depth_kd_ros/offline/overlapped.py); frames_per_s_with_startup: whole command (model '
                'load, bag index); ratio_vs_model: frames_per_s / model_frames_per_s of the same repeat; '
                'sequential_*: the same command with its stages one after another (as before the overlap), right '
                'after it; medians over repeats',
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version()},
    }


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--num-threads', type=int, help='the model\'s intra-op threads, for the model alone and '
                        'the tool (default: num_threads of config/mono_depth.yaml)')
    parser.add_argument('--model', help='an exported student .onnx (default: export the default student)')
    parser.add_argument('--output', type=Path, default=ROOT / 'bench' / 'results' / 'offline.json')
    args = parser.parse_args(argv)
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(cli())
