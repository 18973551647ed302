"""Pairing each image with the camera_info of its own stamp: a short buffer of recent ones.

Paper: DisDepth (arXiv 2404.16386) depth is rescaled and back-projected with the frame's intrinsics
(pipeline.py), so a frame must get the calibration of its own stamp. Source: ROS 2 message_filters' ``Cache``
(the most recent N messages, ``getElemBeforeTime``) and image_transport's CameraSubscriber (exact stamps).

    match(t):  the info stamped t (exact) if one is held, else the newest stamped <= t (a calibration latched
               once, or published at a lower rate, serves every later frame), else None

Differences from message_filters.Cache: stamps are compared as they are, not in arrival order (its Python
Cache appends in arrival order although it says 'sorted'), so out-of-order arrivals pair correctly; and the
oldest *arrival* is evicted, not the oldest stamp, so after a clock jump back (a bag played in a loop, a
simulator reset) the new, earlier stamps are kept and the stale later ones age out. Thread-safe: the
subscription callback adds while the worker thread matches.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

NANOSECONDS_PER_SECOND = 1_000_000_000
#: ~1 s of camera_info at 30 Hz: more than a frame waits between its callback and the worker (keep-latest)
DEFAULT_CAPACITY = 30


def stamp_nanoseconds(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags: ``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


class CameraInfoMatch(NamedTuple):
    """A buffered camera_info for an image stamp; ``exact`` is False when it carries an earlier stamp."""

    info: object
    exact: bool


class CameraInfoBuffer:
    """The last ``capacity`` camera_infos received, matched to image stamps (module docstring)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError(f'capacity must be at least 1, got {capacity}')
        self._entries: deque[tuple[int, object]] = deque(maxlen=capacity)  # (stamp ns, info), arrival order
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, info, stamp_ns: int | None = None) -> None:
        """Hold ``info`` (a CameraInfo of any message library); its header stamp unless ``stamp_ns`` is given.
        When full, the oldest arrival goes."""
        stamp = stamp_nanoseconds(info.header.stamp) if stamp_ns is None else int(stamp_ns)
        with self._lock:
            self._entries.append((stamp, info))

    def match(self, stamp_ns: int) -> CameraInfoMatch | None:
        """The camera_info for an image stamped ``stamp_ns`` (module docstring); among equal stamps the latest
        arrival (a re-published, updated calibration). None when every held stamp is later, or none is held."""
        best = None
        with self._lock:
            for stamp, info in self._entries:  # arrival order: a later equal stamp replaces an earlier one
                if stamp == stamp_ns:
                    best = (stamp, info)
                elif stamp < stamp_ns and (best is None or (best[0] != stamp_ns and stamp >= best[0])):
                    best = (stamp, info)
        if best is None:
            return None
        return CameraInfoMatch(best[1], best[0] == stamp_ns)

    def clear(self) -> None:
        """Forget every held camera_info (e.g. when the input topic is re-subscribed)."""
        with self._lock:
            self._entries.clear()
