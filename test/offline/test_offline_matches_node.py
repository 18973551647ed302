"""The live node and `mono_depth_offline bag` give byte-identical outputs for the same frame: one frame path
(depth_kd_ros.frames) behind both, here through real rclpy + Fast DDS on one side and a real rosbag2 on the other."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from offline_helpers import image_message, read_bag, run, synthetic_frames, write_bag

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
