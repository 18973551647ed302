"""overlapped.Overlapped: order, bounded look-ahead, errors of either thread raised on the caller's, clean stop."""
from __future__ import annotations

import itertools
import threading
import time

import pytest

from depth_kd_ros.offline.overlapped import Overlapped


def overlapped_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith('overlapped-')]


def test_results_in_order_with_a_slow_writer_and_bounded_look_ahead():
    """Uneven compute times and a writer slower than both: every result, in order, and the reader never more than
    2 * queue_size + 3 items ahead of what has been written (memory stays flat)."""
    read, ahead = [], []

    def items():
        for i in range(40):
            read.append(i)
            yield i

    def compute(i):
        time.sleep(0.002 * (i % 3))
        return i * i

    written = []
    with Overlapped(items(), compute, queue_size=2) as results:
        for result in results:
            time.sleep(0.004)  # the writer is the slow stage
            written.append(result)
            ahead.append(len(read) - len(written))
    assert written == [i * i for i in range(40)]
    assert max(ahead) <= 2 * 2 + 3
    assert not overlapped_threads()


@pytest.mark.parametrize('stage', ['reader', 'compute'])
def test_an_exception_in_a_thread_is_raised_on_the_callers_after_the_frames_before_it(stage):
    failure = RuntimeError(f'{stage} broke on item 3')

    def items():
        for i in range(10):
            if stage == 'reader' and i == 3:
                raise failure
            yield i

    def compute(i):
        if stage == 'compute' and i == 3:
            raise failure
        return i

    written = []
    with pytest.raises(RuntimeError) as caught, Overlapped(items(), compute) as results:
        for result in results:
            written.append(result)
    assert caught.value is failure  # the very exception, so callers can tell user errors from bugs
    assert written == [0, 1, 2]
    assert not overlapped_threads()


def test_leaving_early_stops_both_threads_on_an_endless_input():
    """A break or an exception in the loop body (Ctrl-C arrives there, or in the wait for the next result) stops
    the reader and compute threads, even when they are blocked on full queues: no hang, nothing left running."""
    with Overlapped(itertools.count(), lambda i: i) as results:
        for result in results:
            if result == 5:
                break
    assert not overlapped_threads()
    with pytest.raises(KeyboardInterrupt), Overlapped(itertools.count(), lambda i: i) as results:
        for result in results:
            if result == 5:
                raise KeyboardInterrupt
    assert not overlapped_threads()


def test_queue_size_must_be_positive():
    with pytest.raises(ValueError, match='queue_size'):
        Overlapped([], lambda i: i, queue_size=0)
