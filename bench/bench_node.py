"""Node per-frame cost at 640x480 with ONNX Runtime CPU: every stage, medians and p90, one process.

The goal: everything but the model <= 5 ms p50 at 640x480; 'goal' in the JSON says, per Fast DDS transport,
whether it is met or by how much it is missed. Stages are the node's own code path
(node/mono_depth_node.py's _process, through depth_kd_ros.frames):
    conversion (bgr8 Image bytes -> RGB) -> resize (+ /255, NCHW) -> inference -> postprocess (resize
    back, focal scale, invalid -> NaN) -> cloud (back-projection + packing) -> colorize -> message_fill
    (rclpy Image x2, PointCloud2, CameraInfo) -> publish (rclpy, reliable, one subscriber process)
    non_model = end_to_end - inference, per frame, once per Fast DDS transport (node_profile: the profile the node
    applies to itself, as it publishes; default; LARGE_DATA); node_end_to_end: camera
    publish -> depth received through the real node process at 4 Hz; resize_linear: the same resize with
    resize_interpolation 'linear' (the faster alternative to INTER_AREA), timed separately.
    node_overload: the same through the node with the camera at OVERLOAD_HZ, faster than the node: frames
    answered and their latency under keep-latest (test/ros/test_node_overload.py asserts only what holds at
    any speed: order, newest answered, drops accounted for, flat memory).
    delivery_all_outputs: all five outputs subscribed by reliable subscribers in another process (Fast DDS delays):
    frames delivered and camera publish -> receipt p50/p99/max per output, with the node's default Fast DDS
    profile (config/fastdds_large_outputs.xml) and with Fast DDS's defaults, beside the node's own latency.
Model: the default student (config defaults, random init) exported with training/disdepth/export.py at
256x320; if that fails (e.g. no torch), the synthetic contract graph, and the JSON says which.
Usage: ``python bench/bench_node.py [--frames 100] [--model PATH] [--output bench/results/node.json]
[--only stages overload delivery camera_blocks]`` (--only updates those parts of --output and keeps the rest).
camera_blocks: the robot-camera blocks alone at 640x480 (rectify with cached maps, the map build,
the ground-plane fit, 16UC1 encoding); no model or DDS involved.
"""
from __future__ import annotations

import argparse
import array
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.frames import OUTPUT_TOPICS, FramePath
from depth_kd_ros.messages import fill_camera_info
from depth_kd_ros.params import NodeParams
from depth_kd_ros.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT = 640, 480
MODEL_SIZE = (256, 320)  # multiples of the backbone stride 32, about half the camera resolution
THREADS = 2
GOAL_MS = 5.0
# node_profile: the Fast DDS profile the node applies to itself (config/fastdds_large_outputs.xml: shared memory
# with a 16 MB segment + UDPv4), so the stages are timed as the node publishes; then Fast DDS's builtin transports:
# the default (UDPv4 + SHM, 512 KB segment) and LARGE_DATA (SHM + TCP for user data), which every participant
# must share (docs/design.md section 4: large messages)
TRANSPORTS = ('node_profile', 'default', 'LARGE_DATA')
OVERLOAD_HZ = 60.0  # camera rate for node_overload: above what the node answers at 640x480 here


def export_student(directory: str) -> tuple[str, str]:
    """(path, description) of the default student exported to ONNX, or the synthetic graph on failure."""
    try:
        import torch

        from disdepth.config import Config
        from disdepth.export import export_onnx
        from disdepth.models.student import build_student

        torch.set_num_threads(THREADS)
        cfg = Config()
        cfg.data.dataset = 'synthetic_indoor'
        path = os.path.join(directory, 'student.onnx')
        report = export_onnx(build_student(cfg.model).eval(), cfg, path, *MODEL_SIZE, check_images=1)
        return path, f"default student {report.metadata['model_name']} (random init) at {MODEL_SIZE}"
    except Exception as exc:  # noqa: BLE001 - any failure falls back to the model-free graph, recorded
        from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

        path = build_synthetic_onnx(os.path.join(directory, 'synthetic.onnx'), *MODEL_SIZE,
                                    focal_length=0.9 * MODEL_SIZE[1])
        return path, f'synthetic onnx.helper graph at {MODEL_SIZE} (student export failed: {exc})'


