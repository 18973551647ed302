"""training/export.py --hf: pretrained metric Transformers to the model file contract (day one on a robot).

Each supported family is a tiny random model saved with its weights to a folder named as the hub's models are
(test/tiny_teachers.py), exported through the CLI at 60x80 (not a multiple of any patch: rounded, and said), then
served unchanged by the node over real DDS and by mono_depth_offline. Relative models, unknown training cameras
and models that cannot be loaded (no hub, empty folder, no weights) stop with one line and exit status 2, through
the real CLIs (export.py --hf, distill.py with config/training/recordings.yaml).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
import yaml
from tiny_teachers import tiny_config, write_tiny_model, write_tiny_teacher

from depth_kd_ros.camera.model import CameraModel
from depth_kd_ros.model_file import read_model_info
from depth_kd_ros.offline.cli import main as offline_main
from depth_kd_ros.params import NodeParams
from depth_kd_ros.pipeline import focal_scale, load_pipeline
from disdepth.hub import why_not_loaded
from disdepth.pretrained_export import MetricDepthModel, metric_family, training_camera

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / 'training' / 'export.py'
ASKED = (60, 80)  # a 4:3 camera's aspect, a multiple of neither 14 nor 32
# kind -> (folder name as on the hub, config changes, exported H x W, training camera, its f (px) at H_t x W_t)
FAMILIES = {
    'depth_anything_metric': ('Depth-Anything-V2-Metric-Indoor-tiny-hf', {}, (56, 70),
                              ('hypersim', 886.81, 768, 1024)),  # 60 deg FOV at 1024x768
    'glpn': ('glpn-kitti-tiny', {'max_depth': 80}, (64, 96), ('kitti', 721.5377, 352, 1216)),  # P_rect_02, KB crop
    'zoedepth': ('zoedepth-nyu-tiny', {}, (64, 96), ('nyu', 518.8579, 480, 640)),  # NYU camera_params.m fx_rgb
}
IMAGE_W, IMAGE_H = 64, 48  # the camera frame the node and the offline tool get
CAMERA_K = (50.0, 0.0, 31.5, 0.0, 52.0, 23.5, 0.0, 0.0, 1.0)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXPORT = _load(CLI, 'export_cli')


def export_cli(*argv) -> tuple[int, str, str]:
    """training/export.py's main in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = EXPORT.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """kind -> (exported ONNX, the CLI's stdout), each from a saved tiny model at 60x80."""
    root = tmp_path_factory.mktemp('pretrained')
    result = {}
    for kind, (name, changes, _, _) in FAMILIES.items():
        folder = write_tiny_model(root / name, kind, **changes)
        code, out, err = export_cli('--hf', folder, '--output', root / f'{kind}.onnx', '--height', ASKED[0],
                                    '--width', ASKED[1])
        assert code == 0, err
        result[kind] = (root / f'{kind}.onnx', out)
    return result


@pytest.mark.parametrize('kind', FAMILIES)
def test_each_family_exports_to_the_contract_rounded_and_focal_from_its_training_camera(exported, kind):
    """Static 1x3xHxW -> 1x1xHxW at opset 17 / IR <= 9 (as students: ONNX Runtime 1.16, TensorRT 8.6); H x W the
    multiples of the patch next to 60x80 at its aspect, said on stdout; focal_length the training camera's at
    H x W, f sqrt(H W / (H_t W_t)); depth range from the model's config; parity with PyTorch within 1e-3 m."""
    path, out = exported[kind]
    _, changes, (height, width), (camera, focal, cam_h, cam_w) = FAMILIES[kind]
    print(out)
    assert f'size: {ASKED[0]}x{ASKED[1]} rounded to {height}x{width}' in out
    parity = next(line for line in out.splitlines() if line.startswith('ONNX Runtime vs PyTorch'))
    assert float(parity.split('max abs diff ')[1].split(' m')[0]) <= 1e-3
    info = read_model_info(str(path))
    assert (info.input_height, info.input_width, info.outputs) == (height, width, ('depth',))
    assert info.focal_length == pytest.approx(focal * math.sqrt(height * width / (cam_h * cam_w)), rel=1e-9)
    assert info.training_dataset == camera
    assert (info.min_depth, info.max_depth) == (1e-3, {'glpn': 80.0, 'zoedepth': 10.0}.get(kind, 20.0))
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')] == [17]
    assert proto.ir_version <= 9


