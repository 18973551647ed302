"""LatestFrameWorker without ROS: keep-latest dropping, order, errors and shutdown (the node's hand-off)."""
from __future__ import annotations

import threading

from depth_kd_ros.node.latest_frame import LatestFrameWorker

WAIT = 10.0  # generous bound against a hung test on a busy machine; nothing here is timed


class Recorder:
    """``process`` that records items; the item ``block_on`` waits for ``release`` before it returns."""

    def __init__(self, block_on=None):
        self.items, self.errors = [], []
        self.block_on, self.started, self.release = block_on, threading.Event(), threading.Event()
        self.done = threading.Event()

    def process(self, item):
        if item == self.block_on:
            self.started.set()
            assert self.release.wait(WAIT)
        self.items.append(item)
        if item == 'last':
            self.done.set()

    def worker(self) -> LatestFrameWorker:
        worker = LatestFrameWorker(self.process, self.errors.append)
        worker.start()
        return worker


def test_a_busy_worker_keeps_only_the_newest_frame():
    """Frames arriving while one is processed replace each other: only the newest is processed next, and each
    replacement is reported as a drop."""
    recorder = Recorder(block_on=1)
    worker = recorder.worker()
    assert worker.submit(1) is False
    assert recorder.started.wait(WAIT)  # 1 is being processed
    assert [worker.submit(item) for item in (2, 3, 'last')] == [False, True, True]
    recorder.release.set()
    assert recorder.done.wait(WAIT)
    assert recorder.items == [1, 'last']
    assert worker.stop()


def test_frames_are_processed_in_order_and_drops_are_accounted_for():
    """Under any interleaving of a fast producer and a slower consumer, processed items only increase, the
    newest is always processed, and processed + dropped = submitted."""
    recorder = Recorder()
    worker = recorder.worker()
    dropped = sum(worker.submit(i) for i in range(2000))
    dropped += worker.submit('last')
    assert recorder.done.wait(WAIT)
    numbers = recorder.items[:-1]
    assert numbers == sorted(set(numbers)) and recorder.items[-1] == 'last'
    assert len(recorder.items) + dropped == 2001
    assert worker.stop()


def test_an_exception_goes_to_on_error_and_the_worker_goes_on():
    """A frame whose processing raises is reported, and the next frame is still processed."""
    errors, items, failed, done = [], [], threading.Event(), threading.Event()

    def process(item):
        if item == 'bad':
            raise ValueError('broken frame')
        items.append(item)
        done.set()

    def on_error(exc):
        errors.append(exc)
        failed.set()

    worker = LatestFrameWorker(process, on_error)
    worker.start()
    worker.submit('bad')
    assert failed.wait(WAIT)
    worker.submit('good')
    assert done.wait(WAIT)
    assert [str(e) for e in errors] == ['broken frame'] and items == ['good']
    assert worker.stop()


def test_stop_finishes_the_frame_in_progress_and_takes_nothing_after_it():
    """stop() waits for the frame being processed (the node then destroys its publishers safely), drops the
    pending one, refuses new ones, and ends the thread; an idle worker stops at once."""
    recorder = Recorder(block_on='slow')
    worker = recorder.worker()
    worker.submit('slow')
    assert recorder.started.wait(WAIT)
    worker.submit('pending')
    assert worker.stop(timeout=0.05) is False  # 'slow' is still in progress
    assert worker.submit('after stop') is False
    recorder.release.set()
    assert worker.stop(timeout=WAIT)
    assert recorder.items == ['slow']
    idle = Recorder().worker()
    assert idle.stop(timeout=WAIT)
    assert idle.stop(timeout=WAIT)  # twice is fine (destroy_node after a failed start)
