"""Helpers for the offline tool's tests: real and synthetic frames, and bags written with rosbags.

Bags are written here with the rosbags writer (sqlite3 and MCAP, raw and compressed images, camera_info);
frames come from ../shared/data/real (downscaled 4x to keep the tests fast) and from a synthetic pattern.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from depth_kd_ros.io.bagio import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, TYPESTORE
from depth_kd_ros.offline.cli import main

REAL = Path(__file__).resolve().parents[2].parent / 'shared' / 'data' / 'real'
# fx, fy, cx, cy at full resolution (shared/data/real/README.md)
KITTI_K = (721.5377, 721.5377, 609.5593, 172.854)
NYU_K = (518.8579, 519.46961, 325.58245, 253.73617)
T = TYPESTORE.types
STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}


@dataclass
class Frame:
    """One RGB frame with its intrinsics: rgb uint8 [H,W,3]; k the row-major 3x3 K (9 floats, pixels)."""

    name: str
    rgb: np.ndarray
    k: tuple[float, ...]


def k_matrix(fx, fy, cx, cy) -> tuple[float, ...]:
    return (fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)


def load_real(dataset: str, factor: int = 4) -> list[Frame]:
    """The real frames of ``dataset`` ('kitti' or 'nyu') downscaled by ``factor``, K scaled alike."""
    folder = REAL / dataset / 'rgb'
    if not folder.is_dir():
        pytest.skip(f'real frames not found at {folder} (../shared/data/real is outside the repository)')
    fx, fy, cx, cy = KITTI_K if dataset == 'kitti' else NYU_K
    frames = []
    for path in sorted(folder.iterdir()):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        height, width = bgr.shape[0] // factor, bgr.shape[1] // factor
        sx, sy = width / bgr.shape[1], height / bgr.shape[0]
        small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
        frames.append(Frame(path.stem, cv2.cvtColor(small, cv2.COLOR_BGR2RGB),
                            k_matrix(fx * sx, fy * sy, cx * sx, cy * sy)))
    return frames


def synthetic_frames(count: int = 4, height: int = 60, width: int = 80) -> list[Frame]:
    """Deterministic gradients with a moving square, and a NYU-like camera."""
    frames = []
    v, u = np.mgrid[0:height, 0:width]
    for i in range(count):
        rgb = np.stack([(u * 255 // width), (v * 255 // height), np.full_like(u, 40 * i)], -1).astype(np.uint8)
        rgb[10 + i:30 + i, 20 + 2 * i:40 + 2 * i] = 250
        frames.append(Frame(f'synthetic_{i}', rgb, k_matrix(70.0, 70.0, width / 2 - 3.5, height / 2 + 2.0)))
    return frames


def header(stamp_ns: int, frame_id: str):
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
        sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def image_message(frame: Frame, stamp_ns: int, frame_id: str, compressed: bool, *, corrupt: bool = False,
                  image_format: str = 'png'):
    """sensor_msgs/Image (rgb8) or CompressedImage (``image_format`` 'png', lossless, or 'jpeg'); ``corrupt``
    cuts the compressed pixel data short (a JPEG halfway after its start-of-scan marker FF DA: OpenCV 4.5/4.6
    decode that to a partly grey image; cut within its header tables, every OpenCV fails)."""
    if compressed:
        data = np.frombuffer(cv2.imencode(f'.{image_format}', cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))[1],
                             np.uint8)
        if corrupt:
            scan = data.tobytes().index(b'\xff\xda') if image_format == 'jpeg' else 0
            data = data[:(scan + len(data)) // 2 if scan else len(data) // 3]
        return T[COMPRESSED_IMAGE](header=header(stamp_ns, frame_id), format=image_format, data=data)
    height, width = frame.rgb.shape[:2]
    return T[IMAGE](header=header(stamp_ns, frame_id), height=height, width=width, encoding='rgb8',
                    is_bigendian=0, step=3 * width, data=frame.rgb.reshape(-1).copy())


def camera_info_message(k, width: int, height: int, stamp_ns: int, frame_id: str):
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    return T[CAMERA_INFO](header=header(stamp_ns, frame_id), height=height, width=width,
                          distortion_model='plumb_bob', d=np.zeros(5), k=np.asarray(k, np.float64),
                          r=np.eye(3).reshape(-1), p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0.0]),
                          binning_x=0, binning_y=0, roi=roi)


def camera_yaml(path: Path, width: int = 640, height: int = 480, drop: str | None = None, *, k=None, d=None,
                p=None, distortion_model: str = 'plumb_bob') -> Path:
    """A calibration file as ROS camera_calibration writes it (NYU intrinsics, no distortion, unless ``k``, ``d``,
    ``p`` and ``distortion_model`` are given); ``drop`` omits a key."""
    fx, fy, cx, cy = NYU_K
    k = [fx, 0, cx, 0, fy, cy, 0, 0, 1] if k is None else [float(x) for x in k]
    d = [0.0] * 5 if d is None else [float(x) for x in d]
    p = [k[0], 0, k[2], 0, 0, k[4], k[5], 0, 0, 0, 1, 0] if p is None else [float(x) for x in p]
    document = {
        'image_width': width, 'image_height': height, 'camera_name': 'kinect_rgb',
        'camera_matrix': {'rows': 3, 'cols': 3, 'data': k},
        'distortion_model': distortion_model,
        'distortion_coefficients': {'rows': 1, 'cols': len(d), 'data': d},
        'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        'projection_matrix': {'rows': 3, 'cols': 4, 'data': p}}
    document.pop(drop, None)
    path.write_text(yaml.safe_dump(document))
    return path


def stamp_of(index: int) -> int:
    """Header stamp of frame ``index`` (ns); its receive time is 7 ms later."""
    return 1_700_000_000_000_000_000 + index * 100_000_000 + 123


RECEIVE_DELAY = 7_000_000


def write_bag(path: Path, frames: list[Frame], *, storage: str = 'sqlite3', compressed: bool = False,
              topic: str = '/camera/image_raw', frame_id: str = 'camera_optical_frame',
              info_topic: str | None = '/camera/camera_info', info_delay: int = 0, corrupt: tuple[int, ...] = (),
              extra: dict[str, str] | None = None, image_format: str = 'png',
              calibration: Callable[[int], dict] | None = None) -> Path:
    """A rosbag2 with one image per frame (stamp_of(i), received 7 ms later) and a camera_info per frame
    stamped ``info_delay`` ns after its image; ``extra`` adds empty topics {name: msgtype}; compressed images
    are ``image_format`` ('png' or 'jpeg') and those of the frames in ``corrupt`` truncated; ``calibration(i)``
    gives fields to set on frame i's camera_info (a distorted camera: distortion_model, d, p)."""
    if compressed and not topic.endswith('/compressed'):
        topic += '/compressed'
    with Writer(path, version=8, storage_plugin=STORAGES[storage]) as writer:
        image_conn = writer.add_connection(topic, COMPRESSED_IMAGE if compressed else IMAGE, typestore=TYPESTORE)
        info_conn = info_topic and writer.add_connection(info_topic, CAMERA_INFO, typestore=TYPESTORE)
        for name, msgtype in (extra or {}).items():
            writer.add_connection(name, msgtype, typestore=TYPESTORE)
        for i, frame in enumerate(frames):
            stamp = stamp_of(i)
            message = image_message(frame, stamp, frame_id, compressed, corrupt=i in corrupt, image_format=image_format)
            writer.write(image_conn, stamp + RECEIVE_DELAY,
                         TYPESTORE.serialize_cdr(message, message.__msgtype__))
            if info_conn:
                height, width = frame.rgb.shape[:2]
                info = camera_info_message(frame.k, width, height, stamp + info_delay, frame_id)
                for name, value in (calibration(i) if calibration else {}).items():
                    setattr(info, name, value)
                writer.write(info_conn, stamp + info_delay + RECEIVE_DELAY,
                             TYPESTORE.serialize_cdr(info, CAMERA_INFO))
    return path


def read_bag(path: Path) -> tuple[dict[str, str], dict[str, list]]:
    """({topic: msgtype}, {topic: [(receive time ns, message)]}) of a whole bag."""
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        messages: dict[str, list] = {topic: [] for topic in types}
        for connection, timestamp, raw in reader.messages():
            messages[connection.topic].append((timestamp, reader.deserialize(raw, connection.msgtype)))
    return types, messages


def run(*argv, capsys=None) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr() if capsys else ('', '')
    return code, out, err


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    """Exit status 2 and one error line naming the problem, no traceback."""
    assert code == 2
    assert 'Traceback' not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith('mono_depth_offline: error: ')
    for needle in needles:
        assert needle in line
