"""Pairing each image with the camera_info of its own stamp: one rule for the live node and for bags.

Paper: DisDepth (arXiv 2404.16386) depth is rescaled and back-projected with the frame's intrinsics
(pipeline.py), so a frame must get the calibration of its own stamp. Source: ROS 2 message_filters' ``Cache``
(the most recent N messages, ``getElemBeforeTime``) and image_transport's CameraSubscriber (exact stamps).

    match(t):  the camera_info with the latest header stamp <= t, the last received among equal stamps: the one
               stamped t (exact) if held, else the newest before it (a calibration latched once, or published at a
               lower rate, serves every later frame), else None

The node holds the last ``capacity`` received (``CameraInfoBuffer``); a bag's reader holds every one of the topic
(``bag_camera_infos``, capacity None), so a camera_info received just after its image still pairs. Differences
from message_filters.Cache: stamps are compared as they are, not in arrival order (its Python Cache appends in
arrival order although it says 'sorted'), so out-of-order arrivals pair correctly; and the oldest *arrival* is
evicted, not the oldest stamp, so after a clock jump back (a bag played in a loop, a simulator reset) the new,
earlier stamps are kept and the stale later ones age out. Thread-safe: the subscription callback adds while the
worker thread matches.
"""
from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterable
from typing import NamedTuple

from depth_kd_ros.io.bagio import read_messages

NANOSECONDS_PER_SECOND = 1_000_000_000
#: ~1 s of camera_info at 30 Hz: more than a frame waits between its callback and the worker (keep-latest)
DEFAULT_CAPACITY = 30


def stamp_nanoseconds(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags: ``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


class CameraInfoMatch(NamedTuple):
    """A held camera_info for an image stamp; ``exact`` is False when it carries an earlier stamp."""

    info: object
    exact: bool


class CameraInfoBuffer:
    """camera_infos by header stamp, matched to image stamps (module docstring).

    Args:
        capacity: how many are held, the oldest arrival going first when full (the node's recent ones); None
            holds every one added (a bag's).
    Raises (constructor):
        ValueError: a capacity below 1.
    """

    def __init__(self, capacity: int | None = DEFAULT_CAPACITY):
        if capacity is not None and capacity < 1:
            raise ValueError(f'capacity must be at least 1, got {capacity}')
        self._capacity = capacity
        self._keys: list[tuple[int, int]] = []  # (stamp ns, arrival number), sorted
        self._infos: list = []  # the camera_info of each key
        self._arrivals = itertools.count()
        self._lock = threading.Lock()

    @classmethod
    def holding(cls, stamped: Iterable[tuple[int, object]]) -> CameraInfoBuffer:
        """A buffer without a capacity holding every (stamp ns, camera_info) of ``stamped``, given in arrival order;
        sorted once, where ``add`` would insert one at a time (a bag's every camera_info)."""
        buffer = cls(capacity=None)
        entries = sorted(((stamp, next(buffer._arrivals)), info) for stamp, info in stamped)  # keys are unique
        buffer._keys = [key for key, _ in entries]
        buffer._infos = [info for _, info in entries]
        return buffer

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, info, stamp_ns: int | None = None) -> None:
        """Hold ``info`` (a CameraInfo of any message library); its header stamp unless ``stamp_ns`` is given.
        When full, the oldest arrival goes."""
        key = (stamp_nanoseconds(info.header.stamp) if stamp_ns is None else int(stamp_ns), next(self._arrivals))
        with self._lock:
            index = bisect.bisect(self._keys, key)
            self._keys.insert(index, key)
            self._infos.insert(index, info)
            if self._capacity is not None and len(self._keys) > self._capacity:
                oldest = min(range(len(self._keys)), key=lambda i: self._keys[i][1])
                del self._keys[oldest], self._infos[oldest]

    def match(self, stamp_ns: int) -> CameraInfoMatch | None:
        """The camera_info for an image stamped ``stamp_ns`` (module docstring). None when every held stamp is
        later, or none is held."""
        with self._lock:
            index = bisect.bisect(self._keys, (stamp_ns, float('inf')))  # past every key stamped <= stamp_ns
            if not index:
                return None
            return CameraInfoMatch(self._infos[index - 1], self._keys[index - 1][0] == stamp_ns)

    def clear(self) -> None:
        """Forget every held camera_info (e.g. when the input topic is re-subscribed)."""
        with self._lock:
            self._keys.clear()
            self._infos.clear()


def bag_camera_infos(reader, topic: str | None) -> CameraInfoBuffer:
    """Every camera_info of ``topic`` in an open bag (none without a topic), to match image stamps with.

    Messages with equal contents (size, distortion, K, R, P, binning; the header aside) share one object, so an
    hour of 30 Hz camera_info holds a list of stamps, not 100k messages.

    Raises:
        BagError: the storage is truncated or corrupt.
    """
    unique: dict[tuple, object] = {}

    def stamped():
        for _, _, _, msg in read_messages(reader, [topic]) if topic else ():
            key = (msg.width, msg.height, msg.distortion_model, msg.d.tobytes(), msg.k.tobytes(), msg.r.tobytes(),
                   msg.p.tobytes(), msg.binning_x, msg.binning_y)
            yield stamp_nanoseconds(msg.header.stamp), unique.setdefault(key, msg)

    return CameraInfoBuffer.holding(stamped())
