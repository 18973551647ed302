"""mono_depth_node as users start it (console script, --ros-args): start-up errors and a clean run."""
from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import EVENT_TIMEOUT_S, Harness, make_camera_info, make_image, node_command_with_stop_wait
from ros_harness import start_node_process as _start

from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


def _renamed_input_model(model_path, tmp_path):
    model = onnx.load(model_path)
    model.graph.input[0].name = 'rgb'
    model.graph.node[0].input[0] = 'rgb'
    path = tmp_path / 'wrong_input.onnx'
    onnx.save(model, str(path))
    return str(path)


def _lying_model(tmp_path, op):
    """A contract model (depth only) with its final Identity replaced: the declared output stays [1,1,48,64],
    but 'pool' computes [1,1,24,32] and 'reshape' fails at run time (a broken export passing the file check)."""
    from onnx import helper, numpy_helper

    model = onnx.load(build_synthetic_onnx(str(tmp_path / 'base.onnx')))
    nodes = model.graph.node
    index, identity = next((i, n) for i, n in enumerate(nodes) if n.op_type == 'Identity')
    nodes.remove(identity)
    if op == 'pool':
        node = helper.make_node('MaxPool', [identity.input[0]], ['depth'], kernel_shape=[2, 2], strides=[2, 2])
    else:
        model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 50, 64], np.int64), 'bad_shape'))
        node = helper.make_node('Reshape', [identity.input[0], 'bad_shape'], ['depth'])
    nodes.insert(index, node)
    path = tmp_path / f'lying_{op}.onnx'
    onnx.save(model, str(path))
    return str(path)


def _pt2_archive(tmp_path):
    """A .pt2 as torch.export writes it, as far as the runtime reads one: a zip with extra/metadata.json."""
    metadata = {'input_height': 48, 'input_width': 64, 'min_depth': 0.1, 'max_depth': 10.0, 'focal_length': 50.0,
                'model_name': 'synthetic', 'training_dataset': 'none', 'export_version': '1', 'outputs': ['depth']}
    path = tmp_path / 'student.pt2'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('student/extra/metadata.json', json.dumps(metadata))
    return str(path)


@pytest.mark.parametrize(('args', 'message'), [
    (lambda m, t: ['-p', 'model_path:=/nonexistent/model.onnx'], 'model file not found'),
    (lambda m, t: [], 'model_path is empty'),
    (lambda m, t: ['-p', f'model_path:={_renamed_input_model(m, t)}'], 'one input named "image"'),
    (lambda m, t: ['-p', f'model_path:={m}', '-p', 'backend:=tensorrt'], 'TensorRT'),
    (lambda m, t: ['-p', f'model_path:={m}', '-p', 'points_stride:=0'], 'points_stride'),
    (lambda m, t: ['-p', f'model_path:={m}', '-p', 'backend:=caffe'], 'backend'),
    (lambda m, t: ['-p', f'model_path:={m}', '--params-file', str(t / 'nope.yaml')], 'nope.yaml'),
    (lambda m, t: ['-p', f'model_path:={m}', '-p'], '-p'),
    (lambda m, t: ['-p', f'model_path:={m}', '-p', 'colored_min_depth:=50.0'], 'colored_min_depth'),
    (lambda m, t: ['-p', f'model_path:={_lying_model(t, "pool")}'], 'when run'),
    (lambda m, t: ['-p', f'model_path:={_lying_model(t, "reshape")}'], 'fails on a test frame'),
    (lambda m, t: ['-p', f'model_path:={_pt2_archive(t)}'], 'is a torch model (.pt2, torch.export): use backend torch'),
    (lambda m, t: ['-p', f'model_path:={Path(m).parent}'], 'is a folder, not a model file'),
], ids=['missing', 'empty', 'contract', 'trt_unavailable', 'out_of_range', 'unknown_backend',
        'missing_params_file', 'malformed_ros_args', 'colormap_range_outside_model', 'computes_another_size',
        'fails_when_run', 'pt2_on_onnxruntime', 'folder'])
