"""ROS-free frame statistics for /diagnostics: rates, latency percentiles, drops, faults per kind.

They show whether the node keeps up with the camera. Rates are counts over a sliding window of ``window`` seconds
divided by the covered time; latency percentiles (nearest-rank over the last ``samples`` frames) are in
milliseconds, receive -> publish. The node turns ``summary()`` into a diagnostic_msgs/DiagnosticStatus (like
topic_monitor's MonitoredTopic).
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
#: distinct input stamps in the window before the rate they imply is judged
MIN_STAMPS = 10
#: below this share of the frames the stamps imply, input loss is a WARN
MIN_RECEIVED_RATIO = 0.8
#: no image for this many camera periods (or diagnostics periods, whichever is longer) is a stall
STALL_PERIODS = 3


def nearest_rank(samples, percents) -> np.ndarray:
    """Nearest-rank percentiles: for p in ``percents`` (0-100], the smallest sample with at least p % of the
    samples at or below it, sorted(samples)[ceil(p / 100 * n) - 1]; always one of the samples.

    Plain sorting rather than ``np.percentile(method=...)``, which numpy 1.21 (Ubuntu 22.04) lacks and whose
    'nearest' method rounds the index instead (it gives p90 of 1..7 as 6, not 7).
    Raises:
        ValueError: no samples.
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    if ordered.size == 0:
        raise ValueError('nearest_rank needs at least one sample')
    ranks = np.ceil(np.asarray(percents, dtype=np.float64) / 100.0 * ordered.size).astype(np.int64)
    return ordered[np.clip(ranks - 1, 0, ordered.size - 1)]


