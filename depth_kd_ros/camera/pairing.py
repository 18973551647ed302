"""Pairing each image with the camera_info of its own stamp, and where a stream's stamps jump back: one rule for
the live node, bags and training.

Paper: DisDepth (arXiv 2404.16386) depth is rescaled and back-projected with the frame's intrinsics
(pipeline.py), so a frame must get the calibration of its own stamp. Source: ROS 2 message_filters' ``Cache``
(``getElemBeforeTime``) and image_transport's CameraSubscriber (exact stamps).

    match(t):  the camera_info with the latest header stamp <= t, the last received among equal stamps: the one
               stamped t (exact) if held, else the newest before it (a calibration latched once, or published at a
               lower rate, serves every later frame), else None

A bag's reader holds every camera_info of the topic (``bag_camera_infos``), so a camera_info received long before or
just after its image still pairs. The node holds (``CameraInfoBuffer``), in bounded memory, what gives the same
pairs for every image up to ``span_s`` (10 s) older than the latest camera_info received:

    every camera_info stamped at most span_s before the latest one received (by arrival: after a clock jump back
        the new, earlier stamps are kept, and the stale later ones stay until their calibration is replaced)
    the last received of each distinct calibration, however old (a calibration latched once serves for ever)
    at most MAX_HELD (4096: 10 s at 400 Hz) in all, the oldest arrival going first beyond that
    equal calibrations (every field but the header) share one message, so each held stamp costs a list entry

Differences from message_filters.Cache: stamps are compared as they are, not in arrival order (its Python Cache
appends in arrival order although it says 'sorted'), so out-of-order arrivals pair correctly; and it keeps its last
N arrivals, which at 100 Hz camera_info is 0.3 s for N = 30, where an image lagging over WiFi can be later than that.
Thread-safe: the subscription callback adds while the worker thread matches.

**Stamps that jump back** (``StampSegments``): a header stamp more than JUMP_BACK_S (1 s) earlier than the previous
one of the same stream starts a new segment: ``ros2 bag play --loop`` or a simulator reset restarted the clock.
/diagnostics restarts its stamp-rate window there, and training selects frames and pairs depth per segment.
"""
from __future__ import annotations

import bisect
import collections
import itertools
import threading
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

NANOSECONDS_PER_SECOND = 1_000_000_000
#: seconds of camera_info stamps the node keeps before the latest received: more than any image lags its
#: calibration (a large image over WiFi, a congested reliable link, a bag replayed with its receive lag)
DEFAULT_SPAN_S = 10.0
#: camera_infos the node holds at most: DEFAULT_SPAN_S at 400 Hz (equal calibrations share one message, so an entry
#: is a list slot and its stamp)
MAX_HELD = 4096
#: a stamp this much earlier than the previous one of its stream starts a new segment (a loop or a reset). One
#: camera's frames are delivered and recorded in order, or a few frame periods out of it at most.
JUMP_BACK_S = 1.0
JUMP_BACK_NS = round(JUMP_BACK_S * NANOSECONDS_PER_SECOND)


def stamp_nanoseconds(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags: ``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


class StampSegments:
    """The segments of one stream's header stamps, given in arrival order (module docstring): ``index`` is the
    current one's, from 0, so also how often the stamps jumped back."""

    def __init__(self) -> None:
        self.index = 0
        self._previous: int | None = None

    def add(self, stamp_ns: int) -> bool:
        """Note the stream's next stamp; True when it jumps back more than JUMP_BACK_NS (a new segment starts)."""
        jumped = self._previous is not None and stamp_ns < self._previous - JUMP_BACK_NS
        self._previous = stamp_ns
        self.index += jumped
        return jumped


def calibration_key(info) -> tuple:
    """Every field of a CameraInfo (rclpy or rosbags) but the header, as a hashable key (NaN keys compare equal)."""
    roi = info.roi
    return (int(info.width), int(info.height), str(info.distortion_model),
            *(np.asarray(values, np.float64).tobytes() for values in (info.d, info.k, info.r, info.p)),
            int(info.binning_x), int(info.binning_y),
            int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width), bool(roi.do_rectify))


class CameraInfoMatch(NamedTuple):
    """A held camera_info for an image stamp; ``exact`` is False when it carries an earlier stamp."""

    info: object
    exact: bool


