"""colorize, diagnostics and messages: the preview, the stats behind /diagnostics, message filling."""
import array
from types import SimpleNamespace

import numpy as np
import pytest

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.camera.pointcloud import build_cloud
from depth_kd_ros.colorize import colorize
from depth_kd_ros.messages import fill_camera_info, fill_image, fill_pointcloud2
from depth_kd_ros.node.diagnostics import ERROR, OK, WARN, FrameStats, nearest_rank


def test_colorize_fixed_range_and_invalid_black():
    """Same depth gives the same colour in any frame (fixed range); invalid pixels are black."""
    depth = np.array([[1.0, 5.0, 9.0, np.nan, 0.0, 100.0]], np.float32)
    out = colorize(depth, 1.0, 9.0)
    assert out.shape == (1, 6, 3) and out.dtype == np.uint8
    assert (out[0, 3] == 0).all() and (out[0, 4] == 0).all()
    np.testing.assert_array_equal(out[0, 5], out[0, 2])  # beyond the range saturates
    np.testing.assert_array_equal(colorize(depth[:, :2], 1.0, 9.0), out[:, :2])
    with pytest.raises(ValueError, match='colormap'):
        colorize(depth, 1.0, 9.0, 'jet2')


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_stats_rates_latency_drops_and_throttled_faults():
    """Rates over the window, nearest-rank percentiles, and one log per fault kind per throttle period."""
    clock = _Clock()
    stats = FrameStats(window=5.0, throttle=10.0, clock=clock)
    for i in range(10):
        clock.now = i * 0.5
        stats.record_input()
        stats.record_output(0.001 * (i + 1), {'inference': 2.0})
    stats.record_dropped(3)
    level, _, values = stats.summary()
    assert level == OK and values['input_rate_hz'] == '2.00' and values['frames_dropped'] == '3'
    assert values['latency_p50_ms'] == '5.00' and values['latency_max_ms'] == '10.00'
    assert values['stage_inference_p50_ms'] == '2.00'
    assert [stats.record_fault('bad_step') for _ in range(3)] == [True, False, False]
    assert stats.record_fault('zero_size')
    clock.now += 10.0
    assert stats.record_fault('bad_step')
    level, message, values = stats.summary()
    assert level == WARN and 'bad_step' in message and values['fault_bad_step'] == '4'


def test_stats_input_loss_from_stamps_and_stalls():
    """The stamps' period (10th percentile of their gaps) and span say how many frames were sent: fewer received
    is a WARN with the hint; every frame received at a lower wall rate (a bag played slowly) is not. No image for
    3 periods is a WARN."""
    clock = _Clock()
    stats = FrameStats(window=5.0, clock=clock, period=0.5, loss_hint='; hint')
    for i in range(20):  # every 10 Hz frame, received at 5 Hz
        clock.now = i * 0.2
        stats.record_input(100.0 + i * 0.1)
        stats.record_output(0.01)
    level, message, values = stats.summary()
    assert (level, message) == (OK, 'ok')
    assert (values['input_stamp_rate_hz'], values['input_received_ratio']) == ('10.00', '1.00')
    stats = FrameStats(window=5.0, clock=clock, period=0.5, loss_hint='; hint')
    for i in range(0, 40, 2):
        clock.now = 10.0 + i * 0.05
        stats.record_input(200.0 + i * 0.1 + (0.1 if i % 8 == 0 else 0.0))  # half lost, some neighbours kept
        stats.record_output(0.01)
    level, message, _ = stats.summary()
    assert level == WARN and message.startswith('receiving ') and message.endswith('; hint')
    clock.now += 1.6
    level, message, _ = stats.summary()
    assert level == WARN and 'no image for 1.6 s' in message


def test_latency_percentiles_are_nearest_rank_on_any_numpy():
    """p of n samples is sorted[ceil(p/100 * n) - 1], a sample that was measured; numpy's percentile(method=
    'nearest') rounds the index instead (p90 of 1..7 ms would be 6) and does not exist before numpy 1.22."""
    np.testing.assert_array_equal(nearest_rank([7, 1, 6, 2, 5, 3, 4], (50, 90, 99, 100)), [4, 7, 7, 7])
    np.testing.assert_array_equal(nearest_rank(np.arange(1, 101), (1, 50, 90, 99)), [1, 50, 90, 99])
    assert nearest_rank([3.5], (50, 90)).tolist() == [3.5, 3.5]
    with pytest.raises(ValueError, match='at least one sample'):
        nearest_rank([], (50,))
    stats = FrameStats()
    for ms in range(1, 8):
        stats.record_output(ms / 1e3)
    values = stats.summary()[2]
    assert (values['latency_p50_ms'], values['latency_p90_ms'], values['latency_p99_ms']) == ('4.00', '7.00', '7.00')


