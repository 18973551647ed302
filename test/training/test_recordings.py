"""The recordings dataset: training on the robot's own rosbag2 recordings and image folders.

Recordings are written by scripts/synthetic_recording.py (rosbags; sqlite3 and MCAP; depth 16UC1 and
compressedDepth; camera_info) from the synthetic generator, at 48x64; the model input is 32x64.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_teachers import write_tiny_teacher

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.model_file import read_model_info
from disdepth.build import build_labeller, build_teacher
from disdepth.checkpoint import save_checkpoint
from disdepth.config import config_from_dict, config_to_dict
from disdepth.data import build_dataset, recording_cache

ROOT = Path(__file__).resolve().parents[2]
RGB_TOPIC, INFO_TOPIC = '/camera/color/image_raw', '/camera/color/camera_info'
DEPTH_16UC1 = '/camera/aligned_depth_to_color/image_raw'
COMPRESSED_DEPTH = DEPTH_16UC1 + '/compressedDepth'
FRAMES, HEIGHT, WIDTH = 16, 48, 64


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _load(ROOT / 'scripts' / 'synthetic_recording.py', 'synthetic_recording')
DISTILL = _load(ROOT / 'training' / 'distill.py', 'distill_script')
EVALUATE = _load(ROOT / 'training' / 'evaluate.py', 'evaluate_script')
EXPORT = _load(ROOT / 'training' / 'export.py', 'export_script')


def record(path: Path, **options) -> Path:
    return SCRIPT.write_recording(path, **{'frames': FRAMES, 'height': HEIGHT, 'width': WIDTH, **options})


@pytest.fixture(scope='module')
def bags(tmp_path_factory) -> dict[str, Path]:
    """sqlite3 with raw colour and 16UC1 depth; MCAP with JPEG colour and compressedDepth; an image folder of
    another camera (60x80)."""
    root = tmp_path_factory.mktemp('recordings')
    return {'sqlite3': record(root / 'walk_sqlite3', depth=('16UC1',)),
            'mcap': record(root / 'walk_mcap', storage='mcap', depth=('compressedDepth',), compressed_rgb=True),
            'folder': record(root / 'walk_folder', storage='folder', height=60, width=80)}


@pytest.fixture(scope='module')
def teacher_checkpoint(tmp_path_factory) -> Path:
    """A small-teacher checkpoint (random weights: a frozen function is all the pseudo-label tests need)."""
    cfg = config_from_dict({'task': 'teacher', 'model': {'max_depth': 10.0},
                            'teacher': {'hidden_size': 32, 'num_heads': 2, 'neck_channels': 16}})
    teacher = build_teacher(cfg.teacher, cfg.model)
    folder = tmp_path_factory.mktemp('teacher')
    return save_checkpoint(folder, 'teacher', {'model': teacher.state_dict()},
                           {'config': config_to_dict(cfg), 'task': 'teacher'})


def data_cfg(tmp_path: Path, recordings, teacher: Path | None = None, **data):
    """The tiny run's config on ``recordings`` (depth_topic from ``data``, else none: pseudo-labels)."""
    return config_from_dict({
        'model': {'lgconv': {'enabled': False}, 'decoder_channels': [16, 16, 8, 8], 'num_bins': 8, 'max_depth': 10.0},
        'teacher': {'kind': 'small', 'path': str(teacher) if teacher else None},
        'distill': {'warmup_epochs': 0.0},
        'data': {'dataset': 'recordings', 'recordings': [str(r) for r in recordings], 'image_topic': RGB_TOPIC,
                 'height': 32, 'width': 64, 'eval_height': 32, 'eval_width': 64, 'max_depth': 10.0,
                 'batch_size': 2, 'augment': False, 'cache_dir': str(tmp_path / 'cache'), **data},
        'trainer': {'max_steps': 2, 'log_every': 1, 'val_every': 100, 'ckpt_every': 2, 'preview_every': 100,
                    'device': 'cpu', 'progress': False}})


def config_file(cfg, tmp_path: Path, output: Path) -> Path:
    cfg.output_dir = str(output)
    path = tmp_path / f'{output.name}.yaml'
    path.write_text(json.dumps(config_to_dict(cfg)))
    return path


def distill(*argv) -> int:
    torch.manual_seed(0)
    return DISTILL.cli([str(a) for a in argv])


