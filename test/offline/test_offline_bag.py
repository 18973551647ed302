"""`mono_depth_offline bag` on real rosbag2 files (sqlite3 and MCAP) written here with rosbags."""
from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from offline_helpers import (
    RECEIVE_DELAY,
    assert_clean_error,
    load_real,
    read_bag,
    run,
    stamp_of,
    synthetic_frames,
    write_bag,
)

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.io.bagio import BagWriter
from depth_kd_ros.offline.run import default_params_file
from depth_kd_ros.params import load_params_file
from depth_kd_ros.pipeline import DepthPipeline, load_pipeline

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {'/camera/depth': 'sensor_msgs/msg/Image', '/camera/depth/camera_info': 'sensor_msgs/msg/CameraInfo',
           '/camera/points': 'sensor_msgs/msg/PointCloud2', '/camera/depth/uncertainty': 'sensor_msgs/msg/Image'}


def image_array(message) -> np.ndarray:
    assert message.encoding == '32FC1' and message.step == 4 * message.width
    return np.frombuffer(message.data.tobytes(), np.float32).reshape(message.height, message.width)


def reference_pipeline(model_path: Path):
    """The live node's pipeline with the same params file and model the tool uses."""
    params = load_params_file(str(default_params_file())).replace(model_path=str(model_path))
    return load_pipeline(params)


@pytest.mark.parametrize('case', [('kitti', 'sqlite3', False), ('kitti', 'mcap', True),
                                  ('nyu', 'sqlite3', True), ('nyu', 'mcap', False)],
                         ids=lambda c: f'{c[0]}-{c[1]}-{"compressed" if c[2] else "raw"}')
def test_real_frames_bag_matches_live_pipeline(tmp_path, model_path, case, capsys):
    """Every output frame carries the input's header and receive time and equals the node pipeline's depth."""
    dataset, storage, compressed = case
    frames = load_real(dataset)
    bag = write_bag(tmp_path / 'in', frames, storage=storage, compressed=compressed)
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and 'frames in: 3, written: 3, skipped: 0' in out
    storage_file = next((tmp_path / 'out').glob('*.db3' if storage == 'sqlite3' else '*.mcap'))
    assert storage_file.name.startswith('out')
    types, messages = read_bag(tmp_path / 'out')
    assert types == OUTPUTS
    assert all(len(m) == len(frames) for m in messages.values())
    pipeline = reference_pipeline(model_path)
    for i, frame in enumerate(frames):
        height, width = frame.rgb.shape[:2]
        for topic in OUTPUTS:
            timestamp, message = messages[topic][i]
            assert timestamp == stamp_of(i) + RECEIVE_DELAY
            assert message.header.stamp.sec * 10**9 + message.header.stamp.nanosec == stamp_of(i)
            assert message.header.frame_id == 'camera_optical_frame'
        expected = pipeline.process(frame.rgb, CameraModel.from_k(frame.k, width, height))
        depth = image_array(messages['/camera/depth'][i][1])
        assert depth.shape == (height, width)
        np.testing.assert_array_equal(depth, expected.depth)
        np.testing.assert_array_equal(image_array(messages['/camera/depth/uncertainty'][i][1]), expected.depth_std)
        cloud = messages['/camera/points'][i][1]
        assert (cloud.height, cloud.width, cloud.point_step) == (expected.cloud.height, expected.cloud.width, 12)
        np.testing.assert_array_equal(cloud.data, expected.cloud.data)
        info = messages['/camera/depth/camera_info'][i][1]
        np.testing.assert_allclose(info.k, frame.k)
        assert (info.width, info.height) == (width, height)


