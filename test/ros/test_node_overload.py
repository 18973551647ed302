"""Overload: camera several times faster than the model. Keep-latest must drop frames, not queue them."""
from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from ros_harness import HEIGHT, WIDTH, make_image

from depth_kd_ros.synthetic_model import build_synthetic_onnx

PUBLISH_HZ = 50.0
DURATION_S = 4.0


@pytest.fixture(scope='module')
def slow_model(tmp_path_factory):
    # input-dependent MatMul chain: ~50-100 ms per frame on one CPU thread, a genuinely slow ONNX graph
    return build_synthetic_onnx(str(tmp_path_factory.mktemp('slow') / 'slow.onnx'), HEIGHT, WIDTH,
                                slow_steps=14, slow_size=512)


def test_overload_drops_old_frames_with_bounded_latency_and_memory(harness_factory, slow_model):
    """At 50 Hz input: latency stays near one inference, the newest frames are answered, memory is flat."""
    harness = harness_factory(slow_model)
    harness.send_camera_info()
    harness.request(make_image(10_000)[0], 10_000)  # warm-up frame
    frames = [make_image(stamp)[0] for stamp in range(1, int(PUBLISH_HZ * DURATION_S) + 1)]
    sent: dict[int, float] = {stamp: 0.0 for stamp in range(1, len(frames) + 1)}
    harness.keep_messages = False  # so traced memory growth is the node's, not the test's
    tracemalloc.start()
    try:
        start = time.monotonic()
        for index, msg in enumerate(frames):
            if index == len(frames) // 4:
                memory_early = tracemalloc.get_traced_memory()[0]
            time.sleep(max(0.0, start + index / PUBLISH_HZ - time.monotonic()))
            sent[msg.header.stamp.sec] = time.monotonic()
            harness.pub_image.publish(msg)
        last = frames[-1].header.stamp.sec
        harness.wait(lambda: last in harness.arrival, 5.0, 'the newest frame to be answered')
        memory_late = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    answered = sorted(stamp for stamp in harness.arrival if stamp in sent)
    latency = np.array([harness.arrival[s] - sent[s] for s in answered])
    inference_ms = float(harness.node.stats.summary()[2]['stage_inference_p50_ms'])
    assert inference_ms * 3 > 1000.0 / PUBLISH_HZ, f'model too fast ({inference_ms} ms) to overload the node'
    assert len(answered) < len(sent) / 2 and harness.node.stats.dropped > len(sent) / 2
    assert answered == sorted(answered) and last in answered
    # queued frames would make latency grow by one inference per frame; keep-latest keeps it ~2 inferences
    bound_s = 3 * inference_ms / 1e3 + 0.3
    assert latency.max() < bound_s, f'latency {latency.max():.3f} s > {bound_s:.3f} s ({inference_ms} ms/frame)'
    tail = latency[len(latency) * 3 // 4:]
    head = latency[:len(latency) // 4]
    assert np.median(tail) < np.median(head) + 0.1
    # a queue of the 150 frames sent after the early sample would hold > 1.3 MB of 64x48 images
    assert memory_late - memory_early < 300_000, f'traced memory grew by {memory_late - memory_early} bytes'