def test_depth_topic_run_trains_evaluates_exports_the_focal_and_refuses_resume_on_a_changed_bag(
        tmp_path, bags, teacher_checkpoint, capsys):
    """Ground truth from the 16UC1 topic: a few steps, held-out metrics against the depth topic, the exported
    focal_length is the bag's camera_info P at the model input (the node's focal scale is 1 on that camera),
    and --resume after the bag was re-recorded stops with one line naming it."""
    bag = shutil.copytree(bags['sqlite3'], tmp_path / 'bag')
    cfg = data_cfg(tmp_path, [bag], teacher_checkpoint, depth_topic=DEPTH_16UC1)
    config = config_file(cfg, tmp_path, tmp_path / 'run')
    assert distill('--config', config) == 0
    run = tmp_path / 'run'
    assert (run / 'checkpoints' / 'last.pt').is_file()

    assert EVALUATE.main(['--config', str(run / 'config.yaml'), '--checkpoint', str(run / 'checkpoints/last.pt')]) == 0
    metrics = json.loads((run / 'metrics.json').read_text())
    assert metrics['reference'] == 'depth_topic' and DEPTH_16UC1 in metrics['reference_source']
    assert metrics['num_without_ground_truth'] == 0 and metrics['num_images'] >= 1

    assert EXPORT.main(['--checkpoint', str(run / 'checkpoints/last.pt'), '--output', str(tmp_path / 'm.onnx')]) == 0
    info = read_model_info(str(tmp_path / 'm.onnx'))
    K = SCRIPT.SyntheticScenes('indoor', HEIGHT, WIDTH).K
    camera = CameraModel.from_camera_info(K.reshape(-1), [K[0, 0], 0, K[0, 2], 0, 0, K[1, 1], K[1, 2], 0, 0, 0, 1, 0],
                                          WIDTH, HEIGHT)
    assert info.focal_length == pytest.approx(camera.focal_at(info.input_width, info.input_height), rel=1e-9)

    shutil.rmtree(bag)
    record(bag, depth=('16UC1',), seed=1)  # the same recording path, re-recorded
    capsys.readouterr()
    assert distill('--config', config, '--resume') == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1
    assert f'--resume refused: recording {bag} its content changed' in err


def test_pseudo_labels_are_the_teachers_depth_on_the_cached_frames(tmp_path, bags, teacher_checkpoint):
    """Without a depth topic the targets are the frozen teacher's depth on exactly the frames the student sees
    (MCAP, JPEG colour), training runs on them, and evaluation says it measures agreement with the teacher."""
    cfg = data_cfg(tmp_path, [bags['mcap']], teacher_checkpoint, image_topic=RGB_TOPIC + '/compressed')
    assert distill('--config', config_file(cfg, tmp_path, tmp_path / 'run')) == 0
    teacher = build_teacher(cfg.teacher, cfg.model).eval()
    for split in ('train', 'test'):
        dataset = build_dataset(cfg.data, split, labeller=build_labeller(cfg))
        images = torch.stack([dataset[i]['image'] for i in range(len(dataset))])
        with torch.no_grad():
            expected = teacher(images)['depth']
        targets = torch.stack([dataset[i]['depth'] for i in range(len(dataset))])
        torch.testing.assert_close(targets, expected, rtol=1e-5, atol=1e-5)
        assert dataset.evaluation_info['reference'] == 'teacher'


def test_held_out_frames_are_the_last_part_of_each_recording_after_selection(tmp_path, bags, teacher_checkpoint):
    """every_nth and min_gap_s thin the frames; the held-out ones are the latest of each recording (bags by
    receive time, folders by name), never interleaved with training frames. Frames of two cameras (48x64,
    60x80) are resized whole to the model input with their intrinsics scaled exactly."""
    cfg = data_cfg(tmp_path, [bags['sqlite3'], bags['folder']], teacher_checkpoint, depth_topic=DEPTH_16UC1,
                   every_nth=2, min_gap_s=0.35, test_fraction=0.3)
    train, test = (build_dataset(cfg.data, split) for split in ('train', 'test'))
    bag_train, folder_train = (cfg_frames(train, 'train', n) for n in (0, 1))
    bag_test, folder_test = (cfg_frames(train, 'test', n) for n in (0, 1))
    # bag at 10 Hz: every 2nd frame is 0.2 s apart, min_gap 0.35 s keeps every 4th: #0 #4 #8 #12
    assert [f['name'].split()[0] for f in bag_train + bag_test] == ['#0', '#4', '#8', '#12']
    assert max(f['stamp_ns'] for f in bag_train) < min(f['stamp_ns'] for f in bag_test)
    # folder: no stamps, every 2nd file (8), the last round(0.3 * 8) = 2 held out
    assert [f['name'] for f in folder_test] == ['000012.png', '000014.png']
    assert len(folder_train) == 6
    assert len(train) == len(bag_train) + len(folder_train) and len(test) == len(bag_test) + len(folder_test)
    for item, size in ((train[0], (HEIGHT, WIDTH)), (train[len(train) - 1], (60, 80))):
        K = SCRIPT.SyntheticScenes('indoor', *size).K.astype(np.float64)
        sx, sy = 64 / size[1], 32 / size[0]
        expected = [[K[0, 0] * sx, 0, sx * (K[0, 2] + 0.5) - 0.5],  # transforms.resize: pixel centres
                    [0, K[1, 1] * sy, sy * (K[1, 2] + 0.5) - 0.5], [0, 0, 1]]
        np.testing.assert_allclose(item['K'].numpy(), expected, rtol=1e-6)
        assert item['image'].shape == (3, 32, 64)


