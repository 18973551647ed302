"""Engine cache key and stale-engine detection (depth_kd_ros.backends.engine_cache): no TensorRT needed."""
import dataclasses
import json
import logging

import cv2
import numpy as np
import pytest

from depth_kd_ros.backends import engine_cache
from depth_kd_ros.backends.calibration_images import CalibrationDataError, calibration_files

BASE = dict(tensorrt_version='10.3.0', gpu_name='Orin', compute_capability='8.7', precision='fp16',
            input_shape=(1, 3, 96, 320))


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'fake onnx bytes')
    return path


def test_each_key_component_changes_the_key(onnx_file, tmp_path):
    """A foreign engine must never match: every component (incl. the ONNX bytes) changes the key."""
    base = engine_cache.make_key(onnx_file, **BASE)
    changes = dict(tensorrt_version='8.6.2', gpu_name='RTX 4090', compute_capability='8.9', precision='int8',
                   input_shape=(1, 3, 192, 640))
    for name, value in changes.items():
        other = engine_cache.make_key(onnx_file, **dict(BASE, **{name: value}))
        assert other != base and getattr(other, name) != getattr(base, name), name
    int8 = {name: engine_cache.make_key(onnx_file, **dict(BASE, precision='int8', calibration_sha256=name))
            for name in ('a' * 64, 'b' * 64)}
    assert int8['a' * 64] != int8['b' * 64]
    changes['calibration_sha256'] = 'b' * 64
    other_onnx = tmp_path / 'other.onnx'
    other_onnx.write_bytes(b'fake onnx bytes, retrained')
    assert engine_cache.make_key(other_onnx, **BASE).onnx_sha256 != base.onnx_sha256
    assert {f.name for f in dataclasses.fields(base)} == {'onnx_sha256', *changes}


def test_unknown_precision_rejected(onnx_file):
    """A typo in the precision parameter must fail loudly, not build an fp32 engine silently; calibration data
    only keys int8 engines."""
    with pytest.raises(ValueError, match='precision'):
        engine_cache.make_key(onnx_file, **dict(BASE, precision='half'))
    with pytest.raises(ValueError, match='int8'):
        engine_cache.make_key(onnx_file, **dict(BASE, calibration_sha256='a' * 64))


def test_store_then_lookup_hits(onnx_file, tmp_path):
    """A stored engine with its sidecar is found again for the same key."""
    key = engine_cache.make_key(onnx_file, **BASE)
    path = engine_cache.store(tmp_path / 'cache', onnx_file, key, b'engine-bytes')
    assert path.read_bytes() == b'engine-bytes'
    found = engine_cache.lookup(tmp_path / 'cache', onnx_file, key)
    assert found.engine_path == path and found.reason == ''
    assert not list((tmp_path / 'cache').glob('*.tmp')), 'atomic write left a temp file'


def test_missing_engine_is_a_rebuild_with_log(onnx_file, tmp_path, caplog):
    """An empty cache logs 'rebuilding engine: <reason>' so users see why start-up is slow."""
    key = engine_cache.make_key(onnx_file, **BASE)
    with caplog.at_level(logging.WARNING):
        found = engine_cache.lookup(tmp_path, onnx_file, key)
    assert found.engine_path is None and 'no cached engine' in found.reason
    assert f'rebuilding engine: {found.reason}' in caplog.text


@pytest.mark.parametrize('field,value', [('tensorrt_version', '10.4.0'), ('gpu_name', 'Xavier'),
                                         ('compute_capability', '7.2'), ('input_shape', (1, 3, 64, 64))])
def test_mismatched_sidecar_names_the_changed_field(onnx_file, tmp_path, caplog, field, value):
    """A stale engine (TensorRT upgrade, other GPU, other size) is rebuilt and the reason names the field."""
    engine_cache.store(tmp_path, onnx_file, engine_cache.make_key(onnx_file, **BASE), b'old')
    current = engine_cache.make_key(onnx_file, **dict(BASE, **{field: value}))
    with caplog.at_level(logging.WARNING):
        found = engine_cache.lookup(tmp_path, onnx_file, current)
    assert found.engine_path is None
    assert found.reason.startswith('key changed: ') and field in found.reason
    assert 'rebuilding engine: key changed' in caplog.text


def test_retrained_onnx_invalidates_engine(onnx_file, tmp_path):
    """Overwriting model.onnx with new weights must not reuse the old engine (same file name)."""
    engine_cache.store(tmp_path, onnx_file, engine_cache.make_key(onnx_file, **BASE), b'old')
    onnx_file.write_bytes(b'new weights')
    found = engine_cache.lookup(tmp_path, onnx_file, engine_cache.make_key(onnx_file, **BASE))
    assert found.engine_path is None and 'onnx_sha256' in found.reason


def test_corrupt_sidecar_or_engine_is_rebuilt(onnx_file, tmp_path):
    """A truncated engine or garbage sidecar is never loaded."""
    key = engine_cache.make_key(onnx_file, **BASE)
    engine_path = engine_cache.store(tmp_path, onnx_file, key, b'engine-bytes')
    engine_path.write_bytes(b'engine-by')  # truncated after the sidecar was written
    assert 'sha256' in engine_cache.lookup(tmp_path, onnx_file, key).reason
    engine_cache.store(tmp_path, onnx_file, key, b'engine-bytes')
    _, sidecar = engine_cache.engine_paths(tmp_path, onnx_file, 'fp16')
    sidecar.write_text('{not json')
    assert 'unreadable' in engine_cache.lookup(tmp_path, onnx_file, key).reason


