"""camera.pairing: images get the camera_info of their own stamp, else the latest before it, whatever the
arrival order, in a bounded buffer."""
import threading
from types import SimpleNamespace

import pytest

from depth_kd_ros.camera.pairing import CameraInfoBuffer, stamp_nanoseconds


def _info(sec, nanosec=0, name=''):
    """A CameraInfo stand-in: only header.stamp matters to the buffer; ``name`` tells equal stamps apart."""
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec)), name=name)


def _ns(sec, nanosec=0):
    return sec * 1_000_000_000 + nanosec


def test_exact_stamp_wins_over_later_arrivals():
    """With several in flight, a frame gets its own calibration, not the latest received (the old behaviour)."""
    buffer = CameraInfoBuffer()
    for sec in (1, 2, 3):
        buffer.add(_info(sec))
    match = buffer.match(_ns(2))
    assert match.exact and stamp_nanoseconds(match.info.header.stamp) == _ns(2)


def test_without_an_exact_stamp_the_latest_at_or_before_serves_and_says_so():
    """A calibration published at a lower rate, or once (latched), serves later frames, counted as inexact."""
    buffer = CameraInfoBuffer()
    buffer.add(_info(0, name='latched'))
    for sec in (5, 9):
        match = buffer.match(_ns(sec, 123))
        assert match.info.name == 'latched' and not match.exact
    buffer.add(_info(7))
    assert buffer.match(_ns(9)).info.header.stamp.sec == 7
    assert buffer.match(_ns(6)).info.name == 'latched'


def test_out_of_order_arrival_pairs_by_stamp():
    """Arrival order 3, 1, 2 (several publishers, DDS reordering): lookups follow the stamps."""
    buffer = CameraInfoBuffer()
    for sec in (3, 1, 2):
        buffer.add(_info(sec))
    assert [buffer.match(_ns(s, 500)).info.header.stamp.sec for s in (1, 2, 3, 4)] == [1, 2, 3, 3]
    assert buffer.match(_ns(2)).exact


def test_nothing_at_or_before_the_stamp_gives_none():
    """A frame older than every held calibration, or an empty buffer, gets None (the node then says so)."""
    buffer = CameraInfoBuffer()
    assert buffer.match(_ns(5)) is None
    buffer.add(_info(10))
    assert buffer.match(_ns(9, 999_999_999)) is None


def test_buffer_is_bounded_and_evicts_the_oldest_arrival():
    """At most ``capacity`` infos are held; the first to arrive goes first, so after a clock jump back (a bag
    in a loop) new earlier stamps are kept and matched while the stale later ones age out."""
    buffer = CameraInfoBuffer(capacity=3)
    for sec in (100, 101, 102):
        buffer.add(_info(sec))
    for sec in (1, 2):  # the clock restarts
        buffer.add(_info(sec))
    assert len(buffer) == 3
    assert buffer.match(_ns(2)).exact
    assert buffer.match(_ns(100)).info.header.stamp.sec == 2  # 100 was evicted, 102 is later
    buffer.add(_info(3))
    assert buffer.match(_ns(200)).info.header.stamp.sec == 3


def test_equal_stamps_give_the_latest_arrival():
    """A calibration re-published with the same stamp (an updated calibration) replaces the earlier one."""
    buffer = CameraInfoBuffer()
    buffer.add(_info(4, name='old'))
    buffer.add(_info(4, name='new'))
    assert buffer.match(_ns(4)).info.name == 'new'
    assert buffer.match(_ns(5)).info.name == 'new'


def test_explicit_stamp_and_capacity_validation():
    """add() takes a stamp for messages without a header; a capacity below 1 is refused."""
    buffer = CameraInfoBuffer(capacity=1)
    buffer.add(SimpleNamespace(name='headerless'), stamp_ns=_ns(3))
    assert buffer.match(_ns(3)) == (buffer.match(_ns(3)).info, True)
    with pytest.raises(ValueError, match='capacity'):
        CameraInfoBuffer(capacity=0)


def test_adding_while_matching_from_another_thread():
    """The subscription callback adds while the worker matches: no 'deque mutated during iteration'."""
    buffer = CameraInfoBuffer(capacity=50)
    errors = []

    def writer():
        for sec in range(20_000):
            buffer.add(_info(sec))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while thread.is_alive():
            buffer.match(_ns(10_000))
    except RuntimeError as exc:
        errors.append(exc)
    thread.join()
    assert not errors
    assert buffer.match(_ns(19_999)).exact