def test_stats_error_when_inputs_but_no_outputs():
    """Frames arriving with nothing published is the failure navigation must hear about."""
    stats = FrameStats()
    stats.record_input()
    assert stats.summary()[0] == ERROR


def test_stats_report_input_size_changes():
    """The first size is no change; a new size returns the previous one (for the node's resolution_change
    fault), the same size again is no change, and /diagnostics shows the current input size."""
    stats = FrameStats()
    assert 'input_size' not in stats.summary()[2]
    assert stats.record_input_size(640, 480) is None
    assert stats.record_input_size(640, 480) is None
    assert stats.record_input_size(1280, 720) == (640, 480)
    assert stats.record_input_size(1280, 720) is None
    assert stats.summary()[2]['input_size'] == '1280x720'


def test_fill_image_and_cloud_for_rclpy_and_rosbags_style_objects():
    """Fillers set plain attributes and keep each library's container type for uint8[] data."""
    depth = np.arange(6, dtype=np.float32).reshape(2, 3)
    rclpy_like = fill_image(SimpleNamespace(data=array.array('B')), depth)
    rosbags_like = fill_image(SimpleNamespace(data=np.zeros(0, np.uint8)), depth)
    for msg in (rclpy_like, rosbags_like):
        assert (msg.height, msg.width, msg.encoding, msg.step) == (2, 3, '32FC1', 12)
        np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), np.float32).reshape(2, 3), depth)
    assert isinstance(rclpy_like.data, array.array) and isinstance(rosbags_like.data, np.ndarray)
    cloud = build_cloud(np.ones((2, 2), np.float32), SimpleNamespace(fx=1.0, fy=1.0, cx=0.5, cy=0.5))
    msg = fill_pointcloud2(SimpleNamespace(data=array.array('B')), cloud, SimpleNamespace)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z'] and msg.row_step == 24 and not msg.is_dense
    assert len(msg.data) == 48


def test_fill_camera_info_from_camera_model():
    """K and P carry fx, fy, cx, cy of the CameraModel (REP 104 layout)."""
    camera = CameraModel(fx=10.0, fy=11.0, cx=3.0, cy=4.0, width=8, height=6)
    msg = fill_camera_info(SimpleNamespace(d=[], k=[], r=[], p=[]), camera)
    assert list(msg.k) == [10.0, 0.0, 3.0, 0.0, 11.0, 4.0, 0.0, 0.0, 1.0]
    assert list(msg.p)[:7] == [10.0, 0.0, 3.0, 0.0, 0.0, 11.0, 4.0] and (msg.width, msg.height) == (8, 6)


def test_rclpy_messages_carry_the_arrays_own_bytes_and_serialize_them():
    """rclpy's classes get the array's bytes without a copy in Python (messages._set_bytes), and rclpy's C
    conversion, the one publish uses, serialises exactly those bytes: a deserialised message equals the arrays."""
    serialization = pytest.importorskip('rclpy.serialization', reason='rclpy (ROS 2 Jazzy wheels) not installed')
    from sensor_msgs.msg import Image, PointCloud2, PointField

    depth = np.random.default_rng(0).uniform(0.2, 9.0, (48, 64)).astype(np.float32)
    depth[3, 5] = np.nan
    preview = colorize(depth, 0.2, 9.0)
    cloud = build_cloud(depth, CameraModel(50.0, 50.0, 31.5, 23.5, 64, 48), stride=2)
    for msg, array_ in ((fill_image(Image(), depth), depth), (fill_image(Image(), preview), preview),
                        (fill_pointcloud2(PointCloud2(), cloud, PointField), cloud.data)):
        assert np.shares_memory(np.asarray(msg.data), array_)  # no copy before publish
        back = serialization.deserialize_message(serialization.serialize_message(msg), type(msg))
        assert bytes(back.data) == array_.tobytes()
        assert (back.height, back.width) == (msg.height, msg.width)