def cfg_frames(dataset, split: str, number: int) -> list[dict]:
    return dataset.recordings[number].frames(split)


def test_frames_are_decoded_once_then_read_from_the_cache_until_the_recording_changes(tmp_path, bags, monkeypatch):
    """A second dataset (a later epoch or run) reads no bag; a re-recorded bag has another key and is read again."""
    bag = shutil.copytree(bags['sqlite3'], tmp_path / 'bag')
    cfg = data_cfg(tmp_path, [bag], depth_topic=DEPTH_16UC1)
    first = build_dataset(cfg.data, 'train')

    def no_reading(*args, **kwargs):
        raise AssertionError('the recording was read although it is cached')

    monkeypatch.setattr(recording_cache, 'read_recording', no_reading)
    second = build_dataset(cfg.data, 'train')
    for _ in range(2):  # two epochs
        for i in range(len(second)):
            torch.testing.assert_close(second[i]['depth'], first[i]['depth'])
    shutil.rmtree(bag)
    record(bag, depth=('16UC1',), seed=1)
    with pytest.raises(AssertionError, match='was read'):
        build_dataset(cfg.data, 'train')


def _mismatched_depth_folder(bags, tmp_path: Path) -> Path:
    folder = shutil.copytree(bags['folder'], tmp_path / 'folder')
    cv2.imwrite(str(folder / 'depth' / '000003.png'), np.ones((24, 32), np.uint16))
    return folder


def _bag_with_depth(path: Path, depth: np.ndarray, encoding: str) -> Path:
    """Two frames of colour (48x64), camera_info and ``depth`` as an Image of ``encoding`` on DEPTH_16UC1."""
    writer = SCRIPT.BagWriter(path, SCRIPT.STORAGES['sqlite3'])
    K = SCRIPT.SyntheticScenes('indoor', HEIGHT, WIDTH).K
    for i in range(2):
        stamp = SCRIPT.START_NS + i * 100_000_000
        writer.write(RGB_TOPIC, SCRIPT.image_message(stamp, np.zeros((HEIGHT, WIDTH, 3), np.uint8), 'rgb8'), stamp)
        writer.write(INFO_TOPIC, SCRIPT.camera_info_message(stamp, K, WIDTH, HEIGHT), stamp)
        writer.write(DEPTH_16UC1, SCRIPT.image_message(stamp, depth, encoding), stamp)
    writer.close()
    return path


#: each bad input of the issue -> a fragment of its one-line error
BAD_INPUTS = dict([
    ('missing image topic', 'topic /nope is not in the bag; its image topics: /camera/aligned_depth_to_color'),
    ('no camera_info', 'has no camera_info (sensor_msgs/CameraInfo) for /camera/color/image_raw: record '
                       '/camera/color/camera_info'),
    ('depth of another size', 'is 32x24 but the colour image is 64x48 at #0 (stamp 1700000000.000000000); the '
                              'depth must be registered'),
    ('depth of another size in a folder', '000003.png is 32x24, its image 80x60; depth must be registered'),
    ('unsupported depth encoding', "unsupported depth encoding '8UC1'"),
    ('no depth within the tolerance', 'without depth within data.depth_tolerance_s=0.001 s'),
    ('nothing left after selection', 'nothing left for evaluation after selection'),
    ('fewer training frames than a batch', '1 training images per process < data.batch_size 2'),
    ('relative teacher without depth', 'predicts relative depth, which cannot be a metric target; give the '
                                       "recording's depth as ground truth (data.depth_topic)"),
])


