#!/usr/bin/env python3
"""Write a small synthetic RGB-D recording, as a robot's camera would record it, to try "Train for your own
camera" without a robot (training/README.md); the tests and bench/bench_recordings.py write theirs with it too.

    python scripts/synthetic_recording.py OUTPUT [--frames 120] [--rate 10] [--preset indoor|outdoor]
        [--height 480 --width 640] [--storage sqlite3|mcap|folder] [--depth 16UC1 compressedDepth ...]
        [--compressed-rgb] [--seed 0]

Frames come from the project's synthetic generator (training/disdepth/data/synthetic.py): a camera moving
forward through a room (indoor, NYU-like camera) or a street (outdoor, KITTI-like), a new scene every
``--frames-per-scene`` frames. A rosbag2 (written with ``rosbags``; sqlite3 or MCAP) holds RealSense-style
topics; colour and depth stamps differ by ``--depth-offset-ms`` (unsynchronised sensors) and every
message is received a few milliseconds after its stamp:

    /camera/color/image_raw                            sensor_msgs/Image rgb8 (or .../compressed, JPEG)
    /camera/color/camera_info                          sensor_msgs/CameraInfo (P = K, no distortion)
    /camera/aligned_depth_to_color/image_raw           --depth 16UC1: Image 16UC1 millimetres, 0 = none
    /camera/aligned_depth_to_color/image_raw/compressedDepth   --depth compressedDepth: CompressedImage,
                                                       image_transport's format '16UC1; compressedDepth png'
    /camera/depth_registered/image                     --depth 32FC1: Image 32FC1 metres, NaN = none
    /camera/depth_registered/image/compressedDepth     --depth compressedDepth32: '32FC1; compressedDepth png'
                                                       (inverse depth quantised, the plugin's defaults)

``--storage folder`` writes OUTPUT/camera.yaml (ROS calibration file), OUTPUT/rgb/<n>.png and, with any
--depth, OUTPUT/depth/<n>.png (uint16 millimetres). Exit status 2 with one line on bad arguments.
"""
from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml
from rosbags.rosbag2 import StoragePlugin

from depth_kd_ros.io.bagio import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, TYPESTORE, BagWriter
from depth_kd_ros.io.depth_encoding import depth_to_millimetres
from disdepth.data.synthetic import SyntheticScenes

T = TYPESTORE.types
COLOR, INFO = '/camera/color/image_raw', '/camera/color/camera_info'
DEPTH_TOPICS = {'16UC1': '/camera/aligned_depth_to_color/image_raw',
                'compressedDepth': '/camera/aligned_depth_to_color/image_raw/compressedDepth',
                '32FC1': '/camera/depth_registered/image',
                'compressedDepth32': '/camera/depth_registered/image/compressedDepth'}
STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
#: metres the camera moves per frame (walking pace indoors, driving outdoors at 10 Hz)
STEP = {'indoor': 0.05, 'outdoor': 0.8}
START_NS = 1_700_000_000_000_000_000
#: compressed_depth_image_transport's defaults (depth_max 10 m, depth_quantization 100)
DEPTH_MAX, DEPTH_QUANTIZATION = 10.0, 100.0


def encode_compressed_depth(depth: np.ndarray, encoding: str) -> tuple[str, np.ndarray]:
    """(format, data) of a CompressedImage as compressed_depth_image_transport publishes ``depth`` (metres,
    0 = none): 12-byte header (int32 0, float32 a, b) + PNG of uint16 millimetres (16UC1) or of the quantised
    inverse depth a / d + b (32FC1; beyond DEPTH_MAX or not representable in 16 bits: 0)."""
    a = b = 0.0
    if encoding == '16UC1':
        quantised = depth_to_millimetres(depth)
    else:
        a = DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1.0)
        b = 1.0 - a / DEPTH_MAX
        with np.errstate(divide='ignore'):
            inverse = np.where((depth > 0) & (depth < DEPTH_MAX), a / np.maximum(depth, 1e-6) + b, 0.0)
        quantised = np.where(inverse <= 65535, inverse, 0).astype(np.uint16)
    png = cv2.imencode('.png', quantised)[1]
    payload = struct.pack('<iff', 0, a, b) + png.tobytes()
    return f'{encoding}; compressedDepth png', np.frombuffer(payload, np.uint8)


def header(stamp: int, frame_id: str = 'camera_color_optical_frame'):
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
        sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id=frame_id)


def image_message(stamp: int, array: np.ndarray, encoding: str):
    """sensor_msgs/Image of an [H,W(,3)] array (rgb8, 16UC1 or 32FC1), little-endian, no row padding."""
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
    return T[IMAGE](header=header(stamp), height=height, width=width, encoding=encoding, is_bigendian=0,
                    step=data.size // height, data=data)


def camera_info_message(stamp: int, K: np.ndarray, width: int, height: int):
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return T[CAMERA_INFO](header=header(stamp), height=height, width=width, distortion_model='plumb_bob',
                          d=np.zeros(5), k=K.astype(np.float64).reshape(-1), r=np.eye(3).reshape(-1),
                          p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0.0]), binning_x=0, binning_y=0, roi=roi)