def test_precisions_are_cached_side_by_side(onnx_file, tmp_path):
    """fp16 and int8 engines of one model coexist; the sidecar records the full key as JSON."""
    for precision in ('fp16', 'int8'):
        key = engine_cache.make_key(onnx_file, **dict(BASE, precision=precision))
        engine_cache.store(tmp_path, onnx_file, key, precision.encode())
    for precision in ('fp16', 'int8'):
        key = engine_cache.make_key(onnx_file, **dict(BASE, precision=precision))
        assert engine_cache.lookup(tmp_path, onnx_file, key).engine_path.read_bytes() == precision.encode()
    stored = json.loads(engine_cache.engine_paths(tmp_path, onnx_file, 'int8')[1].read_text())
    assert stored['key']['input_shape'] == [1, 3, 96, 320] and stored['key']['precision'] == 'int8'


def _images(folder, values, names=None):
    folder.mkdir(exist_ok=True)
    for index, value in enumerate(values):
        name = names[index] if names else f'frame_{index}.png'
        cv2.imwrite(str(folder / name), np.full((6, 8, 3), value, np.uint8))
    return folder


def test_calibration_images_hash_follows_names_and_contents(tmp_path):
    """The same images in another folder hash alike; a changed, added or renamed image changes the hash."""
    def digest(folder):
        return engine_cache.images_sha256(calibration_files(folder))

    a = digest(_images(tmp_path / 'a', [10, 20]))
    assert digest(_images(tmp_path / 'copy', [10, 20])) == a
    assert digest(_images(tmp_path / 'changed', [10, 21])) != a
    assert digest(_images(tmp_path / 'added', [10, 20, 30])) != a
    assert digest(_images(tmp_path / 'renamed', [10, 20], ['frame_0.png', 'other.png'])) != a


def test_int8_engine_of_folder_a_is_not_reused_for_folder_b(onnx_file, tmp_path, caplog):
    """An INT8 engine calibrated on folder A is rebuilt, on a calibration cache of its own, when folder B is
    given; the log names both folders. Without a folder (the node), the calibration recorded with the cached
    engine is used, also after its engine file was deleted; with no recorded calibration the error says what
    to do.

    A's engine was reused unchanged for B, and after deleting the engine the rebuild read A's calibration
    cache; nothing was logged.
    """
    cache = tmp_path / 'cache'
    folder_a, folder_b = _images(tmp_path / 'A', [10, 20]), _images(tmp_path / 'B', [200, 220, 240])
    base = engine_cache.make_key(onnx_file, **dict(BASE, precision='int8'))
    with pytest.raises(CalibrationDataError, match='build_trt_engine.py --precision int8 --calibration-dir'):
        engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256, None)

    calib_a = engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256, folder_a)
    key_a = dataclasses.replace(base, calibration_sha256=calib_a.sha256)
    engine_cache.store(cache, onnx_file, key_a, b'engine A', calib_a.source)
    calib_a.cache_path.write_bytes(b'ranges of A')  # what TensorRT's calibrator writes during the build
    assert engine_cache.lookup(cache, onnx_file, key_a).engine_path is not None

    with caplog.at_level(logging.WARNING):
        calib_b = engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256, folder_b)
        key_b = dataclasses.replace(base, calibration_sha256=calib_b.sha256)
        found = engine_cache.lookup(cache, onnx_file, key_b)
    assert found.engine_path is None and 'calibration_sha256' in found.reason
    assert calib_b.cache_path != calib_a.cache_path and not calib_b.cache_path.exists()
    assert 'INT8 calibration data changed' in caplog.text and str(folder_b) in caplog.text
    assert str(folder_a) in caplog.text

    recorded = engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256, None)  # the node: no folder
    assert recorded == calib_a
    engine_cache.engine_paths(cache, onnx_file, 'int8')[0].unlink()  # engine deleted, sidecar kept
    assert engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256, None).cache_path == calib_a.cache_path
    same_images_elsewhere = engine_cache.int8_calibration(cache, onnx_file, base.onnx_sha256,
                                                         _images(tmp_path / 'A_copy', [10, 20]))
    assert same_images_elsewhere.sha256 == calib_a.sha256 and same_images_elsewhere.cache_path == calib_a.cache_path


def test_retrained_model_gets_its_own_calibration_cache(onnx_file, tmp_path):
    """Calibration ranges belong to one network: the same images for a retrained model name another cache."""
    folder = _images(tmp_path / 'A', [10, 20])
    first = engine_cache.int8_calibration(tmp_path, onnx_file, engine_cache.file_sha256(onnx_file), folder)
    onnx_file.write_bytes(b'retrained weights')
    second = engine_cache.int8_calibration(tmp_path, onnx_file, engine_cache.file_sha256(onnx_file), folder)
    assert first.sha256 == second.sha256 and first.cache_path != second.cache_path
