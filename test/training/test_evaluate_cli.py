"""training/evaluate.py end to end on the synthetic preset: ONNX models of known output, and a checkpoint."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml

from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx
from disdepth.config import config_from_dict, config_to_dict
from disdepth.data import build_dataset
from disdepth.metrics import METRIC_KEYS, MetricAverager, compute_metrics

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('evaluate_cli', ROOT / 'training' / 'evaluate.py')
evaluate_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evaluate_cli)

DATA = {'dataset': 'synthetic_outdoor', 'eval_height': 48, 'eval_width': 160, 'num_test': 3}


def constant_model(path: Path, value: float, height: int, width: int) -> None:
    """A model file of the deployment contract (metadata included) whose depth is ``value`` metres everywhere."""
    build_synthetic_onnx(str(path), height, width, base=value, gain=0.0, min_depth=1e-3, max_depth=80.0)


def write_config(tmp_path: Path, **data) -> Path:
    cfg = {'output_dir': str(tmp_path / 'eval'), 'data': {**DATA, **data}, 'trainer': {'progress': False}}
    path = tmp_path / 'cfg.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def expected_constant_metrics(value: float) -> dict:
    cfg = config_from_dict({'data': DATA}).data
    avg = MetricAverager()
    for item in build_dataset(cfg, 'test'):
        gt, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
        avg.update(compute_metrics(np.full_like(gt, value), gt, mask, cfg.min_depth, cfg.max_depth))
    return avg.compute()


@pytest.mark.parametrize('model_size', [(48, 160), (24, 96)])
def test_onnx_evaluation_writes_metrics_json_and_previews(tmp_path, capsys, model_size):
    """A 5 m constant model gives the metrics of 5 m vs the ground truth, also when the model's input
    size differs from the dataset's (image resized in, depth resized back)."""
    constant_model(tmp_path / 'm.onnx', 5.0, *model_size)
    rc = evaluate_cli.main(['--config', str(write_config(tmp_path)), '--onnx', str(tmp_path / 'm.onnx'),
                            '--flip-average', '--num-previews', '2'])
    assert rc == 0
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert set(metrics) == {*METRIC_KEYS, 'num_images', 'num_without_ground_truth', 'without_ground_truth'}
    assert metrics['num_images'] == 3 and metrics['num_without_ground_truth'] == 0
    assert metrics['without_ground_truth'] == []
    expected = expected_constant_metrics(5.0)
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(expected[key], rel=1e-5), key
    assert len(list((tmp_path / 'eval' / 'previews').glob('*.png'))) == 2
    assert 'abs_rel' in capsys.readouterr().out


@pytest.mark.parametrize('flip', [False, True])
def test_focal_scaling_scales_depth_to_each_image_camera_as_the_node(tmp_path, flip):
    """--focal-scaling: a 5 m constant model trained at focal length 100 px is scored as the node serves it on the
    dataset's camera, 5 * f_cam / 100 m (f_cam: the image's K at the model input, the node's focal scaling);
    without the flag the depth stays 5 m (the protocol: evaluate at the training camera)."""
    from depth_kd_ros.camera.model import CameraModel

    height, width = 24, 96
    build_synthetic_onnx(str(tmp_path / 'm.onnx'), height, width, base=5.0, gain=0.0, focal_length=100.0,
                         min_depth=1e-3, max_depth=80.0)
    cfg = config_from_dict({'data': DATA}).data
    items = list(build_dataset(cfg, 'test'))
    avg = MetricAverager()
    for item in items:
        gt, mask = item['depth'][0].numpy(), item['mask'][0].numpy()
        f_cam = CameraModel.from_k(item['K'].double().flatten().tolist(), gt.shape[1], gt.shape[0]).focal_at(
            width, height)
        assert abs(f_cam / 100.0 - 1) > 0.1  # the scaling is visible in the metrics
        avg.update(compute_metrics(np.full_like(gt, 5.0 * f_cam / 100.0), gt, mask, cfg.min_depth, cfg.max_depth))
    expected = avg.compute()
    flip_arg = ['--flip-average'] if flip else []
    for scaling, want in ((['--focal-scaling'], expected), ([], expected_constant_metrics(5.0))):
        assert evaluate_cli.main(['--config', str(write_config(tmp_path)), '--onnx', str(tmp_path / 'm.onnx'),
                                  '--num-previews', '0', *scaling, *flip_arg]) == 0
        metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
        for key in METRIC_KEYS:
            assert metrics[key] == pytest.approx(want[key], rel=1e-5), (scaling, key)