def test_console_script_on_mcap_copies_inputs(tmp_path, model_path):
    """The installed console script runs (argv list, no shell) and --copy-inputs keeps the input topics."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(3), storage='mcap', compressed=True)
    script = Path(sys.executable).with_name('mono_depth_offline')
    result = subprocess.run([str(script), 'bag', str(bag), str(tmp_path / 'out'), '--model', str(model_path),
                             '--copy-inputs'], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert 'frames in: 3, written: 3' in result.stdout
    types, messages = read_bag(tmp_path / 'out')
    assert types == {**OUTPUTS, '/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                     '/camera/camera_info': 'sensor_msgs/msg/CameraInfo'}
    assert [t for t, _ in messages['/camera/image_raw/compressed']] == [t for t, _ in messages['/camera/depth']]


def test_camera_info_pairing_latest_at_or_before(tmp_path, model_path, capsys):
    """camera_info stamped after its image pairs with the next image; the first image has none: skipped."""
    frames = synthetic_frames(3)
    frames[1].k = frames[0].k[:2] + (30.0,) + frames[0].k[3:]  # each camera_info distinguishable by cx
    bag = write_bag(tmp_path / 'in', frames, info_delay=1000)
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0
    assert 'skipped 1 (no camera_info at or before the image stamp): #0' in out
    _, messages = read_bag(tmp_path / 'out')
    infos = [m for _, m in messages['/camera/depth/camera_info']]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in infos] == [stamp_of(1), stamp_of(2)]
    assert [m.k[2] for m in infos] == [frames[0].k[2], frames[1].k[2]]


def test_bag_without_camera_info_gives_depth_only(tmp_path, model_path, capsys):
    """No camera_info topic: depth (and uncertainty) at the model's own scale, no points, said in the summary."""
    frames = synthetic_frames(2)
    bag = write_bag(tmp_path / 'in', frames, info_topic=None, topic='/image')
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and 'depth only' in out
    types, messages = read_bag(tmp_path / 'out')
    assert types == {'/depth': 'sensor_msgs/msg/Image', '/depth/uncertainty': 'sensor_msgs/msg/Image'}
    expected = reference_pipeline(model_path).process(frames[1].rgb, None).depth
    np.testing.assert_array_equal(image_array(messages['/depth'][1][1]), expected)


def test_camera_info_not_beside_the_image_is_named(tmp_path, model_path, capsys):
    """When the only CameraInfo topic is not the image's sibling (maybe another camera of the same size) the
    summary says which topic gave the intrinsics; it used to be paired silently."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(1), info_topic='/other/camera_info')
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0
    assert 'camera_info from /other/camera_info' in out and '--camera-info-topic' in out
    bag = write_bag(tmp_path / 'in2', synthetic_frames(1))
    code, out, _ = run('bag', bag, tmp_path / 'out2', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and 'camera_info from' not in out


@pytest.mark.parametrize('image_format', ['png', 'jpeg'])
def test_corrupt_compressed_frame_is_skipped_and_named(tmp_path, model_path, capsys, image_format):
    """A truncated PNG or JPEG inside the bag is counted and named; the other frames are written. (OpenCV 4.5
    and 4.6 decode the truncated JPEG to a partly grey image, which used to be written as a frame.)"""
    bag = write_bag(tmp_path / 'in', synthetic_frames(4), storage='mcap', compressed=True, corrupt=(2,),
                    image_format=image_format)
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0
    assert 'frames in: 4, written: 3, skipped: 1' in out
    assert f'(undecodable image (corrupt_compressed)): #2 (stamp {stamp_of(2) // 10**9}.' in out
    _, messages = read_bag(tmp_path / 'out')
    assert [t for t, _ in messages['/camera/depth']] == [stamp_of(i) + RECEIVE_DELAY for i in (0, 1, 3)]


def truncate(bag: Path, fraction: float) -> None:
    storage = next(p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap'))
    data = storage.read_bytes()
    storage.write_bytes(data[:int(len(data) * fraction)])


@pytest.mark.parametrize('make', ['text_file', 'empty_dir', 'junk_mcap', 'junk_db3', 'missing'])
def test_not_a_bag(tmp_path, model_path, capsys, make):
    """Paths that are not rosbag2 files give one clear line, not a rosbags traceback."""
    target = {'text_file': tmp_path / 'notes.txt', 'empty_dir': tmp_path / 'empty',
              'junk_mcap': tmp_path / 'x.mcap', 'junk_db3': tmp_path / 'x.db3', 'missing': tmp_path / 'nope'}[make]
    if make == 'empty_dir':
        target.mkdir()
    elif make != 'missing':
        target.write_bytes(b'not a bag\n' * 100)
    code, _, err = run('bag', target, tmp_path / 'out', '--model', model_path, capsys=capsys)
    assert_clean_error(code, err, str(target))
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('storage,fraction', [('sqlite3', 0.5), ('sqlite3', 0.99), ('mcap', 0.6)])
def test_truncated_bag_leaves_no_output(tmp_path, model_path, capsys, storage, fraction):
    """A bag cut short (copy interrupted) is an error, and no partial output bag or temp dir remains."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(8), storage=storage)
    truncate(bag, fraction)
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert_clean_error(code, err, 'in')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']