def test_startup_errors_exit_nonzero_with_one_clear_line(model_path, tmp_path, args, message):
    """An unusable model or configuration ends the process with exit code 2 and no traceback.

    Includes --ros-args that rcl itself rejects (a params file that does not exist, a dangling -p): rclpy.init
    raises RCLError there, which used to escape as a traceback with exit code 1; and a colormap start above the
    model's max_depth (colored_max_depth 0 = the model's), which used to start and then fail every frame; and a
    model whose graph declares the contract's shapes but computes another size or fails when run, which used
    to start and then count a backend_error on every frame, publishing nothing.
    """
    process = _start(*args(model_path, tmp_path))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert message in stderr and 'Traceback' not in stderr
    assert 'mono_depth_node: cannot start:' in stderr


def test_params_file_keyed_for_the_root_namespace_hints_at_the_keys_that_match(model_path, tmp_path):
    """A params file keyed `mono_depth_node:` does not apply to a node in a namespace (rclpy matches only the
    fully qualified name or `/**`): the start-up line says so, naming the namespace and both keys that would
    match. It ended in "model_path is empty" alone, pointing at the wrong fix.
    """
    params = tmp_path / 'front.yaml'
    params.write_text(f'mono_depth_node:\n  ros__parameters:\n    model_path: {model_path}\n')
    process = _start('-r', '__ns:=/front', '--params-file', str(params))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    line = next(line for line in stderr.splitlines() if 'cannot start:' in line)
    assert 'model_path is empty' in line and 'hint:' in line and str(params) in line, stderr
    assert 'namespace /front' in line and "'/**'" in line and "'/front/mono_depth_node'" in line, stderr


def test_model_with_design_keys_only_starts_with_one_warning(tmp_path):
    """A model whose metadata has only the docs/design.md keys (no training_dataset, export_version) starts,
    with one warning naming both. It exited 2 ('metadata lacks').
    """
    model = build_synthetic_onnx(str(tmp_path / 'hand.onnx'), exporter_keys=False)
    process = _start('-p', f'model_path:={model}', '-p', 'num_threads:=1')
    lines = []
    try:
        for line in process.stderr:  # until the start-up line naming the model, or EOF if the node exits
            lines.append(line)
            if 'model synthetic (' in line:
                break
    finally:
        process.send_signal(signal.SIGINT)
        lines.append(process.communicate(timeout=30)[1])
    stderr = ''.join(lines)
    assert 'model synthetic (' in stderr, stderr
    warnings = [line for line in stderr.splitlines() if 'metadata lacks' in line]
    assert len(warnings) == 1 and 'training_dataset' in warnings[0] and 'export_version' in warnings[0], stderr


def test_console_script_with_params_file_serves_and_stops_cleanly(model_path, tmp_path):
    """Started like `ros2 run` with the shipped params file layout: answers a frame, exits 0 on SIGINT; with no
    Fast DDS settings in the environment it runs on the package's profile, which Fast DDS parses silently."""
    params = tmp_path / 'params.yaml'
    params.write_text(f'mono_depth_node:\n  ros__parameters:\n    model_path: {model_path}\n    num_threads: 1\n')
    process = _start('--params-file', str(params))
    client = None
    try:
        client = Harness(None, namespace='/')
        client.send_camera_info(make_camera_info())
        out = client.request(make_image(7)[0], 7, topics=('depth', 'points'), timeout=30.0)
        assert out['depth'].header.stamp.sec == 7 and out['depth'].encoding == '32FC1'
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        if client is not None:
            client.close()
    assert process.returncode == 0, stderr
    assert 'Traceback' not in stderr
    assert 'Fast DDS profile' in stderr and 'fastdds_large_outputs.xml' in stderr, stderr
    assert 'XMLPARSER' not in stderr.upper() and 'XMLPROFILEMANAGER' not in stderr.upper(), stderr