def _camera_file(path: Path) -> Path:
    fx, _, cx, _, fy, cy = CAMERA_K[:6]
    path.write_text(yaml.safe_dump({
        'image_width': IMAGE_W, 'image_height': IMAGE_H, 'camera_name': 'robot', 'distortion_model': 'plumb_bob',
        'camera_matrix': {'rows': 3, 'cols': 3, 'data': list(CAMERA_K)},
        'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.0] * 5},
        'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        'projection_matrix': {'rows': 3, 'cols': 4, 'data': [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0]}}))
    return path


def test_node_over_dds_and_the_offline_tool_serve_each_family_unchanged(exported, tmp_path, capsys):
    """The exported files, as given: the node (real rclpy + Fast DDS) publishes depth in metres within the model's
    range times the focal scale to this camera, varying over the image, and mono_depth_offline writes the same
    depth (millimetre PNG) for the same frame."""
    ros_harness = pytest.importorskip('ros_harness', reason='the node side needs the ROS 2 rclpy wheels')
    msg, rgb = ros_harness.make_image(7, IMAGE_W, IMAGE_H)
    (tmp_path / 'frames').mkdir()
    cv2.imwrite(str(tmp_path / 'frames' / 'frame.png'), rgb[..., ::-1])
    camera_file = _camera_file(tmp_path / 'camera.yaml')
    camera = CameraModel.from_k(list(CAMERA_K), IMAGE_W, IMAGE_H)
    for kind, (path, _) in exported.items():
        info = read_model_info(str(path))
        harness = ros_harness.Harness(str(path))
        try:
            harness.send_camera_info(ros_harness.make_camera_info(IMAGE_W, IMAGE_H, CAMERA_K))
            depth_msg = harness.request(msg, 7)['depth']
        finally:
            harness.close()
        depth = np.frombuffer(bytes(depth_msg.data), np.float32).reshape(IMAGE_H, IMAGE_W)
        scale = focal_scale(camera, info)
        assert np.isfinite(depth).all() and depth.std() > 0, kind
        assert depth.min() >= info.min_depth * scale * (1 - 1e-6) and depth.max() <= info.max_depth * scale * (1 + 1e-6)
        code = offline_main(['images', str(tmp_path / 'frames'), str(tmp_path / kind), '--model', str(path),
                             '--camera-info', str(camera_file), '--quiet'])
        assert code == 0, capsys.readouterr().err
        written = cv2.imread(str(tmp_path / kind / 'depth' / 'frame.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(written, np.rint(depth.astype(np.float64) * 1000).astype(np.uint16), kind)
        pipeline = load_pipeline(NodeParams(model_path=str(path), num_threads=1))  # what evaluate.py --onnx runs
        np.testing.assert_array_equal(pipeline.process(rgb, camera).depth, depth, kind)


def test_depth_is_clamped_to_the_model_range():
    """ZoeDepth's bin centres are unbounded (softplus): the raw depth of a model with large weights leaves
    0.001..10 m; the exported module's does not."""
    from transformers import AutoModelForDepthEstimation

    torch.manual_seed(0)
    config = tiny_config('zoedepth', initializer_range=0.2)
    model = AutoModelForDepthEstimation.from_config(config).eval()
    family = metric_family(config, 'zoedepth-nyu')
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = model(pixel_values=(image - 0.5) / 0.5).predicted_depth
        depth = MetricDepthModel(model, (0.5,) * 3, (0.5,) * 3, family)(image)['depth']
    assert raw.max() > family.max_depth
    assert depth.shape == (1, 1, 64, 96) and depth.min() >= 1e-3 and depth.max() <= family.max_depth


def test_training_camera_from_name_or_max_depth_else_asked():
    """Hub names say the camera (Indoor/Outdoor, nyu/kitti); a renamed folder falls back to max_depth; a max_depth
    no shipped model has needs --training-camera; ZoeDepth NYU+KITTI (a head picked per image) is refused."""
    outdoor = metric_family(tiny_config('depth_anything_metric', max_depth=80), 'x')
    assert training_camera(outdoor, 'depth-anything/Depth-Anything-V2-Metric-Outdoor-Base-hf', None) == 'vkitti2'
    assert training_camera(outdoor, '/models/my_depth', None) == 'vkitti2'
    assert training_camera(metric_family(tiny_config('glpn'), 'x'), 'vinvino02/glpn-nyu', None) == 'nyu'
    fine_tuned = metric_family(tiny_config('depth_anything_metric', max_depth=40), 'x')
    with pytest.raises(ValueError, match='give --training-camera'):
        training_camera(fine_tuned, '/models/warehouse_depth', None)
    assert training_camera(fine_tuned, '/models/warehouse_depth', 'vkitti2') == 'vkitti2'
    heads = [{'name': name, 'n_bins': 8, 'min_depth': 1e-3, 'max_depth': max_depth}
             for name, max_depth in (('nyu', 10.0), ('kitti', 80.0))]
    with pytest.raises(ValueError, match='2 metric heads'):
        metric_family(tiny_config('zoedepth', bin_configurations=heads), 'Intel/zoedepth-nyu-kitti')


@pytest.mark.parametrize('kind', ['dpt', 'depth_anything'])
def test_relative_models_are_refused_with_one_line(tmp_path, kind):
    """DPT and Depth Anything without the metric head: exit 2, one line saying the node needs metric depth, no file
    (refused from config.json alone, before any weights are read)."""
    folder = write_tiny_teacher(tmp_path, kind)
    code, out, err = export_cli('--hf', folder, '--output', tmp_path / 'model.onnx')
    assert code == 2 and out == '' and len(err.strip().splitlines()) == 1, err
    assert 'relative depth model' in err and 'the node publishes depth in metres' in err and str(folder) in err
    assert not (tmp_path / 'model.onnx').exists()


@pytest.mark.parametrize('size', [('--height', '60'), ('--height', '0', '--width', '80')])
def test_size_is_both_sides_and_positive(tmp_path, size):
    """One side only, or a side that is not positive: exit 2, one line, before the model is loaded."""
    code, _, err = export_cli('--hf', tmp_path / 'not_read', '--output', tmp_path / 'model.onnx', *size)
    assert code == 2 and len(err.strip().splitlines()) == 1 and 'give both --height and --width' in err, err


def test_folders_that_cannot_be_loaded_are_one_line(tmp_path):
    """An empty folder, a folder with config.json but no weights, a path that does not exist: exit 2, one line
    naming the folder and what to give instead."""
    (tmp_path / 'empty').mkdir()
    no_weights = write_tiny_teacher(tmp_path, 'glpn')
    for folder, why in ((tmp_path / 'empty', 'the folder has no config.json'), (no_weights, 'no file named'),
                        (tmp_path / 'missing', 'no such folder')):
        code, _, err = export_cli('--hf', folder, '--output', tmp_path / 'model.onnx')
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"--hf='{folder}' cannot be loaded: {why}" in err and 'give a local folder' in err, err


def test_hub_ids_that_cannot_be_fetched_stop_the_real_clis_with_one_line(tmp_path):
    """No hub (HF_HUB_OFFLINE=1) and an empty cache: export.py --hf with a misspelt id, and distill.py on the
    recordings config as a new user runs it (its model.pretrained, then its teacher.path, are hub ids) stop at
    start with exit 2 and one line naming the option, the id and what to give instead."""
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf_home'))
    recording = _load(ROOT / 'scripts' / 'synthetic_recording.py', 'synthetic_recording').write_recording(
        tmp_path / 'walk', frames=4, height=48, width=64)
    distill = [sys.executable, str(ROOT / 'training' / 'distill.py'), '--config',
               str(ROOT / 'config' / 'training' / 'recordings.yaml'), f'data.recordings=[{recording}]',
               f'output_dir={tmp_path / "run"}']
    cases = [([sys.executable, str(CLI), '--hf', 'depth-anything/Depth-Anything-V2-Metric-Indor-Small-hf',
               '--output', str(tmp_path / 'model.onnx')],
              "--hf='depth-anything/Depth-Anything-V2-Metric-Indor-Small-hf' cannot be loaded", 'a local folder'),
             (distill, "model.pretrained='google/mobilenet_v2_1.0_224' cannot be loaded",
              'model.pretrained=null for random init'),
             ([*distill, 'model.pretrained=null'],
              "teacher.path='depth-anything/Depth-Anything-V2-Metric-Indoor-Base-hf' cannot be loaded",
              'on a machine that reaches the hub), or teacher.kind=small with a task=teacher checkpoint')]
    for command, named, instead in cases:
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
                                check=False)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert named in lines[0] and 'the hub cannot be reached (HF_HUB_OFFLINE is set)' in lines[0], lines[0]
        assert instead in lines[0], lines[0]


def test_unreachable_hub_without_offline_mode_says_how_to_skip_the_retries(monkeypatch):
    """Without HF_HUB_OFFLINE the hub's retries take 20-35 s before the line; the line says how to skip them.
    (transformers' own sentence for a file neither cached nor downloadable.)"""
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    error = OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in "
                    'the cached files.')
    assert why_not_loaded('org/model', error) == ('no such folder here, not in the Hugging Face cache, and the hub '
                                                  'cannot be reached (HF_HUB_OFFLINE=1 skips the retries)')