def test_focal_scaling_needs_an_onnx_model(tmp_path, capsys):
    """A checkpoint has no focal length to scale from: --focal-scaling with --checkpoint is refused (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(['--config', str(write_config(tmp_path)), '--checkpoint', 'x.pt', '--focal-scaling'])
    assert exit_info.value.code == 2 and '--focal-scaling needs --onnx' in capsys.readouterr().err


def test_frames_without_ground_truth_are_counted_and_named(tmp_path, capsys):
    """A KITTI split line with depth "None" is left out of the metrics, and metrics.json says how many and which,
    so 652 evaluated frames can be told from 697. It said neither.
    """
    from test_datasets import RGB, write_kitti

    data_cfg, _ = write_kitti(tmp_path, n=2)  # two frames with ground truth + frame 0 again without
    config = tmp_path / 'kitti.yaml'
    config.write_text(yaml.safe_dump({'output_dir': str(tmp_path / 'eval'), 'trainer': {'progress': False},
                                      'data': {k: getattr(data_cfg, k) for k in
                                               ('dataset', 'data_root', 'gt_root', 'train_split', 'test_split')}}))
    constant_model(tmp_path / 'm.onnx', 20.0, 88, 304)
    with pytest.warns(UserWarning, match='no ground truth'):
        code = evaluate_cli.main(['--config', str(config), '--onnx', str(tmp_path / 'm.onnx'), '--num-previews', '0'])
    assert code == 0
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert metrics['num_images'] == 2
    assert metrics['num_without_ground_truth'] == 1 and metrics['without_ground_truth'] == [RGB.format(0)]
    assert 'frames without ground truth, left out: 1' in capsys.readouterr().out


def test_bad_onnx_and_config_give_one_line_errors(tmp_path, capsys):
    """A missing model, a model without the deployment metadata, or an unknown config key exits 2 (bad input, as
    every entry point) with a message, no traceback."""
    cfg = write_config(tmp_path)
    assert evaluate_cli.main(['--config', str(cfg), '--onnx', str(tmp_path / 'missing.onnx')]) == 2
    assert 'missing.onnx' in capsys.readouterr().err
    assert evaluate_cli.main(['--config', str(cfg), '--onnx', 'x.onnx', 'data.nope=1']) == 2
    assert 'nope' in capsys.readouterr().err
    bare = onnx.load(build_synthetic_onnx(str(tmp_path / 'bare.onnx')))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / 'bare.onnx'))
    assert evaluate_cli.main(['--config', str(cfg), '--onnx', str(tmp_path / 'bare.onnx')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'metadata lacks' in err and 'Traceback' not in err


@pytest.fixture
def one_thread():
    """2 shared cores: one intra-op thread, restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_checkpoint_evaluation(tmp_path, one_thread):
    """--checkpoint loads a saved student via disdepth.build.load_model and reports its metrics."""
    from disdepth.checkpoint import save_checkpoint
    from disdepth.models.student import build_student

    torch.manual_seed(0)
    cfg = config_from_dict({'model': {'backbone': 'mobilenet_v2', 'lgconv': {'enabled': False},
                                      'decoder_channels': [16, 16, 8, 8], 'head': 'plain'}, 'data': DATA})
    student = build_student(cfg.model).eval()
    path = save_checkpoint(tmp_path / 'run' / 'checkpoints', 'best', {'model': student.state_dict(), 'step': 1},
                           {'config': config_to_dict(cfg), 'task': 'student', 'step': 1, 'epoch': 0, 'metrics': {}})
    rc = evaluate_cli.main(['--config', str(write_config(tmp_path)), '--checkpoint', str(path), '--num-previews', '1'])
    assert rc == 0
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert metrics['num_images'] == 3 and all(np.isfinite(metrics[k]) for k in METRIC_KEYS)
    with torch.no_grad():
        item = build_dataset(cfg.data, 'test')[0]
        depth = student(item['image'][None])['depth'][0, 0].numpy()
    assert depth.shape == (48, 160)  # the checkpoint's model predicts at the dataset's size
