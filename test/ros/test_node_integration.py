"""mono_depth_node on real rclpy + Fast DDS: outputs, geometry, every bad input, runtime parameters."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import EVENT_TIMEOUT_S, HEIGHT, WIDTH, K, make_camera_info, make_image
from sensor_msgs.msg import CompressedImage, Image

from depth_kd_ros.backends import BackendError


def _expected_depth(rgb):
    """The synthetic model's formula at the model size; input size = model size here, scale 1."""
    return 2.0 + 4.0 * rgb.astype(np.float32).mean(axis=2) / 255.0


def _cloud_xyz(msg):
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width, msg.point_step // 4)[..., :3]


@pytest.fixture(scope='module')
def shared(model_path):
    """One node for the bad-input sequence (each test leaves it serving, which is what is tested)."""
    from ros_harness import Harness

    harness = Harness(model_path, max_input_pixels=100 * 100, points_stride=1)
    harness.send_camera_info()
    yield harness
    harness.close()


def test_outputs_headers_values_and_geometry(shared):
    """depth is 32FC1 metres at the input size with the input header; points follow x=(u-cx)z/fx."""
    msg, rgb = make_image(stamp=1)
    out = shared.request(msg, 1, topics=('depth', 'depth/camera_info', 'points', 'depth/colored',
                                         'depth/uncertainty'))
    depth_msg = out['depth']
    assert (depth_msg.encoding, depth_msg.height, depth_msg.width) == ('32FC1', HEIGHT, WIDTH)
    assert depth_msg.header.frame_id == 'camera_optical_frame' and depth_msg.header.stamp.sec == 1
    assert depth_msg.step == WIDTH * 4 and depth_msg.is_bigendian == 0
    depth = np.frombuffer(bytes(depth_msg.data), np.float32).reshape(HEIGHT, WIDTH)
    np.testing.assert_allclose(depth, _expected_depth(rgb), rtol=1e-4)
    info = out['depth/camera_info']
    assert (info.width, info.height, info.header.stamp.sec) == (WIDTH, HEIGHT, 1)
    assert tuple(info.k) == K
    assert (out['depth/colored'].encoding, out['depth/colored'].width) == ('bgr8', WIDTH)
    std = np.frombuffer(bytes(out['depth/uncertainty'].data), np.float32).reshape(HEIGHT, WIDTH)
    np.testing.assert_allclose(std, 0.5 * rgb[..., 0] / 255.0 * _expected_depth(rgb), rtol=1e-3, atol=1e-6)
    cloud = out['points']
    assert cloud.header.frame_id == 'camera_optical_frame' and (cloud.height, cloud.width) == (HEIGHT, WIDTH)
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z'] and not cloud.is_dense
    xyz = _cloud_xyz(cloud)
    fx, cx, fy, cy = K[0], K[2], K[4], K[5]
    for v, u in [(0, 0), (7, 40), (47, 63), (20, 30)]:
        z = depth[v, u]
        np.testing.assert_allclose(xyz[v, u], [(u - cx) * z / fx, (v - cy) * z / fy, z], rtol=1e-5)


def _raw(stamp, *, encoding='bgr8', height=HEIGHT, width=WIDTH, step=None, data=None):
    msg, _ = make_image(stamp, width=max(width, 1), height=max(height, 1))
    msg.encoding, msg.height, msg.width = encoding, height, width
    msg.step = width * 3 if step is None else step
    if data is not None:
        msg.data = data
    return msg


BAD_FRAMES = {
    'unsupported_encoding': lambda s: _raw(s, encoding='16UC1'),
    'data_too_short': lambda s: _raw(s, data=bytes(100)),
    'zero_size': lambda s: _raw(s, width=0),
    'bad_step': lambda s: _raw(s, step=WIDTH * 3 - 1),
    'image_too_large': lambda s: make_image(s, width=128, height=128)[0],  # above max_input_pixels 10000
}


@pytest.mark.parametrize('kind', sorted(BAD_FRAMES))
def test_bad_frame_is_counted_and_next_frame_answered(shared, kind):
    """A malformed frame is counted under its kind (no output for it), and the next good frame is answered."""
    stamp = 100 + sorted(BAD_FRAMES).index(kind) * 2
    before = shared.node.stats.faults().get(kind, 0)
    bad = BAD_FRAMES[kind](stamp)
    shared.wait(lambda: shared.pub_image.publish(bad) or shared.node.stats.faults().get(kind, 0) > before,
                EVENT_TIMEOUT_S, f'fault {kind} counted')
    assert not shared.messages('depth', stamp)
    shared.request(make_image(stamp + 1)[0], stamp + 1)


