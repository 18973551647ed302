"""mono_depth_node on real rclpy + Fast DDS with what robot cameras send (issue 14): calibration by stamp and
latched, distorted frames (rectify), 16-bit depth output, body frames, stalls and lost frames, ground-plane scale."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from ros_harness import DOMAIN_ID, EVENT_TIMEOUT_S, HEIGHT, WIDTH, K, make_camera_info, make_image
from sensor_msgs.msg import Image

from depth_kd_ros.node.mono_depth_node import LATCHED_QOS
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx, ground_image


def _expected_depth(rgb):
    """The synthetic model's formula (conftest.model_path) at the model size, focal scale 1."""
    return 2.0 + 4.0 * rgb.astype(np.float32).mean(axis=2) / 255.0


def _depth(msg):
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def _with_focal(focal: float, stamp: int):
    info = make_camera_info(k=(focal,) + K[1:4] + (focal,) + K[5:])
    info.header.stamp.sec = stamp
    return info


def test_camera_info_latched_before_start_and_paired_by_stamp(harness_factory, model_path):
    """A calibration published once, transient_local, before the node starts is received (the node subscribed
    volatile: it was missed and points never came). Each image gets the camera_info of its own stamp, else the
    latest before it (counted as camera_info_inexact); an image older than every camera_info is a fault (it got
    the latest received, of a later frame)."""
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    driver = Node('camera_driver', context=context, namespace='/latched')
    try:
        driver.create_publisher(type(make_camera_info()), 'camera_info', LATCHED_QOS).publish(_with_focal(40.0, 5))
        harness = harness_factory(model_path, namespace='/latched')
        msg, rgb = make_image(6)
        out = harness.request(msg, 6, topics=('depth', 'points'))
        np.testing.assert_allclose(_depth(out['depth']), _expected_depth(rgb) * 40.0 / 50.0, rtol=1e-4)
        assert harness.node.stats.counts()['camera_info_inexact'] >= 1
        for focal, stamp in ((50.0, 10), (60.0, 20)):
            harness.send_camera_info(_with_focal(focal, stamp))
        inexact = harness.node.stats.counts()['camera_info_inexact']
        for stamp, focal in ((10, 50.0), (20, 60.0)):  # exact stamps; the newest is not the one for stamp 10
            out = harness.request(make_image(stamp)[0], stamp)
            np.testing.assert_allclose(_depth(out['depth']), _expected_depth(rgb) * focal / 50.0, rtol=1e-4)
        assert harness.node.stats.counts()['camera_info_inexact'] == inexact
        out = harness.request(make_image(15)[0], 15, topics=('depth', 'depth/camera_info'))
        assert out['depth/camera_info'].k[0] == 50.0
        assert harness.node.stats.counts()['camera_info_inexact'] == inexact + 1
        out = harness.request(make_image(3)[0], 3)  # before every held stamp: depth only, unscaled
        np.testing.assert_allclose(_depth(out['depth']), _expected_depth(rgb), rtol=1e-4)
        assert harness.node.stats.faults()['no_camera_info'] >= 1 and not harness.messages('points', 3)
    finally:
        driver.destroy_node()
        rclpy.try_shutdown(context=context)


