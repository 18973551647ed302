"""TensorRT backend surroundings that run without TensorRT: calibration batching and the missing-package error."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_kd_ros.backends import BackendError, create_backend
from depth_kd_ros.backends.calibration_images import CalibrationBatches, CalibrationDataError, calibration_files


def _write_images(folder, count, size=(20, 30)):
    folder.mkdir(exist_ok=True)
    for i in range(count):
        bgr = np.zeros((*size, 3), np.uint8)
        bgr[..., 2] = 10 * (i + 1)  # red channel encodes the index, so order is checkable after BGR->RGB
        cv2.imwrite(str(folder / f'img_{i:02d}.png'), bgr)


def test_batches_shape_order_and_padding(tmp_path):
    """5 images, B=2 -> 3 batches [2,3,H,W] in name order; the last one pads by repeating its last image."""
    _write_images(tmp_path / 'calib', 5)
    (tmp_path / 'calib' / 'notes.txt').write_text('not an image')
    batches = CalibrationBatches(tmp_path / 'calib', height=8, width=16, batch_size=2)
    out = list(batches)
    assert len(out) == len(batches) == 3 and batches.nbytes == 2 * 3 * 8 * 16 * 4
    for batch in out:
        assert batch.shape == (2, 3, 8, 16) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
    reds = [float(img[0].mean()) * 255 for batch in out for img in batch]
    np.testing.assert_allclose(reds, [10, 20, 30, 40, 50, 50], atol=0.5)
    assert all(float(img[1:].max()) == 0 for batch in out for img in batch), 'channels not RGB'


def test_max_images_limits_calibration_set(tmp_path):
    """max_images caps calibration time on big folders."""
    _write_images(tmp_path / 'calib', 4)
    assert len(list(CalibrationBatches(tmp_path / 'calib', 4, 4, batch_size=1, max_images=3))) == 3


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    """A calibration folder without images must say so instead of building an uncalibrated engine."""
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.md').write_text('x')
    with pytest.raises(CalibrationDataError, match='holds no images'):
        calibration_files(tmp_path / 'empty')
    with pytest.raises(CalibrationDataError, match='does not exist'):
        CalibrationBatches(tmp_path / 'nope', 8, 8)


def test_undecodable_image_is_named(tmp_path):
    """A corrupt file in the folder is reported by name."""
    (tmp_path / 'calib').mkdir()
    (tmp_path / 'calib' / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(CalibrationDataError, match='broken.png'):
        list(CalibrationBatches(tmp_path / 'calib', 8, 8))


def test_truncated_jpeg_is_refused_not_calibrated_on(tmp_path):
    """A JPEG cut short is refused by name: OpenCV 4.5/4.6 would decode it to a partly grey image whose
    ranges would end up in the int8 calibration."""
    _write_images(tmp_path / 'calib', 2)
    data = cv2.imencode('.jpg', np.full((20, 30, 3), 90, np.uint8))[1].tobytes()
    (tmp_path / 'calib' / 'img_99.jpg').write_bytes(data[:len(data) // 2])
    with pytest.raises(CalibrationDataError, match='img_99.jpg.*JPEG end-of-image marker'):
        list(CalibrationBatches(tmp_path / 'calib', 8, 8))


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is not None, reason='TensorRT is installed here')
def test_missing_tensorrt_gives_install_advice(tmp_path):
    """Without TensorRT the node must say how to fix it (JetPack package or the onnxruntime backend)."""
    with pytest.raises(BackendError) as info:
        create_backend('tensorrt', str(tmp_path / 'model.onnx'), precision='fp16')
    message = str(info.value)
    assert 'TensorRT Python package not installed' in message
    assert 'python3-libnvinfer' in message and 'backend:=onnxruntime' in message


def test_tensorrt_module_imports_without_tensorrt():
    """The module must import on CI (no GPU) so its pure parts stay tested and the node can list it."""
    module = importlib.import_module('depth_kd_ros.backends.tensorrt_backend')
    assert hasattr(module, 'TensorRTBackend') and hasattr(module, 'build_engine')


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is not None, reason='TensorRT is installed here')
@pytest.mark.parametrize('script', ['build_trt_engine.py', 'verify_trt.py'])
def test_trt_scripts_fail_cleanly_without_tensorrt(tmp_path, script):
    """The deployment scripts print one error line, no traceback, and exit 2 (bad input, as every entry point)
    when something is missing."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / 'scripts' / script), '--onnx', str(tmp_path / 'm.onnx')],
                            capture_output=True, text=True, cwd=root, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and 'Traceback' not in result.stderr


def test_verify_script_sample_images(tmp_path):
    """verify_trt.py feeds contract inputs: [1,3,H,W] float32 in 0..1, from a folder or seeded synthetic."""
    spec = importlib.util.spec_from_file_location('verify_trt', Path(__file__).resolve().parents[2] / 'scripts'
                                                  / 'verify_trt.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _write_images(tmp_path / 'imgs', 3)
    for folder, count in ((str(tmp_path / 'imgs'), 3), (None, 5)):
        images = module.sample_images(folder, 5, 32, 64)
        assert len(images) == count
        assert all(i.shape == (1, 3, 32, 64) and i.dtype == np.float32 and 0 <= i.min() <= i.max() <= 1
                   for i in images)
    np.testing.assert_array_equal(module.sample_images(None, 2, 8, 8)[1], module.sample_images(None, 2, 8, 8)[1])