def camera_frame() -> tuple[object, CameraModel]:
    """A bgr8 640x480 sensor_msgs/Image payload (rclpy layout) and its intrinsics."""
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return array.array('B', bgr.tobytes()), CameraModel(525.0, 525.0, 319.5, 239.5, WIDTH, HEIGHT)


# The subscriber runs in its own process, as rviz or Nav2 would: an in-process one would deserialize
# megabytes under the GIL and inflate the publisher's timings.
SINK = '''
import sys, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from depth_kd_ros.node.mono_depth_node import OUTPUT_CLASSES
rclpy.init(domain_id=int(sys.argv[1]))
node = rclpy.create_node('bench_sink')
qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
for name, kind in OUTPUT_CLASSES.items():
    if name != 'depth/uncertainty':
        node.create_subscription(kind, name, lambda _msg: None, qos)
try:
    rclpy.spin(node)
except Exception:
    pass
'''


def stats(values: list[float]) -> dict[str, float]:
    data = np.asarray(values)
    return {'p50_ms': round(float(np.median(data)), 3), 'p90_ms': round(float(np.percentile(data, 90)), 3),
            'min_ms': round(float(data.min()), 3)}


def stage_samples(model_paths: dict[str, str], frames: int, warmup: int = 10) -> dict[str, dict[str, list[float]]]:
    """Per-frame stage times (ms) of each model {name: path} on the same 640x480 frame, one process: every frame
    index runs each model in turn, so machine load hits them alike; the DDS transport comes from the environment.
    Returns {name: {stage: [ms per frame]}} (resize_linear: the resize alone with resize_interpolation 'linear')."""
    import rclpy
    from rclpy.context import Context
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from depth_kd_ros.node.mono_depth_node import OUTPUT_CLASSES, RCLPY_MESSAGES

    params = NodeParams(num_threads=THREADS)
    frame_paths = {name: FramePath(load_pipeline(params.replace(model_path=path)), RCLPY_MESSAGES)
                   for name, path in model_paths.items()}
    data, camera = camera_frame()
    image = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3, data=data)
    info = fill_camera_info(CameraInfo(), camera)
    domain_id = 200 + os.getpid() % 30
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('bench_node', context=context)
    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    # as the node with subscribers to depth, depth/camera_info, depth/colored, points (not uncertainty)
    publishers = {topic: node.create_publisher(OUTPUT_CLASSES[topic], topic, qos) for topic in OUTPUT_TOPICS
                  if topic != 'depth/uncertainty'}
    sink = subprocess.Popen([sys.executable, '-c', SINK, str(domain_id)])
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and not all(p.get_subscription_count() for p in publishers.values()):
        time.sleep(0.1)  # discovery
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in model_paths}
    try:
        for index in range(warmup + frames):
            for name, frame_path in frame_paths.items():
                start = time.perf_counter()
                decoded = frame_path.camera_frame(image, info, require_camera=False)  # decode, camera model
                result = frame_path.run(decoded.rgb, decoded.camera, publishers)
                mark = time.perf_counter()
                messages = frame_path.messages(result, image.header, decoded.camera_info, publishers)
                fill = (time.perf_counter() - mark) * 1e3
                mark = time.perf_counter()
                for topic, msg in messages.items():
                    publishers[topic].publish(msg)
                publish = (time.perf_counter() - mark) * 1e3
                total = (time.perf_counter() - start) * 1e3
                if index < warmup:
                    continue
                frame = dict(result.timings, **decoded.timings, message_fill=fill, publish=publish,
                             end_to_end=total, non_model=total - result.timings['inference'])
                for key, value in frame.items():
                    samples[name].setdefault(key, []).append(value)
        for name, frame_path in frame_paths.items():
            frame_path.pipeline.params = frame_path.pipeline.params.replace(resize_interpolation='linear')
            for _ in range(frames):
                start = time.perf_counter()
                frame_path.pipeline.preprocess(decoded.rgb)
                samples[name].setdefault('resize_linear', []).append((time.perf_counter() - start) * 1e3)
    finally:
        sink.terminate()
        try:
            sink.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # stuck in Fast DDS on a loaded machine: never leave it behind
            sink.kill()
            sink.wait()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return samples