@pytest.mark.parametrize(('kind', 'info'), [
    ('bad_focal', make_camera_info(k=(float('nan'),) + K[1:])),
    ('bad_focal', make_camera_info(k=(0.0,) + K[1:])),
    ('bad_focal', make_camera_info(k=(-50.0,) + K[1:])),
    ('camera_size_mismatch', make_camera_info(width=WIDTH * 2, height=HEIGHT * 2)),
], ids=['nan_focal', 'zero_focal', 'negative_focal', 'size_mismatch'])
def test_bad_camera_info_gives_depth_without_points(shared, kind, info):
    """Unusable intrinsics: depth still published, no points or depth/camera_info, fault counted; recovers."""
    stamp = 200 + len(shared.messages('depth'))
    before = shared.node.stats.faults().get(kind, 0)
    shared.send_camera_info(info)
    shared.request(make_image(stamp)[0], stamp)
    assert shared.node.stats.faults().get(kind, 0) > before
    # checked now: a copy that request() re-sent could still be in flight and meet the good camera_info sent next
    assert not shared.messages('points', stamp) and not shared.messages('depth/camera_info', stamp)
    shared.send_camera_info()
    shared.request(make_image(stamp + 1)[0], stamp + 1, topics=('depth', 'points'))


def test_backend_exception_on_one_frame(shared):
    """A backend failing on one frame is counted as backend_error and the next frame is answered."""
    real = shared.node.pipeline.backend

    class FailOnce(type(real)):
        def __init__(self):
            self.__dict__.update(real.__dict__)
            self.failed = False

        def infer(self, image):
            if not self.failed:
                self.failed = True
                raise BackendError('injected fault')
            return real.infer(image)

    shared.node.pipeline.backend = FailOnce()
    try:
        before = shared.node.stats.faults().get('backend_error', 0)
        shared.request(make_image(300)[0], 300)  # the first attempt fails, the resend is answered
        assert shared.node.stats.faults()['backend_error'] == before + 1
    finally:
        shared.node.pipeline.backend = real


def test_resolution_change_while_running(shared):
    """A new image size is served at that size; points resume once camera_info matches it. Each change is
    counted as resolution_change in /diagnostics (which also shows the current input size).

    The docs promised the count; nothing counted or logged a change.
    """
    shared.request(make_image(399)[0], 399)  # the model's size first, whichever test ran before
    before = shared.node.stats.faults().get('resolution_change', 0)
    scaled_k = (62.5, 0.0, 38.0, 0.0, 62.5, 25.0, 0.0, 0.0, 1.0)  # 80x60, same field of view
    shared.send_camera_info(make_camera_info(80, 60, scaled_k))
    out = shared.request(make_image(400, width=80, height=60)[0], 400, topics=('depth', 'points'))
    assert (out['depth'].width, out['depth'].height) == (80, 60)
    assert out['points'].width == 80
    assert shared.node.stats.summary()[2]['input_size'] == '80x60'
    shared.send_camera_info()
    out = shared.request(make_image(401)[0], 401, topics=('depth', 'points'))
    assert out['depth'].width == WIDTH
    assert shared.node.stats.faults()['resolution_change'] == before + 2