def test_missing_topic_lists_image_topics(tmp_path, model_path, capsys):
    """Asking for an absent topic names the image topics the bag does have."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(1), extra={'/left/image_raw': 'sensor_msgs/msg/Image'})
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--image-topic', '/right/image_raw',
                       capsys=capsys)
    assert_clean_error(code, err, '/right/image_raw', '/camera/image_raw', '/left/image_raw')


def test_several_image_topics_need_a_choice(tmp_path, model_path, capsys):
    """With two image topics and no --image-topic the tool refuses to guess and lists both."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(1), extra={'/left/image_raw': 'sensor_msgs/msg/Image'})
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, capsys=capsys)
    assert_clean_error(code, err, '--image-topic', '/camera/image_raw', '/left/image_raw')


@pytest.mark.parametrize('option,topic', [('--image-topic', '/camera/camera_info'),
                                          ('--camera-info-topic', '/camera/image_raw')])
def test_topic_of_wrong_type(tmp_path, model_path, capsys, option, topic):
    """A topic of the wrong message type is named with its actual type."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(1))
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, option, topic, capsys=capsys)
    assert_clean_error(code, err, topic, 'sensor_msgs/msg/')


def test_existing_output_refused_unless_overwrite(tmp_path, model_path, capsys):
    """An existing OUTPUT is kept unless --overwrite; with it, it is replaced by a complete bag."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(2))
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'keep.txt').write_text('user data')
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, capsys=capsys)
    assert_clean_error(code, err, '--overwrite')
    assert (tmp_path / 'out' / 'keep.txt').exists()
    code, _, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--overwrite', '--quiet', capsys=capsys)
    assert code == 0
    assert not (tmp_path / 'out' / 'keep.txt').exists()
    assert len(read_bag(tmp_path / 'out')[1]['/camera/depth']) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in', 'out']


def test_overwrite_never_replaces_a_folder_holding_the_input(tmp_path, model_path, capsys):
    """`bag bags/run1 bags --overwrite` (a slip of the output path) is refused: the input stays.

    The output used to be replaced by the new bag, deleting run1 itself and every other bag beside it.
    """
    bag = write_bag(tmp_path / 'bags' / 'run1', synthetic_frames(1))
    other = write_bag(tmp_path / 'bags' / 'run2', synthetic_frames(1))
    code, _, err = run('bag', bag, tmp_path / 'bags', '--model', model_path, '--overwrite', '--quiet',
                       capsys=capsys)
    assert_clean_error(code, err, str(tmp_path / 'bags'), 'run1')
    assert (bag / 'metadata.yaml').is_file() and (other / 'metadata.yaml').is_file()
    assert sorted(p.name for p in (tmp_path / 'bags').iterdir()) == ['run1', 'run2']