class CameraInfoBuffer:
    """camera_infos by header stamp, matched to image stamps (module docstring).

    Args:
        span_s: seconds of stamps held before the latest arrival's, besides the last of each calibration (the
            node's); None holds every one added (a bag's).
        max_held: at most this many held (with ``span_s``); the oldest arrival goes first beyond it.
    Raises (constructor):
        ValueError: a span below 0 or max_held below 1.
    """

    def __init__(self, span_s: float | None = DEFAULT_SPAN_S, max_held: int = MAX_HELD):
        if (span_s is not None and span_s < 0) or max_held < 1:
            raise ValueError(f'span_s must be at least 0 and max_held at least 1, got {span_s} and {max_held}')
        self.span_ns = None if span_s is None else round(span_s * NANOSECONDS_PER_SECOND)
        self._max_held = max_held
        self._keys: list[tuple[int, int]] = []  # (stamp ns, arrival number), sorted
        self._calibrations: list[tuple] = []  # the calibration_key of each entry
        self._canonical: dict[tuple, tuple] = {}  # calibration_key -> the equal key object the entries hold
        self._messages: dict[tuple, object] = {}  # calibration_key -> its last received message
        self._last_arrival: dict[tuple, int] = {}  # calibration_key -> its last arrival number
        self._entries: collections.Counter = collections.Counter()  # calibration_key -> entries held
        self._arrivals = itertools.count()
        self.latest_stamp_ns: int | None = None  # the stamp of the latest arrival
        self._lock = threading.Lock()

    @classmethod
    def holding(cls, stamped: Iterable[tuple[int, object]]) -> CameraInfoBuffer:
        """A buffer without a span holding every (stamp ns, camera_info) of ``stamped``, given in arrival order;
        sorted once, where ``add`` would insert one at a time (a bag's every camera_info)."""
        buffer = cls(span_s=None)
        entries = []
        for stamp, info in stamped:
            arrival, calibration = buffer._note(info, calibration_key(info))
            entries.append(((stamp, arrival), calibration))
            buffer.latest_stamp_ns = stamp
        entries.sort(key=lambda entry: entry[0])  # keys are unique
        buffer._keys = [key for key, _ in entries]
        buffer._calibrations = [calibration for _, calibration in entries]
        return buffer

    def _note(self, info, calibration: tuple) -> tuple[int, tuple]:
        """Hold ``info`` as the last message of its ``calibration`` (calibration_key); returns its arrival number and
        the held key equal to ``calibration``, which the entry keeps (one key object per calibration, not one per
        entry: an entry then costs a list slot and its (stamp, arrival) pair)."""
        calibration = self._canonical.setdefault(calibration, calibration)
        arrival = next(self._arrivals)
        self._messages[calibration], self._last_arrival[calibration] = info, arrival
        self._entries[calibration] += 1
        return arrival, calibration

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, info, stamp_ns: int | None = None) -> None:
        """Hold ``info`` (a CameraInfo of any message library); its header stamp unless ``stamp_ns`` is given.
        Then what the span and MAX_HELD no longer keep goes (module docstring)."""
        stamp = stamp_nanoseconds(info.header.stamp) if stamp_ns is None else int(stamp_ns)
        calibration = calibration_key(info)
        with self._lock:
            arrival, calibration = self._note(info, calibration)
            key = (stamp, arrival)
            index = bisect.bisect(self._keys, key)
            self._keys.insert(index, key)
            self._calibrations.insert(index, calibration)
            self.latest_stamp_ns = stamp
            if self.span_ns is None:
                return
            index, oldest_kept = 0, stamp - self.span_ns
            while index < len(self._keys) and self._keys[index][0] < oldest_kept:
                if self._keys[index][1] == self._last_arrival[self._calibrations[index]]:
                    index += 1  # the last of its calibration stays
                else:
                    self._drop(index)
            while len(self._keys) > self._max_held:
                self._drop(min(range(len(self._keys)), key=lambda i: self._keys[i][1]))

    def _drop(self, index: int) -> None:
        calibration = self._calibrations.pop(index)
        del self._keys[index]
        self._entries[calibration] -= 1
        if not self._entries[calibration]:
            del self._entries[calibration], self._messages[calibration], self._last_arrival[calibration]
            del self._canonical[calibration]

    def match(self, stamp_ns: int) -> CameraInfoMatch | None:
        """The camera_info for an image stamped ``stamp_ns`` (module docstring). None when every held stamp is
        later, or none is held."""
        with self._lock:
            index = bisect.bisect(self._keys, (stamp_ns, float('inf')))  # past every key stamped <= stamp_ns
            if not index:
                return None
            return CameraInfoMatch(self._messages[self._calibrations[index - 1]], self._keys[index - 1][0] == stamp_ns)


def bag_camera_infos(bag, topic: str | None) -> CameraInfoBuffer:
    """Every camera_info of ``topic`` in an open bag (io.bagio.Bag; none without a topic), to match image stamps with.

    Messages with equal contents (calibration_key) share one object, so an hour of 30 Hz camera_info holds a list
    of stamps, not 100k messages.

    Raises:
        BagError: the storage is truncated or corrupt.
    """
    return CameraInfoBuffer.holding((stamp_nanoseconds(msg.header.stamp), msg)
                                    for _, _, _, msg in (bag.messages([topic]) if topic else ()))
