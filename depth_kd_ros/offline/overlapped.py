"""Three stages of a frame loop overlapped on threads, in order, with bounded memory (``mono_depth_offline``).

    reader thread       next(items)          read and decode the next frame         -> queue (queue_size)
    compute thread      compute(item)        inference on the frame before it       -> queue (queue_size)
    caller's thread     for result in ...    encode and write the frame before that

OpenCV's decoders and encoders and ONNX Runtime release the GIL, so the three overlap on a multi-core CPU and a
recording goes at the pace of its slowest stage (the model) instead of the sum of the three. The caller writes: a
writer that must stay on the thread that opened it (Python's sqlite3, which rosbags' sqlite3 writer uses) and the
output's commit or abort stay where they were, and Ctrl-C (delivered to the main thread only) interrupts the loop
body or its wait directly.

Results come out in the order of ``items``. An exception raised by ``items`` or ``compute`` is raised again, the
same object with its traceback, on the caller's thread at its position in the stream: the frames before it are
written first, as a sequential loop would. At most ``2 * queue_size + 3`` items are alive at once (one in each
stage and the queues). Leaving the ``with`` block for any reason (done, an exception, Ctrl-C) stops both threads
and waits for them to finish the item they hold, so nothing reads a closed input or uses the model after it.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: how often a thread blocked on a full or empty queue checks whether it should stop, in seconds
POLL_S = 0.05
_DONE = object()  # the end of the stream, after the last item


class _Failed:
    """An exception raised by a stage, passed down the queues to be raised on the caller's thread."""

    def __init__(self, error: BaseException):
        self.error = error


class Overlapped:
    """``with Overlapped(items, compute) as results: for result in results: write(result)``.

    Args:
        items: the frames to process, iterated on the reader thread (a generator that reads and decodes).
        compute: item -> result, called on the compute thread, one item at a time, in order.
        queue_size: items each queue holds (>= 1); 2 keeps both threads busy without holding many frames.
        name: prefix of the threads' names (seen in tracebacks and debuggers).
    Raises (while iterating): whatever ``items`` or ``compute`` raised.
    """

    def __init__(self, items: Iterable[Any], compute: Callable[[Any], Any], *, queue_size: int = 2,
                 name: str = 'overlapped'):
        if queue_size < 1:
            raise ValueError(f'queue_size must be at least 1, got {queue_size}')
        self._items, self._compute = items, compute
        self._read: queue.Queue = queue.Queue(queue_size)
        self._computed: queue.Queue = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._reader, name=f'{name}-reader', daemon=True),
                         threading.Thread(target=self._computer, name=f'{name}-compute', daemon=True)]

    def __enter__(self) -> Iterator[Any]:
        for thread in self._threads:
            thread.start()
        return self._results()

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _put(self, target: queue.Queue, entry) -> bool:
        """Put ``entry`` unless told to stop first; returns whether it was put."""
        while not self._stop.is_set():
            try:
                target.put(entry, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, source: queue.Queue):
        """The next entry, or _DONE when told to stop first."""
        while not self._stop.is_set():
            try:
                return source.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _DONE

    def _reader(self) -> None:
        try:
            for item in self._items:
                if not self._put(self._read, item):
                    return
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the caller's thread, none is lost
            self._put(self._read, _Failed(exc))
            return
        self._put(self._read, _DONE)

    def _computer(self) -> None:
        while True:
            entry = self._get(self._read)
            if entry is _DONE or isinstance(entry, _Failed):
                self._put(self._computed, entry)
                return
            try:
                result = self._compute(entry)
            except BaseException as exc:  # noqa: BLE001 - as in _reader
                self._put(self._computed, _Failed(exc))
                return
            if not self._put(self._computed, result):
                return

    def _results(self) -> Iterator[Any]:
        while True:
            entry = self._computed.get()  # the threads always end the stream with _DONE or _Failed
            if entry is _DONE:
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry


class Sequential:
    """``Overlapped``'s interface with the stages one after another on the caller's thread: the reference the
    overlapped tool is compared with (same bytes in test/offline, frames/s in bench/bench_offline.py)."""

    def __init__(self, items: Iterable[Any], compute: Callable[[Any], Any], **_):
        self._results = map(compute, items)

    def __enter__(self) -> Iterator[Any]:
        return self._results

    def __exit__(self, *exc_info) -> None:
        return None
