"""camera.pairing: images get the camera_info of their own stamp, else the latest before it, whatever the
arrival order, in a buffer bounded by stamp span that keeps the last of each calibration; stamps that jump back."""
import threading

import numpy as np
import pytest

from depth_kd_ros.camera.pairing import (
    JUMP_BACK_NS,
    CameraInfoBuffer,
    StampSegments,
    stamp_nanoseconds,
)
from depth_kd_ros.io.bagio import CAMERA_INFO, TYPESTORE

T = TYPESTORE.types


def _info(sec, nanosec=0, focal=50.0):
    """A CameraInfo (rosbags' class) stamped sec.nanosec; ``focal`` tells calibrations apart."""
    header = T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                                      frame_id='camera_optical_frame')
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    k = np.array([focal, 0, 32, 0, focal, 24, 0, 0, 1.0])
    return T[CAMERA_INFO](header=header, height=48, width=64, distortion_model='plumb_bob', d=np.zeros(5), k=k,
                          r=np.eye(3).reshape(-1), p=np.array([focal, 0, 32, 0, 0, focal, 24, 0, 0, 0, 1, 0.0]),
                          binning_x=0, binning_y=0, roi=roi)


def _ns(sec, nanosec=0):
    return sec * 1_000_000_000 + nanosec


def _focal(match):
    return match.info.k[0]


def test_exact_stamp_wins_over_later_arrivals():
    """With several in flight, a frame gets its own calibration, not the latest received."""
    buffer = CameraInfoBuffer()
    for sec in (1, 2, 3):
        buffer.add(_info(sec, focal=40.0 + sec))
    match = buffer.match(_ns(2))
    assert match.exact and _focal(match) == 42.0


def test_without_an_exact_stamp_the_latest_at_or_before_serves_and_says_so():
    """A calibration published at a lower rate, or once (latched), serves later frames, counted as inexact."""
    buffer = CameraInfoBuffer()
    buffer.add(_info(0, focal=30.0))
    for sec in (5, 9):
        match = buffer.match(_ns(sec, 123))
        assert _focal(match) == 30.0 and not match.exact
    buffer.add(_info(7, focal=70.0))
    assert _focal(buffer.match(_ns(9))) == 70.0
    assert _focal(buffer.match(_ns(6))) == 30.0


def test_out_of_order_arrival_pairs_by_stamp():
    """Arrival order 3, 1, 2 (several publishers, DDS reordering): lookups follow the stamps."""
    buffer = CameraInfoBuffer()
    for sec in (3, 1, 2):
        buffer.add(_info(sec, focal=10.0 * sec))
    assert [_focal(buffer.match(_ns(s, 500))) for s in (1, 2, 3, 4)] == [10.0, 20.0, 30.0, 30.0]
    assert buffer.match(_ns(2)).exact


def test_nothing_at_or_before_the_stamp_gives_none():
    """A frame older than every held calibration, or an empty buffer, gets None (the node then says so)."""
    buffer = CameraInfoBuffer()
    assert buffer.match(_ns(5)) is None and buffer.latest_stamp_ns is None
    buffer.add(_info(10))
    assert buffer.match(_ns(9, 999_999_999)) is None and buffer.latest_stamp_ns == _ns(10)


def test_equal_stamps_give_the_latest_arrival():
    """A calibration re-published with the same stamp (an updated calibration) replaces the earlier one."""
    buffer = CameraInfoBuffer()
    buffer.add(_info(4, focal=40.0))
    buffer.add(_info(4, focal=44.0))
    assert _focal(buffer.match(_ns(4))) == 44.0
    assert _focal(buffer.match(_ns(5))) == 44.0


