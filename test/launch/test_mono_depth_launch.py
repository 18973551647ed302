"""`ros2 launch depth_kd_ros mono_depth.launch.py` as a robot user runs it: serving, Ctrl-C, and failures.

Each launch runs in a session of its own and is stopped the way a terminal does it: a signal to its whole
process group, so the node hears SIGINT twice (from the "terminal" and forwarded by launch). launch_testing
runs a LaunchService inside the test process; these faults are about the `ros2 launch` process itself (its
exit status, its children after it, signals to its group), so the command is run as it is typed.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

from ros_harness import Harness, make_camera_info, make_image

COMPANION_LAUNCH = Path(__file__).with_name('bringup_with_companion.launch.py')


def test_launch_serves_depth_in_its_namespace_and_ctrl_c_stops_it_cleanly(launch, tiny_model):
    """Remapped inputs in, depth out in the namespace; then Ctrl-C (pressed three times): everything exits 0.

    The node used to die with a KeyboardInterrupt traceback from destroy_node and exit code -2 (launch:
    "process has died") when the second SIGINT arrived during its clean-up.
    """
    running = launch('depth_kd_ros', 'mono_depth.launch.py', f'model_path:={tiny_model}', 'namespace:=robot1',
                     'image_topic:=/cam/image_raw', 'camera_info_topic:=/cam/camera_info')
    try:
        client = Harness(None, namespace='/robot1', image_topic='/cam/image_raw',
                         camera_info_topic='/cam/camera_info')
    except AssertionError as exc:  # the node never appeared: say what the launch printed
        raise AssertionError(f'{exc}; ros2 launch printed:\n{running.log_path.read_text()}') from exc
    try:
        client.send_camera_info(make_camera_info())
        out = client.request(make_image(5)[0], 5, topics=('depth', 'points'), timeout=30.0)
    finally:
        client.close()
    assert out['depth'].encoding == '32FC1' and out['depth'].header.frame_id == 'camera_optical_frame'
    for _ in range(3):
        running.signal_group(signal.SIGINT)
        time.sleep(0.02)
    code, output = running.finish()
    assert code == 0, output
    assert 'process has finished cleanly' in output, output
    assert 'Traceback' not in output and 'process has died' not in output, output
    assert not running.group_alive()


def test_managed_launch_with_autostart_configures_activates_and_serves(launch, tiny_model):
    """managed:=true autostart:=true: launch_ros's LifecycleNode is configured, then activated, and serves depth;
    Ctrl-C ends it all with exit 0."""
    running = launch('depth_kd_ros', 'mono_depth.launch.py', f'model_path:={tiny_model}', 'managed:=true',
                     'autostart:=true', 'namespace:=robot2')
    try:
        client = Harness(None, namespace='/robot2')  # waits until the node subscribes and publishes: active
    except AssertionError as exc:
        raise AssertionError(f'{exc}; ros2 launch printed:\n{running.log_path.read_text()}') from exc
    try:
        client.send_camera_info(make_camera_info())
        out = client.request(make_image(3)[0], 3, timeout=30.0)
    finally:
        client.close()
    assert out['depth'].header.stamp.sec == 3
    running.signal_group(signal.SIGINT)
    code, output = running.finish()
    assert code == 0, output
    assert 'activated: serving' in output, output
    assert 'Traceback' not in output and 'process has died' not in output, output
    assert not running.group_alive()


def test_rviz_without_rviz2_fails_clearly_and_leaves_nothing_running(launch, tiny_model):
    """rviz:=true where rviz2 is not installed: one error naming rviz2, exit 1, no process started.

    The launch used to start mono_depth_node, fail on the rviz2 executable, exit and leave the node orphaned.
    """
    running = launch('depth_kd_ros', 'mono_depth.launch.py', f'model_path:={tiny_model}', 'rviz:=true')
    code, output = running.finish()
    assert code == 1, output
    assert 'rviz:=true but rviz2 is not installed' in output, output
    assert 'process started' not in output, output
    assert not running.group_alive(), 'a process of the launch is still running'


def test_node_that_cannot_start_ends_the_launch_with_failure(launch):
    """A missing model in a bring-up that includes mono_depth.launch.py next to another long-running process
    (a stand-in for rviz): the node's one line, `ros2 launch` exits non-zero, the other process is stopped.

    ros2 launch used to exit 0 after the node's exit 2 (a supervisor saw success), and other processes of
    the launch kept running.
    """
    running = launch(str(COMPANION_LAUNCH), 'model_path:=/nonexistent/student.onnx')
    code, output = running.finish(timeout=60.0)
    assert code == 1, output
    assert 'mono_depth_node: cannot start: model file not found' in output, output
    assert 'exited with code 2' in output, output
    assert not running.group_alive(), 'a process of the launch is still running'
