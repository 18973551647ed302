"""Replay a synthetic camera through the real `mono_depth_node` over ROS 2 and record what it publishes.

Used by scripts/demo.py and its end-to-end test. The node runs as its own process (the
installed console script), the camera and the recorder live in this process, and the two talk over
real DDS. Outputs are subscribed reliable (docs/design.md section 4: Fast DDS drops large best-effort
messages between processes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.messages import fill_camera_info, fill_image

NAMESPACE = '/demo_camera'
FRAME_ID = 'camera_optical_frame'


@dataclass
class Recording:
    """What came back: depth images and clouds by frame index, and wall-clock latencies (s)."""

    depth: dict = field(default_factory=dict)
    points: dict = field(default_factory=dict)
    latency_s: dict = field(default_factory=dict)
    received_at: list = field(default_factory=list)
    topics: set = field(default_factory=set)


def depth_from_msg(msg: Image) -> np.ndarray:
    """32FC1 sensor_msgs/Image -> float32 [H,W] metres (REP 118).

    Raises:
        ValueError: another encoding.
    """
    if msg.encoding != '32FC1':
        raise ValueError(f'depth encoding {msg.encoding!r}, expected 32FC1')
    rows = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(msg.height, msg.step // 4)
    return rows[:, :msg.width].copy()


def xyz_from_cloud(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 with float32 x, y, z -> [N,3] finite points (metres, optical frame)."""
    offsets = {f.name: f.offset for f in msg.fields}
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    xyz = np.stack([raw[:, offsets[a]:offsets[a] + 4].copy().view(np.float32)[:, 0] for a in 'xyz'], axis=1)
    return xyz[np.isfinite(xyz).all(axis=1)]


def _node_command(model_path: Path, log_level: str) -> list:
    exe = shutil.which('mono_depth_node', path=str(Path(sys.executable).parent)) or shutil.which('mono_depth_node')
    if exe is None:
        raise RuntimeError('mono_depth_node is not installed; run `make setup` first')
    return [exe, '--ros-args', '-r', f'__ns:={NAMESPACE}', '-p', f'model_path:={model_path}',
            '-p', 'backend:=onnxruntime', '-p', 'points_stride:=1', '--log-level', log_level]


def replay(model_path: Path, frames: list, rate_hz: float, log_path: Path, timeout_s: float = 60.0) -> Recording:
    """Publish ``frames`` (dicts with image uint8 [H,W,3] RGB and K [3,3]) at ``rate_hz``; record outputs.

    Raises:
        RuntimeError: the node exits early or never subscribes within ``timeout_s``.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'w') as log:
        node_proc = subprocess.Popen(_node_command(model_path, 'info'), stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        try:
            return _run_camera(node_proc, frames, rate_hz, timeout_s)
        finally:
            node_proc.terminate()
            try:
                node_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node_proc.kill()


def _run_camera(node_proc, frames: list, rate_hz: float, timeout_s: float) -> Recording:
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('demo_camera', namespace=NAMESPACE, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    record, stamps, sent_at, lock = Recording(), {}, {}, threading.Lock()
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

    def on_message(topic, convert, store):
        def callback(msg):
            now = time.monotonic()
            index = stamps.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
            with lock:
                record.topics.add(topic)
                if index is None:
                    return
                store[index] = convert(msg)
                if topic == 'depth':
                    record.latency_s[index] = now - sent_at[index]
                    record.received_at.append(now)
        return callback

    node.create_subscription(Image, 'depth', on_message('depth', depth_from_msg, record.depth), reliable)
    node.create_subscription(PointCloud2, 'points', on_message('points', xyz_from_cloud, record.points), reliable)
    image_pub = node.create_publisher(Image, 'image', reliable)
    info_pub = node.create_publisher(CameraInfo, 'camera_info', reliable)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + timeout_s
        while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
            if node_proc.poll() is not None:
                raise RuntimeError(f'mono_depth_node exited with code {node_proc.returncode} before subscribing')
            if time.monotonic() > deadline:
                raise RuntimeError(f'mono_depth_node did not subscribe to {NAMESPACE}/image within {timeout_s} s')
            time.sleep(0.1)
        time.sleep(0.5)  # let the node's reliable publishers match our subscriptions too
        for index, frame in enumerate(frames):
            height, width = frame['image'].shape[:2]
            stamp = node.get_clock().now().to_msg()
            stamps[(stamp.sec, stamp.nanosec)] = index
            info = fill_camera_info(CameraInfo(), CameraModel.from_k(frame['K'].reshape(-1), width, height))
            image = fill_image(Image(), np.ascontiguousarray(frame['image']), encoding='rgb8')
            for msg in (info, image):
                msg.header.stamp, msg.header.frame_id = stamp, FRAME_ID
            info_pub.publish(info)
            sent_at[index] = time.monotonic()
            image_pub.publish(image)
            time.sleep(1.0 / rate_hz)
        end = time.monotonic() + 10.0
        while time.monotonic() < end and len(record.depth) < len(frames):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=5)
    return record
