"""mono_depth_node on real rclpy + Fast DDS with CompressedImage formats beyond image_transport's jpeg and png: a
TIFF in the camera's rgb8 order, a video packet (h264), and a JPEG that carries an EXIF orientation."""
from __future__ import annotations

import cv2
import numpy as np
from recorded_data import with_exif_orientation
from ros_harness import EVENT_TIMEOUT_S, HEIGHT, WIDTH, expected_depth
from sensor_msgs.msg import CompressedImage


def _compressed(stamp: int, message_format: str, data: bytes) -> CompressedImage:
    msg = CompressedImage(format=message_format, data=data)
    msg.header.stamp.sec, msg.header.frame_id = stamp, 'camera_optical_frame'
    return msg


def _image(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def test_tiff_video_and_exif_rotated_frames(harness_factory, model_path, capfd):
    """An rgb8 TIFF (image_transport's 'rgb8; tiff compressed ', the camera's channel order) is served with red as
    red: the model's uncertainty, 0.5 * red * depth, shows it (it came out with red and blue swapped). An h264
    packet is refused as a video stream, named in the log (it was counted as a corrupt image). A JPEG whose EXIF
    orientation turns it by 90 degrees is served as stored, at the camera_info's size with points (it was decoded
    turned, 48x64, against its 64x48 camera_info: depth without points)."""
    harness = harness_factory(model_path, input_transport='compressed')
    harness.send_camera_info()
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    rgb[...] = (200, 60, 20)
    tiff = cv2.imencode('.tiff', rgb)[1].tobytes()  # the publisher's imencode of the rgb8 pixels as they are
    out = harness.request(_compressed(1, 'rgb8; tiff compressed ', tiff), 1, topics=('depth', 'depth/uncertainty'))
    depth = _image(out['depth'])
    np.testing.assert_allclose(depth, expected_depth(rgb), rtol=1e-4)
    np.testing.assert_allclose(_image(out['depth/uncertainty']), 0.5 * 200 / 255 * depth, rtol=1e-4)

    video = _compressed(2, 'h264', b'\x00\x00\x00\x01\x67\x42\x00\x1e\x95\xa8\x28\x0f\x64')
    harness.wait(lambda: harness.pub_compressed.publish(video)
                 or harness.node.stats.faults().get('unsupported_format', 0) > 0, EVENT_TIMEOUT_S, 'h264 refused')
    assert 'corrupt_compressed' not in harness.node.stats.faults()
    logged = [line for line in capfd.readouterr().err.splitlines() if '[unsupported_format]' in line]
    assert logged and "format 'h264': a video stream" in logged[0]

    rotated = with_exif_orientation(cv2.imencode('.jpg', rgb[..., ::-1])[1].tobytes(), 6)  # 90 degrees
    out = harness.request(_compressed(3, 'rgb8; jpeg compressed bgr8', rotated), 3, topics=('depth', 'points'))
    assert (out['depth'].width, out['depth'].height) == (WIDTH, HEIGHT)
    assert 'camera_size_mismatch' not in harness.node.stats.faults()