def run(model_path: str, frames: int) -> dict[str, dict[str, float]]:
    """Stage statistics of one model over ``frames`` frames (``stage_samples``)."""
    return {key: stats(values) for key, values in stage_samples({'model': model_path}, frames)['model'].items()}


def _drive_node(model_path: str, frames: int, rate_hz: float, topics: tuple[str, ...], history: int, *,
                env: dict[str, str] | None = None, warmup: int = 5) -> dict:
    """Run the real node (a subprocess) and play a 640x480 bgr8 camera into it; record what comes back.

    Input reliable (input_reliable true) so that no 0.9 MB frame is lost; the bench process subscribes reliably
    (history ``history``) to ``topics``, so the node computes and publishes those. ``env``: extra environment of
    the node process. Returns ``{'sent': {stamp: time}, 'received': {topic: {stamp: time}}, 'latency_ms':
    {topic: [camera publish -> receipt of each frame received]}, 'node_latency_p50_ms'}`` (the node's own
    receive-to-publish latency, from its last /diagnostics); times from time.monotonic(), the first ``warmup``
    frames left out.
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from depth_kd_ros.node.mono_depth_node import OUTPUT_CLASSES

    domain_id = 200 + (os.getpid() + 7) % 30
    data, camera = camera_frame()
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as params:
        params.write(f'mono_depth_node:\n  ros__parameters:\n    model_path: {model_path}\n'
                     f'    num_threads: {THREADS}\n    input_reliable: true\n    diagnostics_period: 0.5\n')
    node_process = subprocess.Popen([sys.executable, '-m', 'depth_kd_ros.node.process', '--ros-args',
                                     '--params-file', params.name],
                                    env=dict(os.environ, ROS_DOMAIN_ID=str(domain_id), **(env or {})))
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    client = rclpy.create_node('bench_camera', context=context)
    qos = QoSProfile(depth=history, reliability=ReliabilityPolicy.RELIABLE)
    received: dict[str, dict[int, float]] = {topic: {} for topic in topics}
    for topic in topics:
        client.create_subscription(OUTPUT_CLASSES[topic], topic, lambda m, t=topic: received[t].setdefault(
            m.header.stamp.sec, time.monotonic()), qos)
    diagnostics: list[dict[str, str]] = []
    client.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.append(
        {kv.key: kv.value for kv in m.status[0].values}), 10)
    pub_image = client.create_publisher(Image, 'image', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    pub_info = client.create_publisher(CameraInfo, 'camera_info', qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    sent: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not (pub_image.get_subscription_count()
                                                   and pub_info.get_subscription_count()
                                                   and all(client.count_publishers(t) for t in topics)):
            time.sleep(0.1)
        info = fill_camera_info(CameraInfo(), camera)
        for stamp in range(1, frames + warmup + 1):
            pub_info.publish(info)
            msg = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3, data=data)
            msg.header.stamp.sec, msg.header.frame_id = stamp, 'camera_optical_frame'
            sent[stamp] = time.monotonic()
            pub_image.publish(msg)
            time.sleep(1.0 / rate_hz)
        time.sleep(4.0)  # past Fast DDS's default 3 s heartbeat: late repairs arrive, lost ones do not
    finally:
        executor.shutdown()
        thread.join(timeout=5.0)
        client.destroy_node()
        rclpy.try_shutdown(context=context)
        node_process.terminate()
        node_process.wait(timeout=30.0)
        os.unlink(params.name)
    sent = {s: t for s, t in sent.items() if s > warmup}
    received = {topic: {s: t for s, t in times.items() if s in sent} for topic, times in received.items()}
    return {'sent': sent, 'received': received,
            'latency_ms': {topic: [(t - sent[s]) * 1e3 for s, t in sorted(times.items())]
                           for topic, times in received.items()},
            'node_latency_p50_ms': float(diagnostics[-1]['latency_p50_ms']) if diagnostics
            and 'latency_p50_ms' in diagnostics[-1] else None}


def node_latency(model_path: str, frames: int = 30, rate_hz: float = 4.0) -> dict:
    """Camera-publish -> depth-receive latency through the real node at 640x480, depth, depth/colored, points
    and depth/camera_info subscribed (history 1)."""
    run = _drive_node(model_path, frames, rate_hz, ('depth', 'depth/colored', 'points', 'depth/camera_info'), 1)
    latencies, answered = run['latency_ms']['depth'], sorted(run['received']['depth'].values())
    return {'frames_sent': frames, 'frames_answered': len(latencies), 'rate_hz': rate_hz,
            'answered_rate_hz': round((len(answered) - 1) / (answered[-1] - answered[0]), 2)
            if len(answered) > 1 else 0.0, **(stats(latencies) if latencies else {})}


def delivery_all_outputs(model_path: str, frames: int = 30, rate_hz: float = 2.0) -> dict:
    """Every output subscribed by reliable subscribers (history 5, as rviz's displays): per output, frames
    delivered and camera-publish -> receipt latency p50/p99/max, and the node's own latency (/diagnostics).

    Twice: with the node's default Fast DDS profile (config/fastdds_large_outputs.xml, which mono_depth_node
    applies to itself) and with Fast DDS's own defaults (an empty profile file), with which 2-3 of 12 depth
    messages arrived 1.8-3.3 s late on a busy machine.
    """
    topics = OUTPUT_TOPICS
    result = {'frames': frames, 'rate_hz': rate_hz, 'subscriber_history': 5}
    with tempfile.NamedTemporaryFile('w', suffix='.xml', delete=False) as empty:  # one profile, not a default one
        empty.write('<?xml version="1.0" encoding="UTF-8"?>\n<profiles xmlns="http://www.eprosima.com/XMLSchemas/'
                    'fastRTPS_Profiles">\n  <participant profile_name="unused"><rtps/></participant>\n</profiles>\n')
    try:
        for name, env in (('node_default', {}), ('fastdds_defaults', {'FASTRTPS_DEFAULT_PROFILES_FILE': empty.name})):
            run = _drive_node(model_path, frames, rate_hz, topics, 5, env=env)
            everything = [ms for values in run['latency_ms'].values() for ms in values]
            per_output = {t: {'delivered': len(v), **_tail(v)} for t, v in run['latency_ms'].items()}
            result[name] = {'node_latency_p50_ms': run['node_latency_p50_ms'], 'outputs': per_output,
                            'all_outputs': {'delivered': len(everything), 'expected': len(topics) * frames,
                                            **_tail(everything)}}
    finally:
        os.unlink(empty.name)
    result['load_average_1min'] = os.getloadavg()[0]
    return result


def _tail(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    data = np.asarray(values)
    return {'p50_ms': round(float(np.median(data)), 1), 'p99_ms': round(float(np.percentile(data, 99)), 1),
            'max_ms': round(float(data.max()), 1)}


def camera_blocks(frames: int) -> dict[str, dict[str, float]]:
    """Per-frame cost at 640x480 of the robot-camera blocks beside the model, each alone:
    rectify (plumb_bob, maps cached: one cv2.remap of the RGB frame; rectify_map_build is the one-off per
    calibration), ground_fit (GroundPlaneScale.update on a floor + wall depth) and depth_16uc1 (depth_to_millimetres).
    OpenCV threads as the node's default opencv_threads.
    """
    import cv2

    from depth_kd_ros.camera.calibration import Calibration
    from depth_kd_ros.camera.rectify import Rectifier, build_maps
    from depth_kd_ros.ground_plane import GroundPlaneScale
    from depth_kd_ros.io.depth_encoding import depth_to_millimetres

    data, camera = camera_frame()
    rgb = np.frombuffer(data, np.uint8).reshape(HEIGHT, WIDTH, 3)
    info = Calibration(WIDTH, HEIGHT, 'plumb_bob', (-0.28, 0.07, 0.001, -0.0005, 0.0),
                       tuple(camera.K.reshape(-1)),
                       (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                       (camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0))
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None] - camera.cy
    with np.errstate(divide='ignore'):  # a level camera 0.6 m above a floor, a wall at 6 m
        depth = np.broadcast_to(np.where(rows > 0, 0.6 * camera.fy / rows, np.inf), (HEIGHT, WIDTH))
    depth = np.minimum(depth, np.float32(6.0)).astype(np.float32) * np.float32(1.3)  # a model 1.3x too far
    cv2.setNumThreads(NodeParams.opencv_threads or -1)
    rectifier, scale = Rectifier(), GroundPlaneScale(0.6)
    stages = {'rectify_map_build': lambda: build_maps(info), 'rectify': lambda: rectifier.rectify(rgb, info),
              'ground_fit': lambda: scale.update(depth, camera), 'depth_16uc1': lambda: depth_to_millimetres(depth)}
    samples: dict[str, list[float]] = {}
    for name, stage in stages.items():
        for index in range(frames + 3):
            start = time.perf_counter()
            stage()
            if index >= 3:  # warm-up (the first rectify builds the maps)
                samples.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
    assert rectifier.maps_built == 1 and abs(scale.factor * 1.3 - 1.0) < 0.01
    return {name: stats(values) for name, values in samples.items()}


def summarize(stages: dict[str, dict[str, float]]) -> dict:
    non_model = stages['non_model']['p50_ms']
    return {
        'stages': stages,
        # estimate, not a paired measurement: the linear resize replaces the area resize in the p50
        'non_model_p50_ms_with_linear_resize_estimate':
            round(non_model - stages['resize']['p50_ms'] + stages['resize_linear']['p50_ms'], 3),
        'non_model_sum_of_stage_p50_ms': round(sum(v['p50_ms'] for k, v in stages.items() if k not in
                                                   ('inference', 'end_to_end', 'non_model', 'resize_linear')), 3),
    }


def measure_transport(model_path: str, frames: int) -> dict:
    """Stage statistics and the node's end-to-end latency with the Fast DDS settings of this process's environment."""
    return dict(summarize(run(model_path, frames)), node_end_to_end=node_latency(model_path))


def goal_verdict(runs: dict) -> dict:
    """The node's goal per transport: non_model p50 against GOAL_MS, met or missed by how much."""
    verdict = {}
    for transport, summary in runs.items():
        p50 = summary['stages']['non_model']['p50_ms']
        verdict[transport] = {'non_model_p50_ms': p50, 'met': p50 <= GOAL_MS,
                              'missed_by_ms': round(max(0.0, p50 - GOAL_MS), 3)}
    return {'non_model_p50_ms_at_most': GOAL_MS, 'image': [HEIGHT, WIDTH], 'per_transport': verdict}