def calibration_yaml(K: np.ndarray, width: int, height: int) -> str:
    """A ROS camera_calibration file (camera_info_manager's format) of a distortion-free camera."""
    p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    document = {'image_width': width, 'image_height': height, 'camera_name': 'synthetic',
                'camera_matrix': {'rows': 3, 'cols': 3, 'data': [float(v) for v in K.reshape(-1)]},
                'distortion_model': 'plumb_bob', 'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.0] * 5},
                'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [float(v) for v in np.eye(3).reshape(-1)]},
                'projection_matrix': {'rows': 3, 'cols': 4, 'data': [float(v) for v in p]}}
    return yaml.safe_dump(document, sort_keys=False)


def render_frames(scenes: SyntheticScenes, count: int, frames_per_scene: int):
    """Yield (rgb uint8 [H,W,3], depth float32 [H,W] metres 0 = none) of a camera moving forward."""
    for i in range(count):
        out = scenes.render(i // frames_per_scene, forward=STEP[scenes.preset] * (i % frames_per_scene))
        yield out['image'], out['depth']


def write_recording(path: Path, *, frames: int = 120, rate: float = 10.0, preset: str = 'indoor',
                    height: int = 480, width: int = 640, storage: str = 'sqlite3', depth: tuple = ('16UC1',),
                    compressed_rgb: bool = False, seed: int = 0, frames_per_scene: int = 10,
                    depth_offset_ms: float = 2.0, camera_info: bool = True, corrupt: tuple[int, ...] = ()) -> Path:
    """Write the recording (module docstring) to ``path``, which must not exist; returns ``path``.

    For the tests' faulty recordings: ``camera_info=False`` leaves camera_info out, ``corrupt`` lists frames
    whose compressed colour image is cut short.
    """
    scenes = SyntheticScenes(preset, height, width, seed=seed)
    K = scenes.K.astype(np.float64)
    rendered = render_frames(scenes, frames, frames_per_scene)
    if storage == 'folder':
        for name in ('rgb', 'depth') if depth else ('rgb',):
            (path / name).mkdir(parents=True)
        (path / 'camera.yaml').write_text(calibration_yaml(K, width, height))
        for i, (rgb, metres) in enumerate(rendered):
            cv2.imwrite(str(path / 'rgb' / f'{i:06d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if depth:
                cv2.imwrite(str(path / 'depth' / f'{i:06d}.png'), depth_to_millimetres(metres))
        return path
    writer = BagWriter(path, STORAGES[storage])
    try:
        for i, (rgb, metres) in enumerate(rendered):
            stamp = START_NS + round(i * 1e9 / rate)
            if compressed_rgb:
                jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
                jpeg = jpeg.reshape(-1)[:len(jpeg) // 3 if i in corrupt else None]
                writer.write(COLOR + '/compressed', T[COMPRESSED_IMAGE](header=header(stamp), format='jpeg',
                                                                        data=jpeg), stamp + 5_000_000)
            else:
                writer.write(COLOR, image_message(stamp, rgb, 'rgb8'), stamp + 5_000_000)
            if camera_info:
                writer.write(INFO, camera_info_message(stamp, K, width, height), stamp + 5_000_000)
            depth_stamp = stamp + round(depth_offset_ms * 1e6)
            for kind in depth:
                if kind == '16UC1':
                    message = image_message(depth_stamp, depth_to_millimetres(metres), '16UC1')
                elif kind == '32FC1':
                    message = image_message(depth_stamp, np.where(metres > 0, metres, np.nan).astype(np.float32),
                                            '32FC1')
                else:
                    image_format, data = encode_compressed_depth(metres, '16UC1' if kind == 'compressedDepth'
                                                                 else '32FC1')
                    message = T[COMPRESSED_IMAGE](header=header(depth_stamp), format=image_format, data=data)
                writer.write(DEPTH_TOPICS[kind], message, depth_stamp + 8_000_000)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('output', type=Path, metavar='OUTPUT', help='new rosbag2 folder (or image folder)')
    parser.add_argument('--frames', type=int, default=120)
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second (stamps)')
    parser.add_argument('--preset', choices=sorted(STEP), default='indoor')
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--storage', choices=(*STORAGES, 'folder'), default='sqlite3')
    parser.add_argument('--depth', nargs='*', choices=sorted(DEPTH_TOPICS), default=['16UC1'],
                        help='depth topics to write (none: no depth)')
    parser.add_argument('--compressed-rgb', action='store_true', help='colour as CompressedImage (JPEG)')
    parser.add_argument('--frames-per-scene', type=int, default=10)
    parser.add_argument('--depth-offset-ms', type=float, default=2.0, help='depth stamp minus colour stamp')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.exit(2, f'{parser.prog}: error: {args.output} exists; choose a new path\n')
    if min(args.frames, args.height, args.width, args.frames_per_scene) <= 0 or not args.rate > 0:
        parser.exit(2, f'{parser.prog}: error: --frames, --height, --width, --frames-per-scene and --rate must be '
                    'positive\n')
    write_recording(args.output, frames=args.frames, rate=args.rate, preset=args.preset, height=args.height,
                    width=args.width, storage=args.storage, depth=tuple(args.depth),
                    compressed_rgb=args.compressed_rgb, seed=args.seed, frames_per_scene=args.frames_per_scene,
                    depth_offset_ms=args.depth_offset_ms)
    print(f'wrote {args.output}: {args.frames} frames {args.width}x{args.height} at {args.rate:g} Hz ({args.preset}, '
          f'{args.storage}), depth: {", ".join(args.depth) or "none"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
