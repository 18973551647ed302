"""mono_depth_node on real rclpy + Fast DDS with what robot cameras send (issue 14): calibration by stamp and
latched, distorted frames (rectify), 16-bit depth output, body frames, stalls and lost frames, ground-plane scale."""
from __future__ import annotations

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from ros_harness import DOMAIN_ID, K, make_camera_info, make_image

from depth_kd_ros.mono_depth_node import LATCHED_QOS


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
            harness.send_camera_info(_with_focal(focal, stamp), settle=0.0)
        harness.wait(lambda: len(harness.node._camera_infos) >= 3, 5.0, 'camera_infos')
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
