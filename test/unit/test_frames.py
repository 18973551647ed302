"""depth_kd_ros.frames: one decoder, one pipeline call and one set of message fillers for node and offline tool
(here with rosbags' message classes, as the offline bag uses them; the node's rclpy side is in test/ros)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_kd_ros.camera.model import CameraInfoError, camera_model
from depth_kd_ros.frames import OUTPUT_TOPICS, FramePath, FrameSkipped
from depth_kd_ros.io.bagio import TYPESTORE
from depth_kd_ros.io.image_codec import ImageDecodeError
from depth_kd_ros.offline.bag import TYPESTORE_MESSAGES
from depth_kd_ros.params import NodeParams
from depth_kd_ros.pipeline import load_pipeline
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

T = TYPESTORE.types
HEIGHT, WIDTH = 30, 40


@pytest.fixture(scope='module')
def frames(tmp_path_factory) -> FramePath:
    path = build_synthetic_onnx(str(tmp_path_factory.mktemp('m') / 'm.onnx'), std_ratio=0.2)
    return FramePath(load_pipeline(NodeParams(model_path=path, num_threads=1, max_input_pixels=HEIGHT * WIDTH)),
                     TYPESTORE_MESSAGES, use_cv_bridge=False)


def _rgb() -> np.ndarray:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([u * 6, v * 8, (u + v) * 3], -1).astype(np.uint8)


def _header(sec: int = 5):
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=sec, nanosec=9), frame_id='cam')


def _image(rgb: np.ndarray, encoding: str = 'rgb8'):
    pixels = rgb[..., ::-1] if encoding == 'bgr8' else rgb
    return T['sensor_msgs/msg/Image'](header=_header(), height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                                      is_bigendian=0, step=3 * rgb.shape[1], data=pixels.reshape(-1).copy())


def _camera_info(width: int = WIDTH, height: int = HEIGHT):
    k = np.array([35.0, 0, 19.5, 0, 35.0, 14.5, 0, 0, 1])
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return T['sensor_msgs/msg/CameraInfo'](header=_header(), height=height, width=width, distortion_model='plumb_bob',
                                           d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=np.zeros(12),
                                           binning_x=0, binning_y=0, roi=roi)


def test_every_input_kind_decodes_to_the_same_rgb(frames):
    """rgb8, bgr8 and a lossless PNG CompressedImage of one frame are the same RGB array."""
    rgb = _rgb()
    png = np.frombuffer(cv2.imencode('.png', rgb[..., ::-1])[1], np.uint8)
    compressed = T['sensor_msgs/msg/CompressedImage'](header=_header(), format='png', data=png)
    for msg in (_image(rgb), _image(rgb, 'bgr8'), compressed):
        np.testing.assert_array_equal(frames.decode(msg), rgb)


def test_bad_inputs_name_their_kind(frames):
    """Without cv_bridge an unknown encoding is unsupported; a frame over max_input_pixels is refused."""
    with pytest.raises(ImageDecodeError) as unsupported:
        frames.decode(_image(_rgb(), '16UC1'))
    assert unsupported.value.kind == 'unsupported_encoding'
    with pytest.raises(ImageDecodeError) as large:
        frames.decode(_image(np.zeros((HEIGHT + 1, WIDTH, 3), np.uint8)))
    assert large.value.kind == 'image_too_large'
    with pytest.raises(CameraInfoError) as other_size:
        camera_model(_camera_info(width=WIDTH * 2), WIDTH, HEIGHT)
    assert other_size.value.kind == 'camera_size_mismatch'


def test_run_computes_only_what_the_outputs_need(frames):
    """depth alone: no cloud, preview or depth_std; the uncertainty topic keeps depth_std; points need a camera."""
    rgb, camera = _rgb(), camera_model(_camera_info(), WIDTH, HEIGHT)
    alone = frames.run(rgb, camera, ['depth'])
    assert (alone.cloud, alone.colored, alone.depth_std) == (None, None, None)
    every = frames.run(rgb, camera, OUTPUT_TOPICS)
    assert every.cloud is not None and every.colored is not None and every.depth_std is not None
    assert frames.run(rgb, None, ['points']).cloud is None
    np.testing.assert_array_equal(alone.depth, every.depth)


def test_messages_follow_the_outputs_order_and_carry_the_input_header(frames):
    """One message per output asked for and available, in the order asked, each with the input's header; no
    depth/camera_info without a usable camera_info."""
    info = _camera_info()
    result = frames.run(_rgb(), camera_model(info, WIDTH, HEIGHT), OUTPUT_TOPICS)
    order = ['points', 'depth', 'depth/uncertainty', 'depth/camera_info', 'depth/colored']
    messages = frames.messages(result, _header(11), info, order)
    assert list(messages) == order
    assert all(m.header.stamp.sec == 11 and m.header.frame_id == 'cam' for m in messages.values())
    depth = messages['depth']
    assert (depth.encoding, depth.height, depth.width, depth.step) == ('32FC1', HEIGHT, WIDTH, 4 * WIDTH)
    assert depth.data.tobytes() == result.depth.tobytes()
    assert messages['depth/colored'].encoding == 'bgr8'
    np.testing.assert_array_equal(messages['depth/camera_info'].k, info.k)
    assert messages['points'].data.tobytes() == result.cloud.data.tobytes()
    assert list(frames.messages(result, _header(), None, ['depth/camera_info', 'depth'])) == ['depth']


def test_the_frame_sequence_serves_or_skips_a_frame_without_a_usable_camera_by_argument(frames):
    """camera_frame: a frame without camera_info, or with one of another size, is served without a camera (the
    node's policy, ``camera_missing`` saying why) or skipped (the offline tool's and training's), with one
    FrameSkipped whose kind and reason every caller reports; an undecodable frame is skipped under both."""
    image = _image(_rgb())
    served = frames.camera_frame(image, _camera_info(), require_camera=True)
    assert served.camera == camera_model(_camera_info(), WIDTH, HEIGHT) and served.camera_missing is None
    for info, stage, kind, reason in ((None, 'camera_info', 'no_camera_info', 'no camera_info at or before the '
                                       'image stamp'),
                                      (_camera_info(width=WIDTH * 2), 'camera', 'camera_size_mismatch',
                                       'unusable camera_info (camera_size_mismatch)')):
        frame = frames.camera_frame(image, info, require_camera=False)
        assert (frame.camera, frame.camera_info, frame.camera_missing.stage) == (None, None, stage)
        np.testing.assert_array_equal(frame.rgb, _rgb())
        with pytest.raises(FrameSkipped) as skipped:
            frames.camera_frame(image, info, require_camera=True)
        assert (skipped.value.kind, skipped.value.reason) == (kind, reason)
    for require_camera in (False, True):
        with pytest.raises(FrameSkipped) as skipped:
            frames.camera_frame(_image(_rgb(), '16UC1'), _camera_info(), require_camera=require_camera)
        assert skipped.value.reason == 'undecodable image (unsupported_encoding)'