class FrameStats:
    """Thread-safe counters; the subscription callback and the worker thread both update it."""

    def __init__(self, window: float = 5.0, samples: int = 200, throttle: float = 5.0, clock=time.monotonic, *,
                 period: float = 1.0, loss_hint: str = ''):
        """``period``: seconds between summaries (the stall check waits STALL_PERIODS of them at least);
        ``loss_hint``: appended to the input-loss message (the node names input_reliable there)."""
        self.window, self.throttle, self.clock = window, throttle, clock
        self.period, self.loss_hint = period, loss_hint
        self._stamps: collections.deque = collections.deque()  # (arrival, header stamp s) in the window
        self._last_input: float | None = None
        self._lock = threading.Lock()
        self._inputs: collections.deque = collections.deque()
        self._outputs: collections.deque = collections.deque()
        self._latency: collections.deque = collections.deque(maxlen=samples)
        self._stages: dict[str, collections.deque] = {}
        self._faults: dict[str, int] = collections.Counter()
        self._counts: dict[str, int] = collections.Counter()  # events that are not faults (count())
        self._last_fault_time: dict[str, float] = {}
        self._last_logged: dict[str, float] = {}
        self.frames_in = self.frames_out = self.dropped = 0
        self._samples = samples
        self._input_size: tuple[int, int] | None = None  # (width, height) of the last decoded frame
        self._ground = None  # the last ground_plane.ScaleUpdate (scale_correction 'ground_plane')
        self._ground_kept_reason = ''  # why the last frame that left the factor unchanged did

    def _trim(self, times: collections.deque, now: float) -> None:
        while times and times[0] < now - self.window:
            times.popleft()

    def record_input(self, stamp: float | None = None) -> None:
        """A frame arrived (before decoding), with its header ``stamp`` in seconds when known."""
        with self._lock:
            now = self.clock()
            self.frames_in += 1
            self._last_input = now
            self._inputs.append(now)
            self._trim(self._inputs, now)
            if stamp is not None:
                self._stamps.append((now, stamp))
            while self._stamps and self._stamps[0][0] < now - self.window:
                self._stamps.popleft()

    def _stamp_period(self) -> float | None:
        """The camera's frame period as the stamps say: the 10th percentile of the gaps between the distinct
        stamps received in the window (lost frames make some gaps multiples of it), or None with too few."""
        stamps = np.unique(np.fromiter((stamp for _, stamp in self._stamps), np.float64))
        if stamps.size < MIN_STAMPS:
            return None
        return float(nearest_rank(np.diff(stamps), (10,))[0])

    def _input_warnings(self, now: float, values: dict[str, str]) -> list[str]:
        """A stall (no image for STALL_PERIODS periods) and input loss (fewer distinct stamps than the stamps'
        span and period imply): messages for the summary, with their numbers in ``values``."""
        warnings = []
        period = self._stamp_period()
        if period is not None:
            stamps = np.unique(np.fromiter((stamp for _, stamp in self._stamps), np.float64))
            ratio = stamps.size / ((stamps[-1] - stamps[0]) / period + 1.0)
            values.update(input_stamp_rate_hz=f'{1.0 / period:.2f}', input_received_ratio=f'{ratio:.2f}')
            if ratio < MIN_RECEIVED_RATIO:
                warnings.append(f'receiving {ratio:.0%} of the frames the stamps imply ({1.0 / period:.1f} Hz): frames '
                                'are lost before the node' + self.loss_hint)
        stall_after = STALL_PERIODS * max(self.period, period or 0.0)
        if self._last_input is not None and now - self._last_input > stall_after:
            warnings.append(f'no image for {now - self._last_input:.1f} s')
        return warnings

    def record_dropped(self, count: int = 1) -> None:
        """Frames replaced by a newer one before the worker took them (keep-latest)."""
        with self._lock:
            self.dropped += count

    def record_input_size(self, width: int, height: int) -> tuple[int, int] | None:
        """Note a decoded frame's size in pixels; returns the previous (width, height) when it changed, else None.

        A change is not an error (the node serves any size), but it is worth a log line and a count: a camera
        driver restarted with other settings, or two cameras publishing on one topic.
        """
        with self._lock:
            previous, self._input_size = self._input_size, (int(width), int(height))
            return previous if previous not in (None, self._input_size) else None

    def record_output(self, latency_s: float, timings: dict[str, float] | None = None) -> None:
        """A frame was published, ``latency_s`` after it arrived; ``timings`` in ms per stage."""
        with self._lock:
            now = self.clock()
            self.frames_out += 1
            self._outputs.append(now)
            self._trim(self._outputs, now)
            self._latency.append(latency_s * 1e3)
            for stage, ms in (timings or {}).items():
                self._stages.setdefault(stage, collections.deque(maxlen=self._samples)).append(ms)

    def record_scale(self, update) -> None:
        """A frame's ground_plane.ScaleUpdate: its factor and inlier ratio are reported, and a frame that left the
        factor unchanged is counted by its reason (``scale_kept_<reason>``; no fault: a frame without enough floor
        in view is normal)."""
        with self._lock:
            self._ground = update
            if not update.updated:
                self._ground_kept_reason = update.reason
                self._counts[f'scale_kept_{update.reason}'] += 1

    def record_fault(self, kind: str) -> bool:
        """Count a fault of ``kind``; True when the caller should log it (first time, then once per throttle)."""
        with self._lock:
            now = self.clock()
            self._faults[kind] += 1
            self._last_fault_time[kind] = now
            last = self._last_logged.get(kind)
            if last is None or now - last >= self.throttle:
                self._last_logged[kind] = now
                return True
            return False

    def count(self, key: str) -> None:
        """Count an event that is worth knowing but is no fault (e.g. camera_info_inexact): reported as ``key``,
        never raising the level."""
        with self._lock:
            self._counts[key] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def faults(self) -> dict[str, int]:
        with self._lock:
            return dict(self._faults)

    def _rate(self, times: collections.deque, now: float) -> float:
        self._trim(times, now)
        return len(times) / self.window if times else 0.0

    def summary(self) -> tuple[int, str, dict[str, str]]:
        """(level, message, key -> value strings) for a DiagnosticStatus.

        Level WARN when a fault happened within the window, no image came for STALL_PERIODS periods, or the
        stamps say frames are lost before the node; ERROR when frames arrive but none is published.
        """
        with self._lock:
            now = self.clock()
            values = {'input_rate_hz': f'{self._rate(self._inputs, now):.2f}',
                      'output_rate_hz': f'{self._rate(self._outputs, now):.2f}',
                      'frames_in': str(self.frames_in), 'frames_out': str(self.frames_out),
                      'frames_dropped': str(self.dropped)}
            if self._input_size is not None:
                values['input_size'] = '{}x{}'.format(*self._input_size)
            if self._latency:
                p50, p90, p99 = nearest_rank(self._latency, (50, 90, 99))
                values.update(latency_p50_ms=f'{p50:.2f}', latency_p90_ms=f'{p90:.2f}',
                              latency_p99_ms=f'{p99:.2f}', latency_max_ms=f'{max(self._latency):.2f}')
            for stage, samples in self._stages.items():
                values[f'stage_{stage}_p50_ms'] = f'{np.median(np.asarray(samples)):.2f}'
            if self._ground is not None:
                values.update(scale_factor=f'{self._ground.factor:.4f}',
                              scale_inlier_ratio=f'{self._ground.inlier_ratio:.2f}',
                              scale_updated=str(self._ground.updated).lower())
                if self._ground_kept_reason:
                    values['scale_last_kept_reason'] = self._ground_kept_reason
            values.update((key, str(count)) for key, count in sorted(self._counts.items()))
            for kind, count in sorted(self._faults.items()):
                values[f'fault_{kind}'] = str(count)
            recent = sorted(k for k, t in self._last_fault_time.items() if t >= now - self.window)
            warnings = self._input_warnings(now, values)
            if self._inputs and not self._outputs:
                return ERROR, 'frames arrive but no depth is published', values
            if recent:
                warnings.append('recent faults: ' + ', '.join(recent))
            if warnings:
                return WARN, '; '.join(warnings), values
            return OK, 'ok', values