@pytest.mark.parametrize('case', BAD_INPUTS)
def test_bad_recordings_stop_with_one_line(tmp_path, bags, teacher_checkpoint, capsys, case):
    """Each bad input of the issue: exit status 2, one line naming the problem, no traceback, no checkpoint."""
    recording, data, teacher = bags['sqlite3'], {'depth_topic': DEPTH_16UC1}, teacher_checkpoint
    if case == 'missing image topic':
        data['image_topic'] = '/nope'
    elif case == 'no camera_info':
        recording = record(tmp_path / 'no_info', camera_info=False)
    elif case == 'depth of another size':
        recording = _bag_with_depth(tmp_path / 'small_depth', np.ones((24, 32), np.uint16), '16UC1')
    elif case == 'depth of another size in a folder':
        recording = _mismatched_depth_folder(bags, tmp_path)
    elif case == 'unsupported depth encoding':
        recording = _bag_with_depth(tmp_path / 'mono_depth', np.ones((HEIGHT, WIDTH), np.uint8), '8UC1')
    elif case == 'no depth within the tolerance':
        data['depth_tolerance_s'] = 0.001  # depth is stamped 2 ms after its colour frame
    elif case == 'nothing left after selection':
        data['every_nth'] = 100
    elif case == 'fewer training frames than a batch':  # kept #0 and #8; #8 is received after half the bag
        data.update(every_nth=8, test_fraction=0.5)
    else:
        data['depth_topic'] = None
        teacher = write_tiny_teacher(tmp_path, 'depth_anything')
    cfg = data_cfg(tmp_path, [recording], teacher, **data)
    if case == 'relative teacher without depth':
        cfg.teacher.kind, cfg.teacher.random_init = 'hf', True
    capsys.readouterr()
    assert distill('--config', config_file(cfg, tmp_path, tmp_path / 'run')) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith('distill.py: error: ') and BAD_INPUTS[case] in err, err
    assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_corrupt_frames_are_skipped_counted_and_named(tmp_path, capsys):
    """Truncated JPEGs are left out of the cache and named in the summary; the other frames train."""
    bag = record(tmp_path / 'corrupt', storage='mcap', compressed_rgb=True, depth=('16UC1',), corrupt=(3, 7))
    cfg = data_cfg(tmp_path, [bag], depth_topic=DEPTH_16UC1, image_topic=RGB_TOPIC + '/compressed')
    dataset = build_dataset(cfg.data, 'train')
    out = capsys.readouterr().out
    assert 'skipped 2 (undecodable image (corrupt_compressed)): #3 (stamp 1700000000.300000000), #7' in out
    names = [dataset[i]['name'] for i in range(len(dataset))]
    assert len(names) == len(set(names)) and not any('#3 ' in n or '#7 ' in n for n in names)


REAL_NYU = ROOT.parent / 'shared' / 'data' / 'real' / 'nyu'


def test_real_kinect_frames_keep_their_depth_and_holes(tmp_path):
    """A bag of the three real NYU frames (JPEG colour, 16UC1 Kinect depth with holes, 640x480): the cached
    depth is the PNG's millimetres / 1000 at the nearest source pixel, and holes stay invalid (mask false)."""
    if not REAL_NYU.is_dir():
        pytest.skip(f'real frames not found at {REAL_NYU} (../shared/data/real is outside the repository)')
    rgb_files, depth_files = sorted((REAL_NYU / 'rgb').iterdir()), sorted((REAL_NYU / 'depth').iterdir())
    K = np.array([[518.8579, 0, 325.58245], [0, 519.46961, 253.73617], [0, 0, 1]])
    writer = SCRIPT.BagWriter(tmp_path / 'nyu', SCRIPT.STORAGES['mcap'])
    for i, (rgb, depth) in enumerate(zip(rgb_files, depth_files, strict=True)):
        stamp = SCRIPT.START_NS + i * 100_000_000
        writer.write(RGB_TOPIC + '/compressed', SCRIPT.T[SCRIPT.COMPRESSED_IMAGE](
            header=SCRIPT.header(stamp), format='jpeg', data=np.fromfile(rgb, np.uint8)), stamp)
        writer.write(INFO_TOPIC, SCRIPT.camera_info_message(stamp, K, 640, 480), stamp)
        writer.write(DEPTH_16UC1, SCRIPT.image_message(stamp, cv2.imread(str(depth), cv2.IMREAD_UNCHANGED), '16UC1'),
                     stamp)
    writer.close()
    cfg = data_cfg(tmp_path, [tmp_path / 'nyu'], image_topic=RGB_TOPIC + '/compressed', depth_topic=DEPTH_16UC1,
                   test_fraction=0.5)
    train = build_dataset(cfg.data, 'train')
    item = train[0]
    millimetres = cv2.imread(str(depth_files[0]), cv2.IMREAD_UNCHANGED)
    expected = cv2.resize(millimetres, (64, 32), interpolation=cv2.INTER_NEAREST) / 1000.0
    np.testing.assert_allclose(item['depth'][0].numpy(), expected, rtol=1e-6)
    assert not item['mask'][0].numpy()[expected == 0].any() and item['mask'].any()