def in_transport(transport: str, function, *args):
    """``function(*args)`` in a fresh process whose Fast DDS uses ``transport`` (one of TRANSPORTS).

    A fresh process per transport: Fast DDS reads these variables when a participant is created and loads its XML
    profiles once per process, so a profile loaded for node_profile would also apply to later runs (LARGE_DATA then
    matches no one).
    """
    from depth_kd_ros.node.process import FASTDDS_PROFILE

    names = ('FASTDDS_BUILTIN_TRANSPORTS', 'FASTRTPS_DEFAULT_PROFILES_FILE')
    for name in names:
        os.environ.pop(name, None)
    if transport == 'node_profile':
        os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = str(ROOT / FASTDDS_PROFILE)
    elif transport != 'default':
        os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = transport
    try:
        with multiprocessing.get_context('spawn').Pool(1) as pool:
            return pool.apply(function, args)
    finally:
        for name in names:
            os.environ.pop(name, None)


PARTS = ('stages', 'overload', 'delivery', 'camera_blocks')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--model', help='bench this contract ONNX model instead of exporting the student')
    parser.add_argument('--output', default=str(ROOT / 'bench' / 'results' / 'node.json'))
    parser.add_argument('--only', nargs='+', choices=PARTS, help='measure only these parts and update them in '
                        '--output, keeping the others: stages (per-stage cost and node end to end per Fast DDS '
                        'transport), overload (camera faster than the node), delivery (every output subscribed), '
                        'camera_blocks (rectify, ground fit, 16UC1 alone; no model needed)')
    args = parser.parse_args()
    parts = args.only or PARTS
    output = Path(args.output)
    result = json.loads(output.read_text()) if args.only and output.is_file() else {}
    if 'camera_blocks' in parts:
        result['camera_blocks'] = camera_blocks(args.frames)
    with tempfile.TemporaryDirectory() as directory:
        if set(parts) - {'camera_blocks'}:
            model, description = (args.model, f'given: {args.model}') if args.model else export_student(directory)
            result['model'] = description
        if 'stages' in parts:
            load_before = os.getloadavg()[0]
            runs = {transport: in_transport(transport, measure_transport, model, args.frames)
                    for transport in TRANSPORTS}
            result.update({'frames': args.frames, 'fastdds_transports': runs, 'goal': goal_verdict(runs),
                           'load_average_1min': os.getloadavg()[0], 'load_average_1min_before': load_before})
        if 'overload' in parts:
            result['node_overload'] = node_latency(model, frames=4 * int(OVERLOAD_HZ), rate_hz=OVERLOAD_HZ)
        if 'delivery' in parts:
            result['delivery_all_outputs'] = dict(delivery_all_outputs(model), model=description)
    result.update({
        'benchmark': 'mono_depth_node per-frame stages, 640x480 bgr8 input, ONNX Runtime CPU',
        'model_input': list(MODEL_SIZE), 'image': [HEIGHT, WIDTH],
        'ort_threads': THREADS, 'params': 'config/mono_depth.yaml defaults '
        '(points_stride 2, organised cloud, colored preview on)',
        'note': 'shared 2-core machine: p90 and the per-frame non_model include scheduler stalls of other '
                'processes; min_ms shows the unloaded cost of each stage',
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version()},
    })
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + '\n')
    for transport, summary in result['fastdds_transports'].items() if 'stages' in parts else ():
        print(transport, json.dumps({k: v['p50_ms'] for k, v in summary['stages'].items()}))
        print('  node end-to-end', json.dumps(summary['node_end_to_end']))
        print(f'  non-model p50 {summary["stages"]["non_model"]["p50_ms"]:.2f} ms (goal <= {GOAL_MS} ms: '
              f'{"met" if result["goal"]["per_transport"][transport]["met"] else "missed"}); '
              f'with linear resize ~{summary["non_model_p50_ms_with_linear_resize_estimate"]:.2f} ms')
    if 'overload' in parts:
        print(f'node under overload (camera {OVERLOAD_HZ:.0f} Hz)', json.dumps(result['node_overload']))
    if 'camera_blocks' in parts:
        print('camera blocks (ms, p50/min)', json.dumps({k: [v['p50_ms'], v['min_ms']]
                                                        for k, v in result['camera_blocks'].items()}))
    if 'delivery' in parts:
        delivery = result['delivery_all_outputs']
        for name in ('node_default', 'fastdds_defaults'):
            print(f'every output subscribed, {name}:', json.dumps(delivery[name]['all_outputs']),
                  f"node's own latency p50 {delivery[name]['node_latency_p50_ms']} ms")
    return 0


if __name__ == '__main__':
    sys.exit(main())
