"""Keep-latest hand-off from a producer (a subscription callback) to one worker thread; no ROS in here.

As camera_calibration's BufferQueue(1) with its consumer thread: the producer only stores the newest item and
wakes the worker; an item the worker has not taken yet is replaced, i.e. dropped. A consumer slower than the
camera therefore drops frames instead of queueing them: the answer is at most one frame old and memory stays flat.

    submit(item)   pending := item                  (True when an untaken item was replaced: one drop)
    worker         wait for pending or stop; take pending; process(item)

Items are processed one at a time and in submission order (never an older one after a newer one). An exception
in ``process`` goes to ``on_error`` and the worker serves the next item. ``stop`` lets the item in progress
finish, processes nothing after it, and joins the thread (the node stops it before its ROS context goes, so no
frame is published into a dead context).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_EMPTY = object()  # no pending item (an item itself may be anything, None included)


class LatestFrameWorker:
    """One worker thread that processes the newest submitted item.

    Args:
        process: called on the worker thread with each item taken.
        on_error: called on the worker thread with an exception ``process`` raised.
        name: the thread's name (shown by debuggers and in tracebacks).
    """

    def __init__(self, process: Callable[[Any], None], on_error: Callable[[Exception], None], *,
                 name: str = 'latest_frame_worker'):
        self._process, self._on_error = process, on_error
        self._cond = threading.Condition()
        self._pending: Any = _EMPTY
        self._running = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Hand ``item`` to the worker; returns True when it replaced an item not yet taken (a dropped frame).
        After ``stop`` nothing is accepted (returns False)."""
        with self._cond:
            if not self._running:
                return False
            dropped = self._pending is not _EMPTY
            self._pending = item
            self._cond.notify()
        return dropped

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking items, wait up to ``timeout`` s for the one in progress; True when the thread has ended."""
        with self._cond:
            self._running = False
            self._pending = _EMPTY
            self._cond.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is _EMPTY and self._running:
                    self._cond.wait()
                if not self._running:
                    return
                item, self._pending = self._pending, _EMPTY
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - one bad item must never stop the worker
                self._on_error(exc)
