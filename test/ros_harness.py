"""Real rclpy + Fast DDS harness for the node tests: one Context per harness, a private domain id.

The node runs in-process (MonoDepthNode) next to a client node in one executor thread, so tests can
also read its FrameStats. Images stay small (64x48) because Fast DDS loses large best-effort messages
(docs/design.md section 4); outputs are reliable and the client subscribes reliably.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 rclpy wheels are not installed in this environment')

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from depth_kd_ros.camera.pairing import stamp_nanoseconds  # noqa: E402
from depth_kd_ros.node.mono_depth_node import MonoDepthNode  # noqa: E402

# A domain of its own per test session, so concurrent test runs of other helpers do not cross-talk.
DOMAIN_ID = 120 + os.getpid() % 100
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

#: how long a test waits for an event that takes milliseconds on an idle machine: a bound against a hung test,
#: far beyond what a busy one needs (nothing is timed)
EVENT_TIMEOUT_S = 30.0
WIDTH, HEIGHT = 64, 48
K = (50.0, 0.0, 30.5, 0.0, 50.0, 20.5, 0.0, 0.0, 1.0)  # focal = the model's: scale 1
OUTPUTS = {'depth': Image, 'depth/camera_info': CameraInfo, 'depth/colored': Image, 'points': PointCloud2,
           'depth/uncertainty': Image}


NODE_BIN = Path(sys.executable).parent / 'mono_depth_node'
NODE_COMMAND = [str(NODE_BIN)] if NODE_BIN.exists() else [sys.executable, '-m', 'depth_kd_ros.node.process']


def node_command_with_stop_wait(seconds: float) -> list[str]:
    """mono_depth_node's command with its WORKER_STOP_S (how long stopping waits for the frame in progress) set to
    ``seconds``, so that a test's slow frame outlasts it in well under the default 5 s."""
    return [sys.executable, '-c', 'import sys; import depth_kd_ros.node.mono_depth_node as node; '
            'from depth_kd_ros.node.process import main; '
            f'node.WORKER_STOP_S = {seconds!r}; sys.exit(main())']


