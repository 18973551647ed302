"""`mono_depth_offline bag` with robot data as it really arrives (offline_helpers.robot_data): stamps that jump back,
cameras binned or cropped at the driver (REP 104), uncalibrated cameras. The node gives the same results on the
same messages: test_offline_matches_node.py."""
from __future__ import annotations

import cv2
import numpy as np
from offline_helpers import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SECOND,
    assert_clean_error,
    image_message,
    k_matrix,
    model_depth,
    read_bag,
    robot_camera_info,
    robot_data,
    run,
    synthetic_frames,
    write_sequence,
)

from depth_kd_ros.offline.run import default_params_file


def _depth(message) -> np.ndarray:
    return np.frombuffer(message.data.tobytes(), np.float32).reshape(message.height, message.width)


def _run(tmp_path, model_path, case_or_messages, capsys, *params: str):
    messages = robot_data(case_or_messages)[0] if isinstance(case_or_messages, str) else case_or_messages
    bag = write_sequence(tmp_path / 'in', messages)
    extra = []
    if params:
        text = default_params_file().read_text()
        for change in params:
            old, new = change.split(' -> ')
            assert old in text
            text = text.replace(old, new)
        (tmp_path / 'params.yaml').write_text(text)
        extra = ['--params-file', tmp_path / 'params.yaml']
    return run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', *extra, capsys=capsys)


def _images(case: str) -> dict[int, np.ndarray]:
    return {m.header.stamp.sec * SECOND + m.header.stamp.nanosec: m.data.reshape(m.height, m.width, 3)
            for topic, m in robot_data(case)[0] if topic == IMAGE_TOPIC}


def test_an_uncalibrated_camera_gets_depth_without_points_and_the_summary_says_why(tmp_path, model_path, capsys):
    """K = P = 0 and no distortion model (usb_cam, v4l2_camera, gscam without a calibration file): the depth is
    written as the node publishes it (no focal scaling), with no points and no depth/camera_info, exit 0, and the
    summary says the camera is uncalibrated. Every frame was skipped and the run ended with exit 2, 'no frame could
    be processed', hiding why."""
    code, out, err = _run(tmp_path, model_path, 'uncalibrated', capsys)
    assert code == 0, err
    assert 'written: 2, skipped: 0' in out
    assert '2 frames: the camera is uncalibrated' in out and 'calibrate the camera' in out, out
    types, messages = read_bag(tmp_path / 'out')
    images = _images('uncalibrated')
    for (_, depth) in messages['/camera/depth']:
        stamp = depth.header.stamp.sec * SECOND
        np.testing.assert_allclose(_depth(depth), model_depth(images[stamp]), rtol=1e-5)
    assert not messages.get('/camera/points') and not messages.get('/camera/depth/camera_info')


def test_an_uncalibrated_camera_with_rectify_is_refused_naming_why(tmp_path, model_path, capsys):
    """rectify on an uncalibrated camera (image_proc refuses it too): exit 2 with one line that names the reason
    of the skipped frames. The line said 'no frame could be processed' and no more."""
    code, _, err = _run(tmp_path, model_path, 'uncalibrated', capsys, 'rectify: false -> rectify: true')
    assert_clean_error(code, err, 'no frame of /camera/image_raw could be processed (2 in the bag: 2 cannot rectify '
                                  '(uncalibrated) (first: ', 'drivers publish K = P = 0')


