"""The live node and `mono_depth_offline bag` give byte-identical outputs for the same frame: one frame path
(depth_kd_ros.frames) behind both, here through real rclpy + Fast DDS on one side and a real rosbag2 on the other."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from offline_helpers import (
    INFO_TOPIC,
    image_message,
    model_depth,
    read_bag,
    robot_data,
    run,
    synthetic_frames,
    write_bag,
    write_sequence,
)

from depth_kd_ros.params import NodeParams

ros_harness = pytest.importorskip('ros_harness', reason='the node side needs the ROS 2 rclpy wheels')


@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_node_and_offline_tool_publish_the_same_bytes(tmp_path, model_path, transport, capsys):
    """An 80x60 frame (resized to the 64x48 model and back, focal-scaled) as rgb8 Image or JPEG CompressedImage:
    depth, uncertainty and the cloud the node publishes equal, byte for byte, what the offline tool writes."""
    compressed = transport == 'compressed'
    frame = synthetic_frames(1, height=60, width=80)[0]
    params = NodeParams(num_threads=1, input_transport=transport)  # the harness's node: defaults, 1 thread
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump({'mono_depth_node': {'ros__parameters': params.as_dict()}}))
    bag = write_bag(tmp_path / 'in', [frame], compressed=compressed, image_format='jpeg')
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--params-file', params_file, '--quiet',
                       capsys=capsys)
    assert code == 0, err
    _, recorded = read_bag(tmp_path / 'out')
    offline = {topic.removeprefix('/camera/'): messages[0][1] for topic, messages in recorded.items()}

    from sensor_msgs.msg import CompressedImage, Image

    height, width = frame.rgb.shape[:2]
    if compressed:  # the very bytes the bag holds
        msg = CompressedImage(format='jpeg', data=image_message(frame, 0, '', True, image_format='jpeg').data.tobytes())
    else:
        msg = Image(height=height, width=width, encoding='rgb8', step=3 * width, data=frame.rgb.tobytes())
    msg.header.stamp.sec, msg.header.frame_id = 7, 'camera_optical_frame'
    harness = ros_harness.Harness(str(model_path), input_transport=transport)
    try:
        harness.send_camera_info(ros_harness.make_camera_info(width, height, frame.k))
        live = harness.request(msg, 7, topics=('depth', 'depth/uncertainty', 'points'))
    finally:
        harness.close()
    for topic in ('depth', 'depth/uncertainty', 'points'):
        node_msg, bag_msg = live[topic], offline[topic]
        assert (node_msg.height, node_msg.width) == (bag_msg.height, bag_msg.width), topic
        assert bytes(node_msg.data) == bag_msg.data.tobytes(), topic
    depth = np.frombuffer(bytes(live['depth'].data), np.float32)
    assert depth.size == height * width and np.isfinite(depth).all()


def _rclpy(message):
    """The rclpy message of a rosbags Image or CameraInfo (the same fields)."""
    from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest

    header = message.header
    if message.__msgtype__ == 'sensor_msgs/msg/Image':
        out = Image(height=message.height, width=message.width, encoding=message.encoding, step=message.step,
                    is_bigendian=message.is_bigendian, data=message.data.tobytes())
    else:
        roi = message.roi
        out = CameraInfo(width=message.width, height=message.height, distortion_model=message.distortion_model,
                         d=message.d.tolist(), k=message.k.tolist(), r=message.r.tolist(), p=message.p.tolist(),
                         binning_x=message.binning_x, binning_y=message.binning_y,
                         roi=RegionOfInterest(x_offset=roi.x_offset, y_offset=roi.y_offset, width=roi.width,
                                              height=roi.height, do_rectify=roi.do_rectify))
    out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id = (header.stamp.sec, header.stamp.nanosec,
                                                                           header.frame_id)
    return out


@pytest.mark.parametrize('case', ['stamps_jump_back', 'calibration_before_image', 'binned_and_cropped',
                                  'uncalibrated'])
def test_node_and_offline_tool_agree_on_robot_data_as_it_arrives(tmp_path, model_path, case, capsys):
    """The same messages in the same order (offline_helpers.robot_data: stamps that jump back, calibration 0.4 s
    before its image, binning and roi, an uncalibrated camera) given to the node over DDS and to the offline tool
    as a bag: the same depth, uncertainty and points byte for byte, depth/camera_info alike or absent alike, and
    the depth scaled by the focal each frame's own camera gives."""
    messages, focals = robot_data(case)
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump({'mono_depth_node': {'ros__parameters': NodeParams(
        num_threads=1).as_dict()}}))
    code, _, err = run('bag', write_sequence(tmp_path / 'in', messages), tmp_path / 'out', '--model', model_path,
                       '--params-file', params_file, '--quiet', capsys=capsys)
    assert code == 0, err
    offline = {}
    for topic, recorded in read_bag(tmp_path / 'out')[1].items():
        for _, message in recorded:
            stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            offline.setdefault(stamp, {})[topic.removeprefix('/camera/')] = message
    assert sorted(offline) == sorted(focals)
    harness = ros_harness.Harness(str(model_path))
    live, images = {}, {}
    try:
        for topic, message in messages:
            if topic == INFO_TOPIC:
                harness.send_camera_info(_rclpy(message))
                continue
            stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            images[stamp] = message.data.reshape(message.height, message.width, 3)
            live[stamp] = harness.request(_rclpy(message), message.header.stamp.sec, topics=tuple(offline[stamp]))
    finally:
        harness.close()
    for stamp, focal in focals.items():
        node, bag = live[stamp], offline[stamp]
        assert set(bag) <= set(node) and ('points' in node) == ('points' in bag) == (focal is not None), stamp
        assert ('depth/camera_info' in node) == (focal is not None)
        for topic in ('depth', 'depth/uncertainty', 'points'):
            if topic in bag:
                assert bytes(node[topic].data) == bag[topic].data.tobytes(), (stamp, topic)
        if focal is not None:
            for field in ('width', 'height', 'binning_x', 'binning_y', 'k', 'p'):
                assert np.array_equal(getattr(node['depth/camera_info'], field),
                                      getattr(bag['depth/camera_info'], field)), field
        np.testing.assert_allclose(np.frombuffer(bytes(node['depth'].data), np.float32).reshape(48, 64),
                                   model_depth(images[stamp]) * (focal or 50.0) / 50.0, rtol=1e-5)
