"""Torch (.pt2) backend errors: the node must get a BackendError naming the problem, never a raw traceback."""
from __future__ import annotations

import pytest

from depth_kd_ros.backends import BackendError, create_backend


def test_onnx_file_is_rejected_with_advice(tmp_path):
    """Giving the torch backend the .onnx file is the likely mistake; the message says what it needs."""
    (tmp_path / 'model.onnx').write_bytes(b'x')
    with pytest.raises(BackendError, match='needs a .pt2'):
        create_backend('torch', str(tmp_path / 'model.onnx'))


def test_missing_or_foreign_pt2_is_a_backend_error(tmp_path):
    """A missing file or a zip without metadata.json fails at start-up with the path in the message."""
    with pytest.raises(BackendError, match='not found'):
        create_backend('torch', str(tmp_path / 'model.pt2'))
    (tmp_path / 'bad.pt2').write_bytes(b'not a zip')
    with pytest.raises(BackendError, match='bad.pt2'):
        create_backend('torch', str(tmp_path / 'bad.pt2'))