def test_all_frames_corrupt_writes_nothing(tmp_path, model_path, capsys):
    """When no frame decodes, the run fails instead of leaving an empty bag that looks complete."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(2), compressed=True, corrupt=(0, 1))
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert_clean_error(code, err, 'no frame')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']


def test_params_file_is_honoured(tmp_path, model_path, capsys):
    """--params-file reaches the node pipeline: points_stride 4 gives a cloud of ceil(W/4) x ceil(H/4)."""
    params = tmp_path / 'params.yaml'
    params.write_text(default_params_file().read_text().replace('points_stride: 2', 'points_stride: 4'))
    bag = write_bag(tmp_path / 'in', synthetic_frames(1, height=61, width=82))
    code, _, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--params-file', params, '--quiet',
                     capsys=capsys)
    assert code == 0
    cloud = read_bag(tmp_path / 'out')[1]['/camera/points'][0][1]
    assert (cloud.height, cloud.width) == (16, 21)


@pytest.mark.parametrize('problem', ['bad_params', 'missing_model', 'not_a_model'])
def test_bad_params_or_model_is_a_clean_error(tmp_path, model_path, capsys, problem):
    """A wrong parameter, a missing or non-ONNX model file: one line naming it, no output."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(1))
    params = tmp_path / 'params.yaml'
    params.write_text(default_params_file().read_text().replace('points_stride: 2', 'points_stride: 0'))
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not onnx')
    argv = {'bad_params': ['--model', model_path, '--params-file', params],
            'missing_model': ['--model', tmp_path / 'nope.onnx'],
            'not_a_model': ['--model', junk]}[problem]
    needle = {'bad_params': 'points_stride', 'missing_model': 'nope.onnx', 'not_a_model': 'junk.onnx'}[problem]
    code, _, err = run('bag', bag, tmp_path / 'out', *argv, capsys=capsys)
    assert_clean_error(code, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in', 'junk.onnx', 'params.yaml']


def _fail_on_call(original, number: int, error: BaseException):
    """``original`` wrapped to raise ``error`` on its ``number``-th call (1-based)."""
    calls = itertools.count(1)

    def wrapped(*args, **kwargs):
        if next(calls) == number:
            raise error
        return original(*args, **kwargs)
    return wrapped


def test_a_failure_in_the_inference_thread_reaches_the_caller_and_leaves_no_output(tmp_path, model_path,
                                                                                   monkeypatch, capsys):
    """An unexpected exception on the inference thread (a bug, not bad input) is raised by the command itself,
    with its own type and message, instead of hanging or being lost; no output, no thread left behind."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(4))
    monkeypatch.setattr(DepthPipeline, 'infer', _fail_on_call(DepthPipeline.infer, 3, RuntimeError('bug on frame 3')))
    with pytest.raises(RuntimeError, match='bug on frame 3'):
        run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']
    assert not [t for t in threading.enumerate() if t.name.startswith('overlapped-')]


def test_ctrl_c_while_writing_stops_cleanly(tmp_path, model_path, monkeypatch, capsys):
    """Ctrl-C (KeyboardInterrupt on the main thread, which writes) mid-bag: exit 130, nothing written, the reader
    and inference threads stopped."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(6))
    monkeypatch.setattr(BagWriter, 'write', _fail_on_call(BagWriter.write, 6, KeyboardInterrupt()))
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 130 and 'interrupted; nothing written' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']
    assert not [t for t in threading.enumerate() if t.name.startswith('overlapped-')]


def _file_size_limit(limit: int):
    """preexec_fn: files this process writes stop growing at ``limit`` bytes (write fails with EFBIG, as a full disk
    fails with ENOSPC), without SIGXFSZ killing it."""
    def apply():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_output_that_cannot_grow_is_one_clear_error_and_leaves_nothing(tmp_path, model_path, storage):
    """A full disk (here a file-size limit: the same failing write): exit 2 with one error line and no output. The
    sqlite3 storage raised sqlite3.OperationalError ('database or disk is full', 'disk I/O error'), not an OSError:
    a traceback and exit 1."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(8), storage=storage)
    script = Path(sys.executable).with_name('mono_depth_offline')
    result = subprocess.run([str(script), 'bag', str(bag), str(tmp_path / 'out'), '--model', str(model_path),
                             '--quiet'], capture_output=True, text=True, check=False, cwd=ROOT,
                            preexec_fn=_file_size_limit(64_000))
    assert_clean_error(result.returncode, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']
