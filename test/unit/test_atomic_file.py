"""depth_kd_ros.io.atomic_file: the one atomic write (engine cache, checkpoints, ONNX export)."""
from __future__ import annotations

import os
import stat

import pytest

from depth_kd_ros.io.atomic_file import atomic_path, atomic_write_bytes


def test_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    """The new bytes replace the old ones in a folder created on demand; no temporary file is left."""
    target = tmp_path / 'cache' / 'model.fp16.engine'
    atomic_write_bytes(target, b'old')
    atomic_write_bytes(target, b'new')
    assert target.read_bytes() == b'new'
    assert [p.name for p in target.parent.iterdir()] == ['model.fp16.engine']


def test_a_failed_write_keeps_the_old_file_whole(tmp_path):
    """An exception inside the block (an exporter failing its checks) deletes the partial file, keeps the old."""
    target = tmp_path / 'model.onnx'
    target.write_bytes(b'good model')
    with pytest.raises(RuntimeError, match='parity'), atomic_path(target, suffix='.onnx') as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == '.onnx' and tmp.exists()
        tmp.write_bytes(b'half a mod')
        raise RuntimeError('parity check failed')
    assert target.read_bytes() == b'good model'
    assert [p.name for p in tmp_path.iterdir()] == ['model.onnx']


def test_permissions_are_those_of_a_plain_open(tmp_path):
    """0o666 less the umask, as open() gives: mkstemp's owner-only 0o600 made engines and exported models
    unreadable to the robot's other users."""
    umask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / 'model.onnx', b'x')
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / 'model.onnx').stat().st_mode) == 0o644