@pytest.mark.parametrize(('environment', 'applied'), [
    ({}, True),
    ({'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}, False),
    ({'FASTRTPS_DEFAULT_PROFILES_FILE': '/robot/fastdds.xml'}, False),
    ({'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}, False),
    ({'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp'}, True),
])
def test_large_output_profile_only_where_the_environment_configures_no_fast_dds(monkeypatch, tmp_path,
                                                                                environment, applied):
    """The node's Fast DDS profile (bigger shared-memory segment, 100 ms heartbeat: docs/node.md) is a default: a
    profile, builtin transports or another RMW in the environment is kept as it is."""
    from depth_kd_ros.node.process import FASTDDS_SETTINGS, use_large_output_profile

    monkeypatch.chdir(tmp_path)  # no DEFAULT_FASTRTPS_PROFILES.xml here
    # a copy, so that what the function sets does not leak into the nodes this session starts later
    unset = (*FASTDDS_SETTINGS, 'RMW_IMPLEMENTATION')
    monkeypatch.setattr(os, 'environ', {**{k: v for k, v in os.environ.items() if k not in unset}, **environment})
    profile = use_large_output_profile()
    assert bool(profile) == applied
    expected = profile if applied else environment.get('FASTRTPS_DEFAULT_PROFILES_FILE')
    assert os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE') == expected
    if applied:
        assert Path(profile).is_file() and profile.endswith('config/fastdds_large_outputs.xml')


def test_sigterm_while_inferring_stops_the_worker_before_the_context(slow_model):
    """SIGTERM (systemd, launch) mid-inference: exit 0 without an internal error from the worker.

    rclpy's own SIGTERM handler used to shut the context down at once; the worker, still inferring, then
    asked a publisher for its subscription count and logged `RCLError: failed to get subscription count:
    publisher's context is invalid` as internal_error (3 of 6 runs). The signal comes as a frame of the slow model
    (about 1 s, well within the node's 5 s stop wait) has just begun, and frames keep coming after it.
    """
    slow = slow_model(frame_seconds=1.0)
    process = _start('-p', f'model_path:={slow}', '-p', 'num_threads:=1')
    client = None
    try:
        client = Harness(None, namespace='/')
        client.send_camera_info(make_camera_info())
        next_stamp = client.keep_worker_busy(1, timeout=60.0)  # the worker is inside a frame now
        process.send_signal(signal.SIGTERM)
        for stamp in range(next_stamp, next_stamp + 10):  # 0.5 s more of frames at 20 Hz
            client.pub_image.publish(make_image(stamp)[0])
            time.sleep(0.05)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if client is not None:
            client.close()
    assert process.returncode == 0, stderr
    assert 'internal_error' not in stderr and 'RCLError' not in stderr and 'Traceback' not in stderr, stderr


def test_sigint_while_a_frame_outlasts_the_stop_wait_exits_0(slow_model):
    """SIGINT while the worker is inside a frame that takes longer than the node waits for it (WORKER_STOP_S, here
    0.2 s against a frame of about 2 s; a big model on a slow robot CPU at the default 5 s): the process exits 0 with
    one line saying so. It used to leave the worker inside ONNX Runtime's run while the interpreter tore down:
    'terminate called without an active exception', SIGABRT (exit -6)."""
    stop_wait = 0.2
    slow = slow_model(frame_seconds=10 * stop_wait)
    process = _start('-p', f'model_path:={slow}', '-p', 'num_threads:=1',
                     command=node_command_with_stop_wait(stop_wait))
    client = None
    try:
        client = Harness(None, namespace='/')
        client.send_camera_info(make_camera_info())
        client.keep_worker_busy(1, timeout=60.0)  # the worker is inside a frame now
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if client is not None:
            client.close()
    assert process.returncode == 0, stderr
    assert 'did not finish' in stderr and 'terminate called' not in stderr, stderr


def test_sigterm_and_sigint_together_stop_quietly(model_path):
    """SIGTERM and SIGINT arriving together (systemd or launch stopping the node while Ctrl-C is pressed): exit 0 with
    no traceback. The first handler used to switch the other signal to SIG_IGN while it was already pending, and
    Python reported 'OSError: Signal 15 ignored due to race condition' with a traceback (every run)."""
    process = _start('-p', f'model_path:={model_path}', '-p', 'num_threads:=1', '-p', 'diagnostics_period:=0.2')
    client = Harness(None, namespace='/', discover=False)
    try:
        statuses = []
        client.client.create_subscription(DiagnosticArray, '/diagnostics', lambda array: statuses.extend(
            status for status in array.status if status.name == '/mono_depth_node: depth'), 10)
        client.wait(lambda: statuses or process.poll() is not None, EVENT_TIMEOUT_S,
                    '/diagnostics (a timer: the node spins)')
        os.kill(process.pid, signal.SIGTERM)
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        client.close()
    assert process.returncode == 0, stderr
    assert 'Traceback' not in stderr and 'race condition' not in stderr, stderr