def test_binned_and_cropped_cameras_are_scaled_with_the_reduced_camera(tmp_path, model_path, capsys):
    """The full sensor's camera_info with binning 2, then with a roi and binning 2, on 64x48 frames: depth scaled by
    the reduced focal (60 of the model's 50 px), points, and depth/camera_info as received (binning and roi
    kept). Every frame was skipped as another size and the run ended with exit 2."""
    code, out, err = _run(tmp_path, model_path, 'binned_and_cropped', capsys)
    assert code == 0 and 'written: 2, skipped: 0' in out, err
    _, messages = read_bag(tmp_path / 'out')
    images = _images('binned_and_cropped')
    for (_, depth) in messages['/camera/depth']:
        np.testing.assert_allclose(_depth(depth), model_depth(images[depth.header.stamp.sec * SECOND]) * 1.2,
                                   rtol=1e-5)
    assert len(messages['/camera/points']) == 2
    infos = [info for _, info in messages['/camera/depth/camera_info']]
    assert [(i.width, i.height, i.binning_x, i.roi.x_offset, i.roi.y_offset, i.roi.width, i.roi.height)
            for i in infos] == [(128, 96, 2, 0, 0, 0, 0), (200, 150, 2, 40, 30, 128, 96)]


def test_a_binned_distorted_camera_is_rectified_as_image_geometry_does(tmp_path, model_path, capsys):
    """rectify: true on a binned, cropped, distorted camera: the frame is rectified with maps of the binned sensor
    cut to the binned roi (image_geometry's rectifyImage), depth is the model's on it scaled by P's reduced focal,
    and depth/camera_info is the rectified camera with binning and roi as received."""
    d = [-0.25, 0.08, 0.002, -0.001, 0.0]
    k = k_matrix(120.0, 120.0, 2 * 30.5 + 40, 2 * 20.5 + 30)
    p = np.array([100.0, 0, 101, 0, 0, 100.0, 71, 0, 0, 0, 1, 0])  # the rectified camera: 50 px reduced
    info = robot_camera_info(SECOND, k, 200, 150, binning=2, roi=(40, 30, 128, 96), d=d)
    info.p = p
    frame = synthetic_frames(1, height=48, width=64)[0]
    code, out, err = _run(tmp_path, model_path, [(INFO_TOPIC, info),
                                                 (IMAGE_TOPIC, image_message(frame, SECOND, 'cam', False))],
                          capsys, 'rectify: false -> rectify: true')
    assert code == 0 and 'written: 1' in out, err
    k_binned, p_binned = np.reshape(k, (3, 3)) / [[2], [2], [1]], p.reshape(3, 4) / [[2], [2], [1]]
    map1, map2 = cv2.initUndistortRectifyMap(k_binned, np.array(d), np.eye(3), p_binned, (100, 75), cv2.CV_16SC2)
    window = np.s_[15:63, 20:84]
    rectified = cv2.remap(frame.rgb, map1[window] - np.array([20, 15], np.int16), map2[window], cv2.INTER_LINEAR)
    _, messages = read_bag(tmp_path / 'out')
    np.testing.assert_allclose(_depth(messages['/camera/depth'][0][1]), model_depth(rectified) * 50.0 / 50.0,
                               rtol=1e-5)
    camera_info = messages['/camera/depth/camera_info'][0][1]
    assert not camera_info.d.any() and (camera_info.binning_x, camera_info.roi.x_offset) == (2, 40)
    np.testing.assert_array_equal(camera_info.k, [100.0, 0, 101, 0, 100.0, 71, 0, 0, 1])


def test_a_recording_of_a_loop_pairs_each_frame_by_its_own_stamp_and_says_the_stamps_jump(tmp_path, model_path,
                                                                                          capsys):
    """Stamps 100-102 s, then from 3 s with another calibration (a loop, a reset): every frame gets the camera_info
    of its own stamp (focal 50, then 60), and the summary says the stamps jump back once."""
    code, out, err = _run(tmp_path, model_path, 'stamps_jump_back', capsys)
    assert code == 0 and 'written: 5, skipped: 0' in out, err
    assert 'the image stamps jump back 1 times (2 segments' in out, out
    _, messages = read_bag(tmp_path / 'out')
    images, focals = _images('stamps_jump_back'), robot_data('stamps_jump_back')[1]
    for (_, depth) in messages['/camera/depth']:
        stamp = depth.header.stamp.sec * SECOND
        np.testing.assert_allclose(_depth(depth), model_depth(images[stamp]) * focals[stamp] / 50.0, rtol=1e-5)