def _distorted_camera_info(distortion_model='plumb_bob', d=(-0.25, 0.08, 0.002, -0.001, 0.0)):
    info = make_camera_info()
    info.distortion_model, info.d = distortion_model, list(d)
    info.p = [45.0, 0.0, 31.0, 0.0, 0.0, 45.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # the rectified camera
    return info


def test_rectify_serves_the_rectified_frame_and_refuses_what_it_cannot_rectify(harness_factory, model_path):
    """rectify:=true: depth is the model's on OpenCV's own undistort-rectify of the frame, scaled by P's focal, and
    depth/camera_info is the rectified camera (D zero, K from P). Without camera_info, or with an unknown distortion
    model, the frame is skipped and counted (never published raw as if rectified), and the next good one is served.
    D was ignored: clouds of raw wide-angle frames were off at the edges, silently."""
    harness = harness_factory(model_path, rectify=True)
    harness.wait(lambda: harness.pub_image.publish(make_image(1)[0])
                 or harness.node.stats.faults().get('no_camera_info', 0) > 0, EVENT_TIMEOUT_S, 'no_camera_info counted')
    assert not harness.messages('depth', 1)
    harness.send_camera_info(_distorted_camera_info(d=(0.1, 0.0, 0.0, 0.0)))  # plumb_bob needs 5
    harness.wait(lambda: harness.pub_image.publish(make_image(2)[0])
                 or harness.node.stats.faults().get('bad_distortion_length', 0) > 0, EVENT_TIMEOUT_S, 'bad D counted')
    harness.send_camera_info(_distorted_camera_info('kannala_brandt'))
    harness.wait(lambda: harness.pub_image.publish(make_image(3)[0])
                 or harness.node.stats.faults().get('unknown_distortion_model', 0) > 0, EVENT_TIMEOUT_S,
                 'unknown model counted')
    # every copy of frames 2 and 3 so far met the camera_info of its phase (send_camera_info waits for the node to
    # hold it); copies still in flight may meet the good one sent next and be served
    assert not harness.messages('depth', 2) and not harness.messages('depth', 3)
    info = _distorted_camera_info()
    harness.send_camera_info(info)
    msg, rgb = make_image(4)
    out = harness.request(msg, 4, topics=('depth', 'depth/camera_info', 'points'))
    k, p = np.reshape(K, (3, 3)), np.reshape(info.p, (3, 4))
    maps = cv2.initUndistortRectifyMap(k, np.array(info.d), np.eye(3), p, (WIDTH, HEIGHT), cv2.CV_16SC2)
    rectified = cv2.remap(rgb, *maps, cv2.INTER_LINEAR)
    np.testing.assert_allclose(_depth(out['depth']), _expected_depth(rectified) * 45.0 / 50.0, rtol=1e-4)
    camera_info = out['depth/camera_info']
    assert camera_info.distortion_model == 'plumb_bob' and not any(camera_info.d)
    np.testing.assert_array_equal(camera_info.k, [45.0, 0.0, 31.0, 0.0, 45.0, 22.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(camera_info.p, info.p)


def test_depth_encoding_16uc1_is_millimetres(harness_factory, model_path):
    """depth_encoding:=16UC1 publishes uint16 millimetres (REP 118, 0 invalid), the depth topic only."""
    harness = harness_factory(model_path, depth_encoding='16UC1')
    harness.send_camera_info()
    msg, rgb = make_image(1)
    out = harness.request(msg, 1, topics=('depth', 'depth/uncertainty'))
    depth = out['depth']
    assert (depth.encoding, depth.step) == ('16UC1', WIDTH * 2)
    millimetres = np.frombuffer(bytes(depth.data), np.uint16).reshape(HEIGHT, WIDTH)
    np.testing.assert_allclose(millimetres, np.rint(_expected_depth(rgb) * 1000.0), atol=1)
    assert out['depth/uncertainty'].encoding == '32FC1'


def test_body_frame_lost_frames_and_a_stall_are_reported(harness_factory, model_path, capfd):
    """A frame_id that is not an optical frame is one warning (per frame_id); frames missing from the stamps'
    sequence (best-effort loss) turn /diagnostics WARN with the received share and the input_reliable hint; no image
    for a few periods turns it WARN too. Before, it stayed OK forever after the camera stopped and said nothing of
    lost frames."""
    from diagnostic_msgs.msg import DiagnosticArray

    harness = harness_factory(model_path, diagnostics_period=0.2)
    harness.send_camera_info()
    name = f'{harness.node.get_fully_qualified_name()}: depth'
    statuses = []
    harness.client.create_subscription(DiagnosticArray, '/diagnostics',
                                       lambda a: statuses.extend(s for s in a.status if s.name == name), 50)
    for tenth in (0, 1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19):  # 10 Hz stamps, 8 of the last 16 frames lost
        msg, _ = make_image(0, frame_id='base_link')
        msg.header.stamp.nanosec = tenth * 100_000_000
        harness.deliver(msg)  # each one received before the next: none lost in the node's input queue
    # 12 of the 20 stamps of the 2 s span: 60 %
    def lossy():
        return [s for s in statuses if (m := re.search(r'receiving (\d+)% of the frames', s.message))
                and int(m.group(1)) <= 60]
    harness.wait(lossy, EVENT_TIMEOUT_S, 'loss reported')
    status = lossy()[0]
    assert 'input_reliable:=true' in status.message and status.level == b'\x01'
    assert {kv.key: kv.value for kv in status.values}['input_stamp_rate_hz'] == '10.00'
    harness.wait(lambda: any('no image for' in s.message for s in statuses), EVENT_TIMEOUT_S, 'stall reported')
    warnings = [line for line in capfd.readouterr().err.splitlines() if 'optical frame' in line]
    assert len(warnings) == 1 and "'base_link'" in warnings[0], warnings


def test_ground_plane_scale_factor_in_diagnostics(harness_factory, tmp_path):
    """scale_correction:=ground_plane with a model 25 % too long on this camera, looking at a floor 1 m below:
    the published depth is corrected to the true floor and /diagnostics carries the factor (0.8) and its inlier
    ratio."""
    from diagnostic_msgs.msg import DiagnosticArray

    width, height, fy, cy = 128, 96, 100.0, 30.5  # at the model's 64x48: focal 50, the model's (focal scale 1)
    model = build_synthetic_onnx(str(tmp_path / 'ground.onnx'), HEIGHT, WIDTH, base=0.0, gain=10.0, focal_length=50.0)
    harness = harness_factory(model, scale_correction='ground_plane', camera_height=1.0, diagnostics_period=0.2)
    harness.send_camera_info(make_camera_info(width, height, (fy, 0.0, 63.5, 0.0, fy, cy, 0.0, 0.0, 1.0)))
    name = f'{harness.node.get_fully_qualified_name()}: depth'
    values = []
    harness.client.create_subscription(DiagnosticArray, '/diagnostics', lambda a: values.extend(
        {kv.key: kv.value for kv in s.values} for s in a.status if s.name == name), 50)
    rgb = ground_image(width, height, fy, cy, 1.25, gain=10.0)
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3, data=rgb.tobytes())
    msg.header.stamp.sec, msg.header.frame_id = 1, 'camera_optical_frame'
    depth = _depth(harness.request(msg, 1)['depth'])
    truth = fy / (np.arange(60, height) - cy)  # rows well inside the model range, away from resize edges
    np.testing.assert_allclose(depth[60:], np.broadcast_to(truth[:, None], depth[60:].shape), rtol=0.03)
    harness.wait(lambda: any('scale_factor' in v for v in values), EVENT_TIMEOUT_S, 'scale_factor in /diagnostics')
    reported = next(v for v in values if 'scale_factor' in v)
    assert float(reported['scale_factor']) == pytest.approx(0.8, rel=0.03)
    assert float(reported['scale_inlier_ratio']) > 0.5 and reported['scale_updated'] == 'true'