def test_runtime_parameter_changes(shared):
    """Stride changes while running; read-only and out-of-range changes are refused with a reason."""
    results = shared.node.set_parameters([Parameter('points_stride', value=4)])
    assert results[0].successful
    out = shared.request(make_image(500)[0], 500, topics=('depth', 'points'))
    assert (out['points'].height, out['points'].width) == (HEIGHT // 4, WIDTH // 4)
    assert not shared.node.set_parameters([Parameter('model_path', value='/x.onnx')])[0].successful
    refused = shared.node.set_parameters([Parameter('points_stride', value=0)])[0]
    assert not refused.successful and refused.reason
    assert shared.node.set_parameters([Parameter('points_stride', value=1)])[0].successful


def test_points_and_focal_scale_use_p_of_a_rectified_camera(shared):
    """With K != P (a calibrated lens, image rectified) the cloud and the focal scale follow P, as
    depth_image_proc and rviz do (image_geometry reads P); depth/camera_info is still the input's, unchanged.

    The node used K, so such clouds were off by the K/P difference, silently.
    """
    info = make_camera_info()
    fx, cx, fy, cy = 40.0, 25.0, 40.0, 22.0  # P; K stays (50, 30.5, 50, 20.5)
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    shared.send_camera_info(info)
    try:
        msg, rgb = make_image(700)
        out = shared.request(msg, 700, topics=('depth', 'points', 'depth/camera_info'))
    finally:
        shared.send_camera_info()
    depth = np.frombuffer(bytes(out['depth'].data), np.float32).reshape(HEIGHT, WIDTH)
    np.testing.assert_allclose(depth, _expected_depth(rgb) * fx / 50.0, rtol=1e-4)  # model focal 50 px
    assert tuple(out['depth/camera_info'].k) == K and out['depth/camera_info'].p[0] == fx
    xyz = _cloud_xyz(out['points'])
    stride = shared.node.params.points_stride
    for v, u in [(0, 0), (40, 60), (20, 30)]:
        v, u = v - v % stride, u - u % stride
        z = depth[v, u]
        np.testing.assert_allclose(xyz[v // stride, u // stride], [(u - cx) * z / fx, (v - cy) * z / fy, z],
                                   rtol=1e-5)


def test_runtime_colormap_range_must_fit_the_model(shared):
    """colored_min_depth above the model's max_depth (colored_max_depth 0 means the model's, 10 m here) is refused.

    It passed the model-free range check before, and then colorize raised on every frame, so the node stopped
    publishing depth and points altogether (counted only as internal_error).
    """
    refused = shared.node.set_parameters([Parameter('colored_min_depth', value=20.0)])[0]
    assert not refused.successful and 'colored_min_depth' in refused.reason
    refused = shared.node.set_parameters([Parameter('colored_max_depth', value=0.05)])[0]  # below min 0.1
    assert not refused.successful
    out = shared.request(make_image(600)[0], 600, topics=('depth', 'depth/colored'))
    assert out['depth/colored'].encoding == 'bgr8'
    assert shared.node.set_parameters([Parameter('colored_min_depth', value=5.0)])[0].successful
    shared.request(make_image(601)[0], 601, topics=('depth', 'depth/colored'))
    assert shared.node.set_parameters([Parameter('colored_min_depth', value=0.0)])[0].successful


def test_no_camera_info_yet_publishes_depth_only(harness_factory, model_path):
    """Before any camera_info: depth is published, points are skipped, and a warning kind is counted."""
    harness = harness_factory(model_path)
    harness.request(make_image(1)[0], 1)
    assert not harness.messages('points') and not harness.messages('depth/camera_info')
    assert harness.node.stats.faults()['no_camera_info'] >= 1


def test_compressed_transport_and_corrupt_payload(harness_factory, model_path):
    """input_transport=compressed reads image/compressed (PNG here); a corrupt one, a truncated JPEG (no depth for
    it: OpenCV 4.5/4.6 decode it to a partly grey image) and one over max_input_pixels (a 40 kB PNG of 4000x3000,
    refused on its header) are counted, then the next frame is served."""
    harness = harness_factory(model_path, input_transport='compressed')
    harness.send_camera_info()
    _, rgb = make_image(1)
    corrupt = CompressedImage(format='jpeg', data=b'\xff\xd8\xff garbage')
    harness.wait(lambda: harness.pub_compressed.publish(corrupt)
                 or harness.node.stats.faults().get('corrupt_compressed', 0) > 0, EVENT_TIMEOUT_S, 'corrupt counted')
    good = CompressedImage(format='png', data=cv2.imencode('.png', rgb[..., ::-1])[1].tobytes())
    good.header.stamp.sec, good.header.frame_id = 1, 'camera_optical_frame'
    harness.request(good, 1)  # the copies of the corrupt one published before it have been counted by now
    counted = harness.node.stats.faults()['corrupt_compressed']
    jpeg = cv2.imencode('.jpg', rgb[..., ::-1])[1].tobytes()
    truncated = CompressedImage(format='jpeg', data=jpeg[:(jpeg.index(b'\xff\xda') + len(jpeg)) // 2])  # in the scan
    truncated.header.stamp.sec = 3
    harness.wait(lambda: harness.pub_compressed.publish(truncated) or harness.messages('depth', 3)
                 or harness.node.stats.faults()['corrupt_compressed'] > counted, EVENT_TIMEOUT_S,
                 'truncated JPEG handled')
    assert not harness.messages('depth', 3)
    huge = CompressedImage(format='png', data=cv2.imencode('.png', np.zeros((3000, 4000, 3), np.uint8))[1].tobytes())
    harness.wait(lambda: harness.pub_compressed.publish(huge)
                 or harness.node.stats.faults().get('image_too_large', 0) > 0, EVENT_TIMEOUT_S, 'too large counted')
    good.header.stamp.sec = 2
    out = harness.request(good, 2, topics=('depth', 'points'))
    depth = np.frombuffer(bytes(out['depth'].data), np.float32).reshape(HEIGHT, WIDTH)
    np.testing.assert_allclose(depth, _expected_depth(rgb), rtol=1e-4)
    assert isinstance(out['depth'], Image)


def test_diagnostics_report_rates_latency_faults_backend_and_model(shared):
    """/diagnostics carries what an operator needs: rates, latency percentiles, fault counts, backend, model."""
    from diagnostic_msgs.msg import DiagnosticArray

    arrays = []
    subscription = shared.client.create_subscription(DiagnosticArray, '/diagnostics', arrays.append, 10)
    try:
        shared.wait(lambda: arrays, EVENT_TIMEOUT_S, '/diagnostics')
    finally:
        shared.client.destroy_subscription(subscription)
    status = arrays[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name.endswith('mono_depth_node: depth')
    assert values['backend'] == 'onnxruntime' and values['model'] == 'synthetic'
    assert {'input_rate_hz', 'output_rate_hz', 'latency_p50_ms', 'latency_p90_ms', 'frames_dropped'} <= set(values)
    assert int(values['fault_unsupported_encoding']) >= 1


def test_input_reliable_subscribes_reliably(harness_factory, model_path):
    """input_reliable=true gives a reliable image subscription (for Fast DDS and large frames)."""
    from rclpy.qos import ReliabilityPolicy

    harness = harness_factory(model_path, input_reliable=True)
    infos = harness.client.get_subscriptions_info_by_topic(harness.client.resolve_topic_name('image'))
    assert [i.qos_profile.reliability for i in infos] == [ReliabilityPolicy.RELIABLE]
    harness.request(make_image(1)[0], 1)


def test_no_inference_while_nobody_subscribes(harness_factory, model_path):
    """Lazy like depth_image_proc: with no output subscriber the node neither decodes nor infers,
    even for a bad frame, and it answers again as soon as someone subscribes."""
    harness = harness_factory(model_path)
    harness.send_camera_info()
    node, stats = harness.node, harness.node.stats
    taken = []  # what the worker found subscribed, once per frame it took (its first look at each frame)
    subscribed_outputs = node._subscribed_outputs
    node._subscribed_outputs = lambda: taken.append(subscribed_outputs()) or taken[-1]
    subscriptions = list(harness.client.subscriptions)
    for subscription in subscriptions:
        harness.client.destroy_subscription(subscription)
    harness.wait(lambda: not subscribed_outputs(), EVENT_TIMEOUT_S, 'the node to see no subscriber')
    bad, _ = make_image(1, encoding='16UC1')
    for msg in (bad, make_image(2)[0], make_image(3)[0]):
        harness.deliver(msg)
    # every frame received was taken by the worker or dropped for a newer one (keep-latest)
    harness.wait(lambda: len(taken) + stats.dropped == stats.frames_in, EVENT_TIMEOUT_S, 'the worker to take them')
    assert taken and not any(taken) and stats.frames_out == 0
    assert 'unsupported_encoding' not in harness.node.stats.faults()
    harness.client.create_subscription(Image, 'depth', lambda m: harness._store('depth', m),
                                       QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    harness.request(make_image(4)[0], 4)


def _diagnostics(harness, until, timeout: float = EVENT_TIMEOUT_S) -> list:
    """DiagnosticStatus messages heard on /diagnostics by ``harness``'s client until ``until(statuses)``."""
    from diagnostic_msgs.msg import DiagnosticArray

    arrays = []
    subscription = harness.client.create_subscription(DiagnosticArray, '/diagnostics', arrays.append, 50)
    try:
        harness.wait(lambda: until([s for a in list(arrays) for s in a.status]), timeout, '/diagnostics')
    finally:
        harness.client.destroy_subscription(subscription)
    return arrays


def test_two_cameras_have_their_own_diagnostics_status_and_hardware_id(harness_factory, model_path):
    """Nodes in /front and /rear publish /diagnostics under their fully qualified names, with a hardware_id
    naming the camera: the parameter, or else the images' frame_id. Both used 'mono_depth_node: depth' and
    the backend's name, so a monitor merged two cameras under one key.
    """
    front = harness_factory(model_path, namespace='/front', hardware_id='front_camera', diagnostics_period=0.2)
    rear = harness_factory(model_path, namespace='/rear', diagnostics_period=0.2)
    for harness in (front, rear):
        harness.send_camera_info()
    rear.request(make_image(1, frame_id='rear_camera_optical_frame')[0], 1)
    front.request(make_image(1)[0], 1)

    def latest(statuses):
        return {s.name: s.hardware_id for s in statuses}

    expected = {'/front/mono_depth_node: depth': 'front_camera',
                '/rear/mono_depth_node: depth': 'rear_camera_optical_frame'}
    arrays = _diagnostics(front, lambda statuses: expected.items() <= latest(statuses).items())
    assert expected.items() <= latest([s for a in arrays for s in a.status]).items()


def test_diagnostics_run_on_a_steady_clock_under_sim_time_without_clock(harness_factory, model_path):
    """With use_sim_time and no /clock (a simulator not started yet) the node serves depth and /diagnostics
    still comes, stamped with ROS time (still 0). The timer ran on the stopped ROS clock: /diagnostics was silent.
    """
    harness = harness_factory(model_path, use_sim_time=True, diagnostics_period=0.2)
    harness.send_camera_info()
    harness.request(make_image(5)[0], 5)
    name = f'{harness.node.get_fully_qualified_name()}: depth'  # other tests' nodes publish on /diagnostics too

    def counted(statuses):  # the node counts the frame just after publishing it: a later status says so
        return [s for s in statuses if s.name == name and {kv.key: kv.value for kv in s.values}['frames_out'] == '1']
    arrays = _diagnostics(harness, counted)
    arrays = [a for a in arrays if a.status[0].name == name]
    assert all(a.header.stamp.sec == 0 and a.header.stamp.nanosec == 0 for a in arrays)


def test_uncertainty_threshold_that_removes_every_point_is_one_warning(harness_factory, model_path, capfd):
    """A threshold below every pixel's depth_std/depth publishes empty clouds: counted per frame in /diagnostics
    and logged once (throttled like every fault), naming the frame's median ratio. It was silent: an empty
    cloud looked like a broken camera.
    """
    harness = harness_factory(model_path, uncertainty_threshold=0.1, log_throttle=60.0)
    harness.send_camera_info()
    rgb = np.full((HEIGHT, WIDTH, 3), (200, 60, 60), np.uint8)  # the model's depth_std/depth = 0.5 * red = 0.39
    for stamp in (1, 2, 3):
        msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3, data=rgb.tobytes())
        msg.header.stamp.sec, msg.header.frame_id = stamp, 'camera_optical_frame'
        out = harness.request(msg, stamp, topics=('depth', 'points'))
        assert np.isnan(_cloud_xyz(out['points'])).all()
    # counted just after the frame is published
    harness.wait(lambda: harness.node.stats.faults().get('uncertainty_removes_all') == 3, EVENT_TIMEOUT_S,
                 'three uncertainty_removes_all faults')
    warnings = [line for line in capfd.readouterr().err.splitlines() if 'removes every point' in line]
    assert len(warnings) == 1 and 'median of 0.39' in warnings[0], warnings
    assert harness.node.set_parameters([Parameter('uncertainty_threshold', value=0.45)])[0].successful
    msg.header.stamp.sec = 4
    out = harness.request(msg, 4, topics=('depth', 'points'))
    assert not np.isnan(_cloud_xyz(out['points'])).all()
    msg.header.stamp.sec = 5
    harness.request(msg, 5)  # the worker takes frames one at a time: frame 4 is counted, or not, by now
    assert harness.node.stats.faults()['uncertainty_removes_all'] == 3  # a threshold that keeps points is fine
