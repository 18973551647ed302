"""The exported ONNX model scores the same metrics on the synthetic test images as the checkpoint it came from."""
from __future__ import annotations

import pytest
import torch
from export_helpers import HEIGHT, WIDTH, make_config, trained_like_student

from depth_kd_ros.backends import create_backend
from disdepth.data import build_dataset
from disdepth.evaluation import evaluate
from disdepth.export import export_onnx
from disdepth.metrics import METRIC_KEYS


def test_onnx_metrics_equal_checkpoint_metrics(tmp_path):
    """Deployment must not change accuracy: every metric of the ORT model equals the PyTorch model's."""
    cfg = make_config('mobilenet_v2', 'bins', True)
    model = trained_like_student(cfg)
    export_onnx(model, cfg, tmp_path / 'model.onnx', HEIGHT, WIDTH)
    dataset = build_dataset(cfg.data, 'test')
    backend = create_backend('onnxruntime', str(tmp_path / 'model.onnx'))

    def torch_fn(image):
        with torch.no_grad():
            return model(image)['depth']

    def onnx_fn(image):
        return backend.infer(image.numpy())['depth']

    ref = evaluate(torch_fn, dataset, batch_size=1)
    got = evaluate(onnx_fn, dataset, batch_size=1)
    print({k: (round(ref[k], 6), round(got[k], 6)) for k in METRIC_KEYS})
    assert got['num_images'] == ref['num_images'] == cfg.data.num_test
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-5), key