def start_node_process(*ros_args: str, command: list[str] = NODE_COMMAND) -> subprocess.Popen:
    """mono_depth_node as `ros2 run` starts it (or ``command``), with ``--ros-args ros_args``, on this session's
    domain; text pipes.

    Root namespace unless the arguments remap it: a params file keyed `mono_depth_node:` matches only
    /mono_depth_node (harness nodes in this session live in /hN namespaces, so they do not hear this one).
    """
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), PYTHONUNBUFFERED='1')
    return subprocess.Popen([*command, '--ros-args', *ros_args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_image(stamp: int, width: int = WIDTH, height: int = HEIGHT, encoding: str = 'bgr8',
               frame_id: str = 'camera_optical_frame') -> tuple[Image, np.ndarray]:
    """A bgr8 frame with a horizontal gradient, and the RGB it encodes."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    rgb[..., 1] = 60
    rgb[..., 2] = np.linspace(255, 0, height, dtype=np.uint8)[:, None]
    msg = Image(height=height, width=width, encoding=encoding, step=width * 3,
                data=rgb[..., ::-1].tobytes())
    msg.header.stamp.sec, msg.header.frame_id = stamp, frame_id
    return msg, rgb


def expected_depth(rgb: np.ndarray) -> np.ndarray:
    """The depth of test/ros/conftest.py's model_path for ``rgb`` at the model size, focal scale 1 (metres)."""
    return 2.0 + 4.0 * rgb.astype(np.float32).mean(axis=2) / 255.0


def make_camera_info(width: int = WIDTH, height: int = HEIGHT, k=K) -> CameraInfo:
    msg = CameraInfo(width=width, height=height, k=[float(v) for v in k], distortion_model='plumb_bob',
                     d=[0.0] * 5, p=[k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0])
    msg.header.frame_id = 'camera_optical_frame'
    return msg


class Harness:
    """MonoDepthNode + a client that publishes inputs and keeps every output per topic.

    Each harness lives in its own namespace, so harnesses alive at the same time do not hear each other.
    """

    count = 0

    def __init__(self, model_path: str | None, namespace: str | None = None, image_topic: str = 'image',
                 camera_info_topic: str = 'camera_info', discover: bool = True, **overrides):
        """model_path None: client only (the node runs elsewhere, e.g. as a subprocess in ``namespace``).

        image_topic, camera_info_topic: where the client publishes its inputs (relative to ``namespace``, or
        absolute for a node whose inputs are remapped, e.g. by a launch file).
        discover False: return without waiting for the node's topics (a managed node that is not active yet
        has none: wait_for_node() once it is).
        """
        Harness.count += 1
        namespace = namespace or f'/h{Harness.count}'
        self.context = Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = None
        if model_path is not None:
            params = [Parameter('model_path', value=model_path), Parameter('num_threads', value=1)]
            params += [Parameter(name, value=value) for name, value in overrides.items()]
            self.node = MonoDepthNode(context=self.context, parameter_overrides=params, namespace=namespace)
        self.client = Node('test_client', context=self.context, namespace=namespace)
        self.received: dict[str, list] = {topic: [] for topic in OUTPUTS}
        self.camera_info: CameraInfo | None = None  # the last one sent
        self.arrival: dict[int, float] = {}
        self._lock = threading.Lock()
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, kind in OUTPUTS.items():
            self.client.create_subscription(kind, topic, lambda m, t=topic: self._store(t, m), reliable)
        self.pub_image = self.client.create_publisher(Image, image_topic, 10)
        self.pub_compressed = self.client.create_publisher(CompressedImage, image_topic + '/compressed', 10)
        self.pub_info = self.client.create_publisher(CameraInfo, camera_info_topic, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in (self.node, self.client):
            if node is not None:
                self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        if discover:
            self.wait_for_node()

    def wait_for_node(self) -> None:
        """Until the node subscribes the client's inputs and publishes depth (DDS discovery)."""
        self.wait(lambda: self.pub_image.get_subscription_count() + self.pub_compressed.get_subscription_count() > 0
                  and self.pub_info.get_subscription_count() > 0
                  and self.client.count_publishers('depth') > 0, EVENT_TIMEOUT_S, 'discovery')
        time.sleep(0.2)

    keep_messages = True  # False: record only depth arrival times (memory tests)

    def _store(self, topic, msg):
        with self._lock:
            if self.keep_messages:
                self.received[topic].append(msg)
            if topic == 'depth':
                self.arrival[msg.header.stamp.sec] = time.monotonic()

    def messages(self, topic: str, stamp: int | None = None) -> list:
        with self._lock:
            return [m for m in self.received[topic] if stamp is None or m.header.stamp.sec == stamp]

    @staticmethod
    def wait(predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')

    def send_camera_info(self, msg: CameraInfo | None = None) -> None:
        """Publish a camera_info. It travels on another topic than the images, so an image published next may
        overtake it: with the node in this process, return once the node holds it (re-sent each second in case
        best-effort lost it); a node in another process gets it again with each re-sent image (request)."""
        msg = self.camera_info = msg or make_camera_info()
        if self.node is None:
            self.pub_info.publish(msg)
            return
        stamp, sent = stamp_nanoseconds(msg.header.stamp), repr(msg)  # text: NaN fields compare equal

        def held() -> bool:
            match = self.node._camera_infos.match(stamp)
            return match is not None and repr(match.info) == sent
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while time.monotonic() < deadline:
            self.pub_info.publish(msg)
            try:
                self.wait(held, 1.0, '')
                return
            except AssertionError:
                continue
        raise AssertionError(f'the node did not receive the camera_info within {EVENT_TIMEOUT_S} s')

    def request(self, msg, stamp: int, topics=('depth',), timeout: float = EVENT_TIMEOUT_S) -> dict[str, object]:
        """Publish ``msg`` (re-sent each second in case best-effort lost it) until every topic answers."""
        deadline = time.monotonic() + timeout
        first = True
        while time.monotonic() < deadline:
            if not first and self.node is None and self.camera_info is not None:
                self.pub_info.publish(self.camera_info)
            first = False
            (self.pub_compressed if isinstance(msg, CompressedImage) else self.pub_image).publish(msg)
            try:
                self.wait(lambda: all(self.messages(t, stamp) for t in topics), 1.0, '')
                time.sleep(0.1)  # the other outputs of this frame are published right after depth
                return {t: self.messages(t, stamp)[-1] for t in OUTPUTS if self.messages(t, stamp)}
            except AssertionError:
                continue
        raise AssertionError(f'no {topics} for stamp {stamp} within {timeout} s')

    def deliver(self, msg) -> None:
        """Publish ``msg`` (re-sent in case best-effort lost it) until the node in this process has received one
        more frame: frames sent one by one this way are never overwritten in its depth-1 input queue."""
        received = self.node.stats.frames_in
        publisher = self.pub_compressed if isinstance(msg, CompressedImage) else self.pub_image
        self.wait(lambda: publisher.publish(msg) or self.node.stats.frames_in > received, EVENT_TIMEOUT_S,
                  f'the node to receive the frame stamped {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}')

    def keep_worker_busy(self, first_stamp: int, timeout: float, period: float = 0.05) -> int:
        """Publish frames ``first_stamp``, ``first_stamp + 1``, ... every ``period`` s until one of them is answered
        on depth; returns the next unused stamp. The node's worker has then just published a frame while newer ones
        were already received, and keep-latest hands it the newest at once: it is inside a frame. Tests that need a
        frame in progress wait for this event (with a model whose frame lasts far longer than ``period``: slow_model)
        instead of sleeping a fixed time after publishing one."""
        stamp = first_stamp

        def answered() -> bool:
            return any(m.header.stamp.sec >= first_stamp for m in self.messages('depth'))
        deadline = time.monotonic() + timeout
        while not answered():
            if time.monotonic() > deadline:
                raise AssertionError(f'no depth for the frames from stamp {first_stamp} on within {timeout} s')
            self.pub_image.publish(make_image(stamp)[0])
            stamp += 1
            time.sleep(period)
        return stamp

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        if self.node is not None:
            self.node.destroy_node()
        self.client.destroy_node()
        rclpy.try_shutdown(context=self.context)
