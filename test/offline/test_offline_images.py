"""`mono_depth_offline images` on real NYU frames with their ground truth, and on bad folders."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from offline_helpers import NYU_K, REAL, assert_clean_error, camera_yaml, run

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.io.image_codec import decode_compressed
from depth_kd_ros.metrics import METRIC_KEYS, MetricAverager, compute_metrics
from depth_kd_ros.offline.run import default_params_file
from depth_kd_ros.params import NodeParams, load_params_file
from depth_kd_ros.pipeline import load_pipeline


@pytest.fixture
def nyu(tmp_path) -> tuple[Path, Path, Path]:
    """(rgb dir, gt dir, camera file) of the real NYU frames, renamed to shared stems (00000, ...)."""
    source = REAL / 'nyu'
    if not source.is_dir():
        pytest.skip(f'real NYU frames not found at {source} (../shared/data/real is outside the repository)')
    rgb, gt = tmp_path / 'rgb', tmp_path / 'gt'
    rgb.mkdir()
    gt.mkdir()
    for path in sorted((source / 'rgb').glob('rgb_*.jpg')):
        stem = path.stem.split('_')[-1]
        shutil.copy(path, rgb / f'{stem}.jpg')
        shutil.copy(source / 'depth' / f'sync_depth_{stem}.png', gt / f'{stem}.png')
    return rgb, gt, camera_yaml(tmp_path / 'camera.yaml')


def test_real_nyu_depth_ply_and_metrics(tmp_path, model_path, nyu, capsys):
    """Depth PNGs (mm), PLYs and metrics.json equal the node pipeline and the metrics module on the same arrays."""
    rgb_dir, gt_dir, camera_file = nyu
    code, out, _ = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--ply', '--gt-dir', gt_dir, '--gt-scale', 1000, '--quiet', capsys=capsys)
    assert code == 0 and 'frames in: 3, written: 3, skipped: 0' in out
    assert 'abs_rel' in out.splitlines()[-3] and out.splitlines()[-1].lstrip().startswith('synthetic')
    params = load_params_file(str(default_params_file())).replace(model_path=str(model_path), points_rgb=True)
    pipeline = load_pipeline(params)
    info = pipeline.info
    camera = CameraModel.from_k([NYU_K[0], 0, NYU_K[2], 0, NYU_K[1], NYU_K[3], 0, 0, 1], 640, 480)
    averager = MetricAverager()
    for image in sorted(rgb_dir.iterdir()):
        result = pipeline.process(decode_compressed(image.read_bytes()), camera, want_cloud=True)
        written = cv2.imread(str(tmp_path / 'out' / 'depth' / f'{image.stem}.png'), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint16 and written.shape == (480, 640)
        millimetres = np.rint(result.depth.astype(np.float64) * 1000)
        expected_mm = np.where(np.isfinite(millimetres), millimetres, 0).astype(np.uint16)
        np.testing.assert_array_equal(written, expected_mm)
        colored = cv2.imread(str(tmp_path / 'out' / 'colored' / f'{image.stem}.png'))
        assert colored.shape == (480, 640, 3)
        ply = (tmp_path / 'out' / 'points' / f'{image.stem}.ply').read_bytes()
        head, body = ply.split(b'end_header\n', 1)
        assert b'format binary_little_endian 1.0' in head
        vertices = np.frombuffer(body, dtype=[('xyz', '<f4', 3), ('rgb', 'u1', 3)])
        points = result.cloud.xyz().reshape(-1, 3)
        np.testing.assert_array_equal(vertices['xyz'], points[np.isfinite(points).all(axis=1)])
        gt = cv2.imread(str(gt_dir / f'{image.stem}.png'), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000
        mask = (gt > info.min_depth) & (gt <= info.max_depth)
        averager.update(compute_metrics(result.depth, gt, mask, info.min_depth, info.max_depth))
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert set(metrics) == {*METRIC_KEYS, 'num_images'}
    assert metrics == pytest.approx(averager.compute(), rel=1e-12)
    assert metrics['num_images'] == 3


def test_corrupt_image_in_folder_is_skipped_and_named(tmp_path, model_path, nyu, capsys):
    """A truncated JPEG is counted and named; the others are written and evaluated."""
    rgb_dir, gt_dir, camera_file = nyu
    broken = rgb_dir / '00050.jpg'
    broken.write_bytes(broken.read_bytes()[:2000])
    code, out, _ = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--gt-dir', gt_dir, '--gt-scale', 1000, '--quiet', capsys=capsys)
    assert code == 0
    assert 'frames in: 3, written: 2, skipped: 1' in out and '00050.jpg' in out
    assert sorted(p.name for p in (tmp_path / 'out' / 'depth').iterdir()) == ['00000.png', '00100.png']
    assert json.loads((tmp_path / 'out' / 'metrics.json').read_text())['num_images'] == 2


def test_corrupt_images_share_one_summary_line(tmp_path, model_path, nyu, capsys):
    """Corrupt images are grouped under one reason, so the summary stays short for many of them.

    The reason used to carry the byte count of each file, giving one summary line per corrupt image.
    """
    rgb_dir, _, camera_file = nyu
    for name, size in (('00050.jpg', 2000), ('00100.jpg', 3000)):
        (rgb_dir / name).write_bytes((rgb_dir / name).read_bytes()[:size])
    code, out, _ = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--quiet', capsys=capsys)
    assert code == 0
    lines = [line for line in out.splitlines() if 'skipped 2 (' in line]
    assert len(lines) == 1 and '00050.jpg' in lines[0] and '00100.jpg' in lines[0]


def test_image_whose_header_claims_too_many_pixels_is_skipped_before_decoding(tmp_path, model_path, nyu, capsys):
    """A JPEG whose SOF header claims 8000x8000 (over max_input_pixels, 4K UHD) is skipped as image_too_large and
    the run goes on. It used to be decoded (a 192 MB allocation for a 640x480 file) and then stopped the whole run
    as an image of the wrong size."""
    rgb_dir, _, camera_file = nyu
    path = sorted(rgb_dir.glob('*.jpg'))[1]
    data = bytearray(path.read_bytes())
    sof = data.index(b'\xff\xc0')  # baseline SOF0: marker, length (2), precision (1), height (2), width (2)
    data[sof + 5:sof + 9] = (8000).to_bytes(2, 'big') * 2
    path.write_bytes(bytes(data))
    code, out, _ = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--quiet', capsys=capsys)
    assert code == 0, out
    assert 'skipped 1 (undecodable image (image_too_large))' in out and path.name in out


def test_camera_file_with_zero_focal_is_named(tmp_path, model_path, nyu, capsys):
    """Unusable intrinsics in the calibration file are an error that names the file (it used to say only
    'focal length must be finite and positive', leaving the user to guess which input was meant)."""
    rgb_dir, _, _ = nyu
    camera_file = camera_yaml(tmp_path / 'zero.yaml')
    camera_file.write_text(camera_file.read_text().replace('518.8579', '0.0'))
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       capsys=capsys)
    assert_clean_error(code, err, str(camera_file), 'focal')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('key', ['camera_matrix', 'projection_matrix', 'distortion_model', 'image_width'])
def test_camera_file_missing_key(tmp_path, model_path, nyu, capsys, key):
    """A calibration file without one of the ROS keys is refused, naming the key."""
    rgb_dir, _, _ = nyu
    camera_file = camera_yaml(tmp_path / 'bad.yaml', drop=key)
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       capsys=capsys)
    assert_clean_error(code, err, key, str(camera_file))
    assert not (tmp_path / 'out').exists()


def test_colormap_range_outside_the_model_is_a_clean_error(tmp_path, model_path, nyu, capsys):
    """colored_min_depth above the model's max_depth (colored_max_depth 0 = the model's) is refused at start.

    It used to pass the params check and then raise ValueError in colorize on the first frame: a traceback.
    """
    rgb_dir, _, camera_file = nyu
    params = tmp_path / 'params.yaml'
    params.write_text(default_params_file().read_text().replace('colored_min_depth: 0.0', 'colored_min_depth: 500.0'))
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--params-file', params, '--quiet', capsys=capsys)
    assert_clean_error(code, err, 'colored_min_depth')
    assert not (tmp_path / 'out').exists()


def test_overwrite_never_replaces_a_folder_holding_what_the_run_reads(tmp_path, model_path, nyu, capsys):
    """An output folder that holds the images, the camera file or the model is refused even with --overwrite.

    It used to be replaced at the end of the run, deleting the user's images (or model, or calibration).
    """
    rgb_dir, _, camera_file = nyu
    for output in (tmp_path, Path(model_path).parent):
        code, _, err = run('images', rgb_dir, output, '--model', model_path, '--camera-info', camera_file,
                           '--overwrite', '--quiet', capsys=capsys)
        assert_clean_error(code, err, str(output))
    assert len(list(rgb_dir.iterdir())) == 3 and camera_file.is_file() and Path(model_path).is_file()


def test_mixed_image_sizes_leave_no_output(tmp_path, model_path, nyu, capsys):
    """A folder mixing sizes (two cameras) is an error after which no output directory exists."""
    rgb_dir, _, camera_file = nyu
    image = cv2.imread(str(rgb_dir / '00100.jpg'))
    cv2.imwrite(str(rgb_dir / '00100.jpg'), cv2.resize(image, (320, 240)))
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--quiet', capsys=capsys)
    assert_clean_error(code, err, '00100.jpg', '320x240', '640x480')
    assert not (tmp_path / 'out').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.out')]


def test_ground_truth_of_another_size(tmp_path, model_path, nyu, capsys):
    """A GT image whose size differs from its image cannot be evaluated: clear error, nothing written."""
    rgb_dir, gt_dir, camera_file = nyu
    gt = cv2.imread(str(gt_dir / '00050.png'), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(gt_dir / '00050.png'), gt[:240, :320])
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--gt-dir', gt_dir, '--gt-scale', 1000, '--quiet', capsys=capsys)
    assert_clean_error(code, err, '00050.png', '320x240')
    assert not (tmp_path / 'out').exists()


def test_existing_output_dir_refused(tmp_path, model_path, nyu, capsys):
    """An existing OUTPUT_DIR is left alone without --overwrite."""
    rgb_dir, _, camera_file = nyu
    (tmp_path / 'out').mkdir()
    code, _, err = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       capsys=capsys)
    assert_clean_error(code, err, '--overwrite')
    assert list((tmp_path / 'out').iterdir()) == []


def test_image_without_ground_truth_is_noted_not_averaged(tmp_path, model_path, nyu, capsys):
    """A frame whose GT file is absent is still written, named in the summary, and left out of the mean."""
    rgb_dir, gt_dir, camera_file = nyu
    (gt_dir / '00100.png').unlink()
    code, out, _ = run('images', rgb_dir, tmp_path / 'out', '--model', model_path, '--camera-info', camera_file,
                       '--gt-dir', gt_dir, '--gt-scale', 1000, '--quiet', capsys=capsys)
    assert code == 0 and 'written: 3' in out
    assert 'not evaluated' in out and '00100.jpg' in out
    assert json.loads((tmp_path / 'out' / 'metrics.json').read_text())['num_images'] == 2


def test_sigterm_mid_run_exits_143_and_leaves_nothing(tmp_path, slow_model):
    """SIGTERM (systemd stopping a job, `timeout`) while frames are processed: exit 143 with one line and no output,
    the temporary folder removed as on Ctrl-C. Python's default SIGTERM ended the process at once and left
    `.out.*.partial` (every frame written so far) behind. The signal comes once the first frame is written, with
    five frames of the slow model (about 0.5 s each, one thread) still to run."""
    import signal
    import subprocess
    import sys
    import time

    slow = slow_model(frame_seconds=0.5)
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump({'mono_depth_node': {'ros__parameters': NodeParams(num_threads=1).as_dict()}}))
    folder = tmp_path / 'in'
    folder.mkdir()
    for index in range(6):
        cv2.imwrite(str(folder / f'{index:02d}.png'), np.full((48, 64, 3), 10 * index, np.uint8))
    script = Path(sys.executable).with_name('mono_depth_offline')
    process = subprocess.Popen([str(script), 'images', str(folder), str(tmp_path / 'out'), '--model', slow,
                                '--params-file', str(params), '--quiet',
                                '--camera-info', str(camera_yaml(tmp_path / 'camera.yaml', 64, 48))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob('.out.*.partial/out/depth/*.png')) and time.monotonic() < deadline:
            time.sleep(0.05)  # until a frame is written
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == 'mono_depth_offline: terminated; nothing written', stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['camera.yaml', 'in', 'params.yaml', 'slow.onnx']
