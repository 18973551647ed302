"""ONNX export of every student variant: contract metadata, ORT-vs-torch parity, clear errors on bad sizes."""
from __future__ import annotations

import onnx
import pytest
from export_helpers import HEIGHT, WIDTH, make_config, trained_like_student

from depth_kd_ros.model_file import read_model_info
from disdepth.export import ExportError, check_size, export_onnx, focal_length

VARIANTS = [(backbone, lgconv, head) for backbone in ('mobilenet_v2', 'resnet18') for lgconv in (True, False)
            for head in ('bins', 'plain')]


@pytest.mark.parametrize('backbone,lgconv,head', VARIANTS)
def test_export_variant_matches_torch_and_contract(tmp_path, backbone, lgconv, head):
    """Every deployable student exports at opset 17, follows the runtime contract and matches PyTorch."""
    cfg = make_config(backbone, head, lgconv)
    path = tmp_path / 'model.onnx'
    report = export_onnx(trained_like_student(cfg), cfg, path, HEIGHT, WIDTH, tolerance=1e-3)
    print(f'{backbone} lgconv={lgconv} {head}: max {report.max_abs_diff:.2e} m, mean {report.mean_abs_diff:.2e} m '
          f'on {report.inputs_source}')
    assert report.max_abs_diff < 1e-3
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')] == [17]
    assert proto.ir_version <= 9  # the oldest supported onnxruntime, 1.16 (JetPack 6), loads IR <= 9
    info = read_model_info(str(path))  # metadata round trip through the runtime's reader
    expected_outputs = ('depth', 'depth_std') if head == 'bins' else ('depth',)
    assert info.outputs == report.outputs == expected_outputs
    assert (info.input_height, info.input_width) == (HEIGHT, WIDTH)
    assert (info.min_depth, info.max_depth) == (cfg.model.min_depth, cfg.model.max_depth)
    assert info.focal_length == pytest.approx(721.5377 / 1242 * WIDTH)
    assert info.training_dataset == 'synthetic_outdoor' and backbone in info.model_name
    assert ('lgconv' in info.model_name) == lgconv and info.export_version == '1'


def test_no_std_drops_the_uncertainty_output(tmp_path):
    """--no-std gives a depth-only model for runtimes that do not want the second output."""
    cfg = make_config('resnet18', 'bins', False)
    report = export_onnx(trained_like_student(cfg), cfg, tmp_path / 'm.onnx', HEIGHT, WIDTH, with_std=False)
    assert report.outputs == ('depth',) == read_model_info(str(tmp_path / 'm.onnx')).outputs


@pytest.mark.parametrize('height,width', [(70, 96), (64, 100), (0, 96), (-32, 64)])
def test_impossible_size_is_a_clear_error(height, width):
    """Sizes the strides cannot take fail before exporting, with the rule and a nearby valid size."""
    with pytest.raises(ExportError, match='multiples of 32'):
        check_size(height, width)


def test_failed_export_leaves_no_file(tmp_path):
    """A parity failure must not leave a model.onnx a robot could pick up."""
    cfg = make_config('resnet18', 'plain', False)
    with pytest.raises(ExportError, match='differs from PyTorch'):
        export_onnx(trained_like_student(cfg), cfg, tmp_path / 'm.onnx', HEIGHT, WIDTH, tolerance=-1.0)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('dataset,width,focal', [('synthetic_outdoor', 1242, 721.5377),
                                                  ('synthetic_indoor', 320, 518.8579 / 2),
                                                  ('kitti', 1216, 721.5377), ('kitti', 608, 721.5377 / 2),
                                                  ('nyu', 640, 518.8579)])
def test_focal_length_scales_with_input_width(dataset, width, focal):
    """focal_length is the training camera's at the model input size (same field of view)."""
    assert focal_length(make_config(dataset=dataset), 64, width) == pytest.approx(focal, rel=1e-6)
