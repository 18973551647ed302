"""mono_depth_node on real rclpy + Fast DDS with robot data as it really arrives: stamps that jump back (a bag played
in a loop, a simulator reset), calibration that arrives well before its image, cameras binned or cropped at the
driver (REP 104 binning and roi). Uncalibrated cameras: test_node_integration's bad camera_info cases."""
from __future__ import annotations

import numpy as np
import pytest
from ros_harness import EVENT_TIMEOUT_S, HEIGHT, WIDTH, K, expected_depth, make_camera_info, make_image
from sensor_msgs.msg import RegionOfInterest


def _depth(msg):
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def _xyz(msg):
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width, msg.point_step // 4)[..., :3]


def test_stamps_that_jump_back_restart_the_loss_window_without_a_warning(harness_factory, model_path):
    """2 s of a 10 Hz camera, then its stamps restart 100 s earlier (a loop, a reset), every frame received:
    /diagnostics stays OK, counts the jump (stamp_jumps_back) and judges loss on the new stamps only (received
    1.00). The window spanned the jump and reported 3 % of the frames received, advising input_reliable."""
    harness = harness_factory(model_path, diagnostics_period=1.0)
    harness.send_camera_info()
    statuses = harness.statuses()
    stamps = [100_000_000_000 + i * 100_000_000 for i in range(20)] + [i * 100_000_000 for i in range(15)]
    for stamp in stamps:
        msg, _ = make_image(0)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        harness.deliver(msg)

    def after_the_last():  # deliver() may have sent a frame twice: each is received at least once, in order
        return [s for s in statuses if int({kv.key: kv.value for kv in s.values}['frames_in']) >= len(stamps)]
    harness.wait(after_the_last, EVENT_TIMEOUT_S, 'a status after every frame')
    status = after_the_last()[0]
    values = {kv.key: kv.value for kv in status.values}
    assert (status.level, status.message) == (b'\x00', 'ok'), status.message
    assert (values['stamp_jumps_back'], values['input_received_ratio'], values['input_stamp_rate_hz']) == \
        ('1', '1.00', '10.00')


def test_a_calibration_well_before_its_image_is_still_paired_with_it(harness_factory, model_path):
    """camera_info at 100 Hz, each with its own focal, while the image of the first lags 0.39 s behind (a large
    image over WiFi, a congested reliable link): the image gets the camera_info of its own stamp, as the offline
    tool pairs it (exact: no camera_info_inexact). The node held the last 30 arrivals (0.3 s here), so the image
    got none and was published without focal scaling or points, with a message blaming the clocks."""
    harness = harness_factory(model_path)
    for i in range(40):
        focal = 40.0 + i
        info = make_camera_info(k=(focal,) + K[1:4] + (focal,) + K[5:])
        info.header.stamp.sec, info.header.stamp.nanosec = 10, i * 10_000_000
        harness.send_camera_info(info)
    msg, rgb = make_image(10)
    out = harness.request(msg, 10, topics=('depth', 'points', 'depth/camera_info'))
    np.testing.assert_allclose(_depth(out['depth']), expected_depth(rgb) * 40.0 / 50.0, rtol=1e-4)
    assert out['depth/camera_info'].k[0] == 40.0
    assert 'camera_info_inexact' not in harness.node.stats.counts() and not harness.node.stats.faults()


def _reduced_camera_info(sensor: tuple[int, int], binning: int, roi: tuple[int, int, int, int], fx: float):
    """The full sensor's camera_info of a camera binned by ``binning`` and cropped to ``roi`` (x, y, width,
    height; zeros: none) whose reduced image is WIDTH x HEIGHT with focal ``fx / binning`` and the harness's
    principal point."""
    x, y, _, _ = roi
    cx, cy = K[2] * binning + x, K[5] * binning + y
    info = make_camera_info(*sensor, k=(fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0))
    info.binning_x = info.binning_y = binning
    info.roi = RegionOfInterest(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3])
    return info


@pytest.mark.parametrize(('sensor', 'binning', 'roi'), [((128, 96), 2, (0, 0, 0, 0)),
                                                        ((200, 150), 2, (40, 30, 128, 96)),
                                                        ((200, 150), 1, (100, 50, 64, 48))],
                         ids=['binned', 'roi_binned', 'roi'])
def test_binned_and_cropped_cameras_are_scaled_and_projected_with_the_reduced_camera(
        harness_factory, model_path, sensor, binning, roi):
    """A camera binned or cropped at the driver publishes the full sensor's calibration with binning and roi
    (REP 104): depth is scaled and points projected with the reduced camera, as image_geometry's
    PinholeCameraModel gives it (roi offset off the principal point, then divided by the binning), and
    depth/camera_info is republished with binning and roi as received. The node reported a size mismatch and
    published unscaled depth without points."""
    harness = harness_factory(model_path, points_stride=1)
    fx = 60.0 * binning  # the reduced focal is 60 px: depth 60 / 50 of the model's
    info = _reduced_camera_info(sensor, binning, roi, fx)
    harness.send_camera_info(info)
    msg, rgb = make_image(3)
    out = harness.request(msg, 3, topics=('depth', 'points', 'depth/camera_info'))
    depth = _depth(out['depth'])
    np.testing.assert_allclose(depth, expected_depth(rgb) * 60.0 / 50.0, rtol=1e-4)
    xyz = _xyz(out['points'])
    for v, u in [(0, 0), (47, 63), (20, 30)]:
        z = depth[v, u]
        np.testing.assert_allclose(xyz[v, u], [(u - K[2]) * z / 60.0, (v - K[5]) * z / 60.0, z], rtol=1e-5)
    republished = out['depth/camera_info']
    assert (republished.width, republished.height, republished.binning_x, republished.binning_y) == \
        (*sensor, binning, binning)
    assert (republished.roi.x_offset, republished.roi.y_offset, republished.roi.width, republished.roi.height) == roi
    assert list(republished.k) == list(info.k) and not harness.node.stats.faults()


def test_a_principal_point_outside_the_reduced_image_is_one_warning(harness_factory, model_path, capfd):
    """A calibration made on the cropped images but labelled with the full sensor's roi puts the principal point
    of the reduced image far outside it: one warning for the calibration, the frames still served."""
    harness = harness_factory(model_path)
    info = make_camera_info(200, 150)  # the crop's own K, so cx - roi.x_offset = 30.5 - 100
    info.roi = RegionOfInterest(x_offset=100, y_offset=50, width=WIDTH, height=HEIGHT)
    harness.send_camera_info(info)
    for stamp in (1, 2):
        harness.request(make_image(stamp)[0], stamp, topics=('depth', 'points'))
    warnings = [line for line in capfd.readouterr().err.splitlines() if 'principal point' in line]
    assert len(warnings) == 1 and '(-69.5, -29.5) lies outside the 64x48 image' in warnings[0], warnings