def test_an_image_seconds_behind_its_calibration_still_gets_its_own():
    """camera_info at 100 Hz while a large image lags 4.5 s (WiFi, a congested reliable link): the image gets the
    camera_info of its own stamp, as the offline tool pairs it. The last 30 arrivals held 0.3 s of them, so such
    an image got none and was served without focal scaling or points."""
    buffer = CameraInfoBuffer()
    for i in range(500):  # 5 s at 100 Hz; the calibration changes after 1 s
        buffer.add(_info(100 + i // 100, (i % 100) * 10_000_000, focal=50.0 if i < 100 else 60.0))
    match = buffer.match(_ns(100, 500_000_000))  # 4.49 s before the latest
    assert match.exact and _focal(match) == 50.0
    assert _focal(buffer.match(_ns(103, 5))) == 60.0


def test_memory_is_bounded_by_the_stamp_span_and_the_last_of_each_calibration_stays():
    """An hour at 100 Hz holds what 10 s of stamps give (about 1000), plus the last of each calibration however
    old: a calibration latched once at the start still serves. Equal calibrations share one message. Beyond
    max_held the oldest arrival goes."""
    buffer = CameraInfoBuffer(span_s=10.0)
    buffer.add(_info(1, focal=30.0))  # latched once
    for i in range(36_000):  # an hour at 10 Hz of stamps is enough to age the span many times over
        buffer.add(_info(10 + i // 10, (i % 10) * 100_000_000))
    assert len(buffer) == 10 * 10 + 1 + 1  # 10 s at 10 Hz (both ends), and the latched one
    assert _focal(buffer.match(_ns(5))) == 30.0
    shared = {id(buffer.match(_ns(3600 + s)).info) for s in range(5)}
    assert len(shared) == 1  # one message object for one calibration
    small = CameraInfoBuffer(span_s=10.0, max_held=3)
    for sec in range(5):
        small.add(_info(100, sec, focal=10.0 + sec))
    assert len(small) == 3 and _focal(small.match(_ns(100, 2))) == 12.0 and small.match(_ns(100, 1)) is None


def test_after_a_jump_back_the_new_stamps_pair():
    """A bag played in a loop or a simulator reset: the clock restarts at earlier stamps, which are held and
    matched (the span follows the latest arrival's stamp, not the largest)."""
    buffer = CameraInfoBuffer(span_s=10.0)
    for sec in range(100, 130):
        buffer.add(_info(sec, focal=50.0))
    for sec in range(0, 20):  # the clock restarts; a new calibration
        buffer.add(_info(sec, focal=60.0))
    assert all(buffer.match(_ns(sec)).exact and _focal(buffer.match(_ns(sec))) == 60.0 for sec in range(10, 20))


def test_span_and_max_held_validation():
    with pytest.raises(ValueError, match='span_s'):
        CameraInfoBuffer(span_s=-1.0)
    with pytest.raises(ValueError, match='max_held'):
        CameraInfoBuffer(max_held=0)


def test_adding_while_matching_from_another_thread():
    """The subscription callback adds while the worker matches: no 'list mutated during iteration'."""
    buffer = CameraInfoBuffer(span_s=1.0)
    errors = []

    def writer():
        for i in range(20_000):
            buffer.add(_info(i // 100, (i % 100) * 10_000_000))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while thread.is_alive():
            buffer.match(_ns(100))
    except RuntimeError as exc:
        errors.append(exc)
    thread.join()
    assert not errors
    assert buffer.match(_ns(199, 990_000_000)).exact


def test_stamp_segments_start_where_stamps_jump_back_more_than_a_second():
    """A loop or a reset starts a new segment; a frame a little out of order does not."""
    segments = StampSegments()
    stamps = [_ns(100), _ns(101), _ns(100, 900_000_000), _ns(102), _ns(3), _ns(4), _ns(4) - JUMP_BACK_NS - 1]
    assert [segments.add(stamp) for stamp in stamps] == [False, False, False, False, True, False, True]
    assert segments.index == 2
    assert stamp_nanoseconds(_info(3, 5).header.stamp) == _ns(3, 5)
